//! The groups feed (`Group`, `GroupMember`, `GroupOwner` items). `groups/delta` with
//! `$select=...,members,owners` tracks both relationships (`members@delta`, `owners@delta`), so
//! the baseline is simply the first full delta round: cheaper than one members call and one
//! owners call per group.
//!
//! A big group comes back on several pages, each with a slice of its links: every link is its
//! own item, so slices add up and a page never replaces a group's member set. A link with
//! `@removed` is removed; a removed group takes its member and owner links with it.

use futures::future::BoxFuture;
use serde_json::Value;

use super::delta::{Baseline, DeltaSource, Shape};
use super::graph::{is_removed, link_value, object_id, relationship_delta, without_annotations};
use super::{Change, Collection, Feed, FeedContext, FeedError, ItemKey, Page, Position};

/// The group properties the data model needs; `securityIdentifier` (group.md: "Security
/// identifier of the group, used in Windows scenarios") goes into the group's profile.
const GROUP_FIELDS: &str = "id,displayName,description,mail,mailEnabled,securityEnabled,groupTypes,onPremisesSyncEnabled,isAssignableToRole,createdDateTime,securityIdentifier";

pub struct GroupsFeed;

impl GroupsFeed {
    fn source() -> DeltaSource {
        DeltaSource {
            feed: "groups",
            delta_url: format!("/v1.0/groups/delta?$select={GROUP_FIELDS},members,owners"),
            baseline: Baseline::FullDelta,
            minimal: true,
        }
    }
}

impl Feed for GroupsFeed {
    fn name(&self) -> String {
        "groups".into()
    }

    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        vec![
            (Collection::Group, None),
            (Collection::GroupMember, None),
            (Collection::GroupOwner, None),
        ]
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let page = GroupsFeed::source().fetch(ctx, position).await?;
            let mut out = Page {
                next: page.next,
                ..Page::default()
            };
            if page.baseline_done {
                out.completed = self.baseline_scopes();
            }
            for item in &page.items {
                out.changes.extend(group_changes(item, page.shape)?);
            }
            Ok(out)
        })
    }
}

/// The changes one delta item of a group stands for.
fn group_changes(item: &Value, shape: Shape) -> Result<Vec<Change>, FeedError> {
    let id = object_id(item, "groups")?;
    if is_removed(item) {
        return Ok(vec![
            Change::Remove {
                key: ItemKey::new(Collection::Group, id.clone()),
            },
            Change::RemovePrefix {
                collection: Collection::GroupMember,
                prefix: format!("{id}/"),
            },
            Change::RemovePrefix {
                collection: Collection::GroupOwner,
                prefix: format!("{id}/"),
            },
        ]);
    }
    let key = ItemKey::new(Collection::Group, id.clone());
    let value = without_annotations(item);
    let mut changes = vec![match shape {
        Shape::Full => Change::Upsert { key, value },
        Shape::Minimal => Change::Merge { key, value },
    }];
    for (relationship, collection) in [
        ("members", Collection::GroupMember),
        ("owners", Collection::GroupOwner),
    ] {
        for entry in relationship_delta(item, relationship, "groups")? {
            let other = object_id(entry, "groups")?;
            let key = ItemKey::new(collection, format!("{id}/{other}"));
            changes.push(if is_removed(entry) {
                Change::Remove { key }
            } else {
                Change::Upsert {
                    key,
                    value: link_value(entry),
                }
            });
        }
    }
    Ok(changes)
}
