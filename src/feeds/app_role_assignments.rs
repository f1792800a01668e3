//! The app role assignments feed (`AppRoleAssignment` items, id `<resourceSpId>/<assignmentId>`):
//! `servicePrincipals/{id}/appRoleAssignedTo?$top=999`, 20 to a `$batch`, every nextLink
//! followed (the anchor connector's `$expand=appRoleAssignedTo` silently truncated).
//!
//! Which service principals: every one of type `Application`, each round. Assignments have no
//! delta (`servicePrincipals/delta` does not track `appRoleAssignedTo`), and "defines app roles"
//! is no honest filter, because users and groups are assigned to the default role
//! (`00000000-0000-0000-0000-000000000000`) of applications that define none. Other types
//! (managed identities, legacy and social IdP principals) are not emitted as applications, so
//! nothing they hold would reach a `.c1z`. Cost: one `$batch` per 20 applications per round,
//! plus one call per extra page of a large application; `poll_every` spaces the polls out.

use futures::future::BoxFuture;
use serde_json::Value;

use super::graph::without_annotations;
use super::per_object::{PerObjectSource, nested_id, skipped, start_poll};
use super::{Collection, Feed, FeedContext, FeedError, Page, Position};

pub struct AppRoleAssignmentsFeed;

const SOURCE: PerObjectSource = PerObjectSource {
    feed: "app_role_assignments",
    objects: Collection::ServicePrincipal,
    accept: Some(is_application),
    collection: Collection::AppRoleAssignment,
    url: assigned_to_url,
    item_id: nested_id,
    item_value: without_annotations,
    scope_per_object: true,
};

fn assigned_to_url(sp: &str) -> String {
    format!("/servicePrincipals/{sp}/appRoleAssignedTo?$top=999")
}

impl Feed for AppRoleAssignmentsFeed {
    fn name(&self) -> String {
        SOURCE.feed.into()
    }

    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        vec![(Collection::AppRoleAssignment, None)]
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let round = match position {
                Position::Continue(state) => SOURCE.decode(state)?,
                start => match start_poll(ctx, start)? {
                    Some(round) => round,
                    None => return Ok(skipped(start)),
                },
            };
            SOURCE.page(ctx, round).await
        })
    }
}

fn is_application(sp: &Value) -> bool {
    sp.get("servicePrincipalType").and_then(Value::as_str) == Some("Application")
}
