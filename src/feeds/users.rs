//! The users feed (`User` items). Baseline: `users/delta?$deltatoken=latest` (one call, a
//! deltaLink, no data), then the plain `users` list with the manager expanded. Delta rounds
//! replay the deltaLink with `Prefer: return=minimal`, so each item is merged with only what
//! changed.
//!
//! The list asks `$expand=manager($select=id)&$top=100`: user-list-manager.md documents
//! `$select` inside `$expand` for the manager, and Graph's known issue 13635 ("$expand on
//! directory objects returns a maximum of 100 objects") caps such a page at 100 whatever
//! `$top` says, so asking for 999 would only hide the real cost (one call per 100 users).
//!
//! A user with `@removed` vanishes whatever the reason: `changed` is a soft delete (restorable;
//! a restore comes back as a new user), `deleted` a hard one. Its mailbox item goes with it.
//! The manager is stored as `"manager": {"id": ...}` or null, whether it came from the list's
//! `$expand=manager` or from the delta's `manager@delta`.

use futures::future::BoxFuture;
use serde_json::{Map, Value, json};

use super::delta::{Baseline, DeltaSource, Shape};
use super::graph::{is_removed, object_id, relationship_delta, without_annotations};
use super::{
    Change, Collection, Feed, FeedContext, FeedError, ItemKey, Page, Position, store_error,
};

/// The user properties the data model needs (DATA_MODEL.md, "Users carry").
/// Users a list page holds when the manager is expanded (Graph's known issue 13635).
const EXPANDED_PAGE: usize = 100;

const USER_FIELDS: &str = "id,displayName,givenName,surname,mail,userPrincipalName,accountEnabled,employeeId,userType,jobTitle,department,createdDateTime";

pub struct UsersFeed;

impl UsersFeed {
    fn source() -> DeltaSource {
        DeltaSource {
            feed: "users",
            delta_url: format!("/v1.0/users/delta?$select={USER_FIELDS},manager"),
            minimal: true,
            baseline: Baseline::LatestThenList {
                list_url: format!(
                    "/v1.0/users?$select={USER_FIELDS}&$expand=manager($select=id)&$top={EXPANDED_PAGE}"
                ),
            },
        }
    }
}

impl Feed for UsersFeed {
    fn name(&self) -> String {
        "users".into()
    }

    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        vec![(Collection::User, None)]
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let page = UsersFeed::source().fetch(ctx, position).await?;
            let mut out = Page {
                next: page.next,
                ..Page::default()
            };
            if page.baseline_done {
                out.completed = self.baseline_scopes();
            }
            for item in &page.items {
                let id = object_id(item, "users")?;
                let key = ItemKey::new(Collection::User, id.clone());
                if is_removed(item) {
                    out.changes.push(Change::Remove { key });
                    out.changes.push(Change::Remove {
                        key: ItemKey::new(Collection::Mailbox, id),
                    });
                    continue;
                }
                let value = user_value(item, page.shape)?;
                if ctx.options.mailbox && mail_is_new(ctx, &key, &value)? {
                    out.hints.mailbox_users.insert(id);
                }
                out.changes.push(match page.shape {
                    Shape::Full => Change::Upsert { key, value },
                    Shape::Minimal => Change::Merge { key, value },
                });
            }
            Ok(out)
        })
    }
}

/// Whether the user is new to the store, or comes with a `mail` other than the stored one:
/// then its mailbox may be new too. (A re-baseline's list hints only such users as well.)
fn mail_is_new(ctx: &FeedContext, key: &ItemKey, value: &Value) -> Result<bool, FeedError> {
    let stored = ctx.items.item(key).map_err(store_error)?;
    Ok(match (stored, value.get("mail")) {
        (None, _) => true,
        (Some(stored), Some(mail)) => stored.get("mail") != Some(mail),
        (Some(_), None) => false,
    })
}

/// The stored user: properties as sent, the manager normalised to `{"id": ...}` or null.
fn user_value(item: &Value, shape: Shape) -> Result<Value, FeedError> {
    let mut value = match without_annotations(item) {
        Value::Object(object) => object,
        _ => Map::new(),
    };
    let manager = match shape {
        // The list's `$expand=manager` gives the manager object, or nothing when there is none.
        Shape::Full if item.get("manager@delta").is_none() => Some(
            item.get("manager")
                .and_then(|m| m.get("id"))
                .map(|id| json!({"id": id}))
                .unwrap_or(Value::Null),
        ),
        // `manager@delta` appears only when the manager changed: the new one, `@removed`, or
        // an empty list (no manager any more).
        _ => {
            let entries = relationship_delta(item, "manager", "users")?;
            if item.get("manager@delta").is_none() {
                None
            } else {
                Some(
                    entries
                        .iter()
                        .find(|entry| !is_removed(entry))
                        .and_then(|entry| entry.get("id"))
                        .map(|id| json!({"id": id}))
                        .unwrap_or(Value::Null),
                )
            }
        }
    };
    if let Some(manager) = manager {
        value.insert("manager".into(), manager);
    }
    Ok(Value::Object(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listed_manager_and_the_delta_manager_are_stored_alike() {
        let listed =
            json!({"id": "u", "manager": {"@odata.type": "#microsoft.graph.user", "id": "m"}});
        let delta = json!({"id": "u", "manager@delta": [{"@odata.type": "#microsoft.graph.user", "id": "m"}]});
        let from_list = user_value(&listed, Shape::Full).ok();
        let from_delta = user_value(&delta, Shape::Minimal).ok();
        assert_eq!(from_list, Some(json!({"id": "u", "manager": {"id": "m"}})));
        assert_eq!(from_list, from_delta);
    }

    #[test]
    fn a_listed_user_without_manager_has_a_null_manager() {
        let listed = json!({"id": "u", "displayName": "U"});
        assert_eq!(
            user_value(&listed, Shape::Full).ok(),
            Some(json!({"id": "u", "displayName": "U", "manager": null}))
        );
    }

    #[test]
    fn a_removed_manager_becomes_null_and_an_unchanged_one_is_left_alone() {
        let removed =
            json!({"id": "u", "manager@delta": [{"id": "m", "@removed": {"reason": "deleted"}}]});
        assert_eq!(
            user_value(&removed, Shape::Minimal).ok(),
            Some(json!({"id": "u", "manager": null}))
        );
        let untouched = json!({"id": "u", "jobTitle": "x"});
        assert_eq!(
            user_value(&untouched, Shape::Minimal).ok(),
            Some(json!({"id": "u", "jobTitle": "x"}))
        );
    }
}
