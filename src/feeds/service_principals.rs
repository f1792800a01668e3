//! The service principals feed (`ServicePrincipal` items). The baseline is the first full delta
//! round and delta rounds replay its deltaLink without `Prefer: return=minimal`: unlike users and
//! groups, servicePrincipal-delta.md (microsoft-graph-docs-contrib) documents neither
//! `$deltatoken=latest` nor `return=minimal`, so a changed service principal comes whole and
//! replaces the stored one. (A plain list after `latest` was cheaper, but is not documented.)
//!
//! Owners and app role assignments are not tracked by this delta: every changed service
//! principal is hinted to the owners feed; a removed one takes its owner and assignment items
//! with it.

use futures::future::BoxFuture;

use super::delta::{Baseline, DeltaSource, Shape};
use super::graph::{is_removed, object_id, without_annotations};
use super::{
    Change, Collection, Feed, FeedContext, FeedError, ItemKey, Page, Position, store_error,
};

const SP_FIELDS: &str = "id,appId,displayName,servicePrincipalType,accountEnabled,appRoles,appOwnerOrganizationId,appRoleAssignmentRequired,tags,description,homepage";

pub struct ServicePrincipalsFeed;

impl ServicePrincipalsFeed {
    fn source() -> DeltaSource {
        DeltaSource {
            feed: "service_principals",
            delta_url: format!("/v1.0/servicePrincipals/delta?$select={SP_FIELDS}"),
            baseline: Baseline::FullDelta,
            minimal: false,
        }
    }
}

impl Feed for ServicePrincipalsFeed {
    fn name(&self) -> String {
        "service_principals".into()
    }

    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        vec![(Collection::ServicePrincipal, None)]
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let page = ServicePrincipalsFeed::source().fetch(ctx, position).await?;
            let mut out = Page {
                next: page.next,
                ..Page::default()
            };
            if page.baseline_done {
                out.completed = self.baseline_scopes();
            }
            for item in &page.items {
                let id = object_id(item, "service_principals")?;
                if is_removed(item) {
                    out.changes.push(Change::Remove {
                        key: ItemKey::new(Collection::ServicePrincipal, id.clone()),
                    });
                    for collection in [
                        Collection::ServicePrincipalOwner,
                        Collection::AppRoleAssignment,
                    ] {
                        out.changes.push(Change::RemovePrefix {
                            collection,
                            prefix: format!("{id}/"),
                        });
                    }
                    continue;
                }
                let key = ItemKey::new(Collection::ServicePrincipal, id.clone());
                let value = without_annotations(item);
                // A changed SP may have new owners; a (re-)baseline hints only those it did not know.
                let changed =
                    !page.baseline || ctx.items.item(&key).map_err(store_error)?.is_none();
                if changed {
                    out.hints.service_principals.insert(id);
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
