//! The polled Graph lists, each read whole every round and swept at its end: the tenant
//! (`organization`), directory role definitions, role assignments and role eligibility
//! schedules (P2), and PIM for Groups eligibility (P2). None of these has a delta function
//! (graph-delta.md, section 1.4), and each is a few pages for a whole tenant.
//!
//! `directoryRoles/delta` is deliberately not used as a "did anything change" hint: it covers
//! only activated built-in roles (custom roles are reported missing), so a quiet delta would not
//! prove that `roleAssignments` is unchanged, and the list it would save is one or two calls.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::{CollectionPage, object_id, without_annotations};
use super::per_object::{PerObjectSource, skipped, start_poll};
use super::schedules;
use super::{
    Change, Collection, Feed, FeedContext, FeedError, ItemKey, Next, Page, Position, decode_state,
    encode_state,
};

/// One Graph collection listed whole every round.
pub struct ListFeed {
    name: &'static str,
    collection: Collection,
    url: &'static str,
    /// Needs Entra ID P2 / ID Governance: off when `skip_p2` is set.
    p2: bool,
}

pub fn organization() -> ListFeed {
    ListFeed {
        name: "organization",
        collection: Collection::Organization,
        url: "/v1.0/organization?$select=id,displayName,verifiedDomains,tenantType",
        p2: false,
    }
}

pub fn directory_role_definitions() -> ListFeed {
    ListFeed {
        name: "directory_role_definitions",
        collection: Collection::DirectoryRoleDefinition,
        url: "/v1.0/roleManagement/directory/roleDefinitions?$select=id,displayName,description,templateId,isBuiltIn,isEnabled",
        p2: false,
    }
}

pub fn directory_role_assignments() -> ListFeed {
    ListFeed {
        name: "directory_role_assignments",
        collection: Collection::DirectoryRoleAssignment,
        url: "/v1.0/roleManagement/directory/roleAssignments?$select=id,principalId,roleDefinitionId,directoryScopeId,appScopeId",
        p2: false,
    }
}

pub fn directory_role_eligibility() -> ListFeed {
    ListFeed {
        name: "directory_role_eligibility",
        collection: Collection::DirectoryRoleEligibility,
        url: "/v1.0/roleManagement/directory/roleEligibilitySchedules?$select=id,principalId,roleDefinitionId,directoryScopeId,appScopeId,memberType,scheduleInfo,status",
        p2: true,
    }
}

#[derive(Serialize, Deserialize)]
struct ListState {
    url: String,
}

impl Feed for ListFeed {
    fn polled(&self) -> bool {
        true
    }

    fn name(&self) -> String {
        self.name.into()
    }

    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        vec![(self.collection, None)]
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let url = match position {
                Position::Continue(state) => decode_state::<ListState>(self.name, state)?.url,
                Position::Baseline | Position::Delta(_) => {
                    if self.p2 && ctx.options.skip_p2 {
                        return Ok(Page::default());
                    }
                    self.url.to_string()
                }
            };
            let body = ctx.api.graph_get(&url, &[]).await?;
            let listing = CollectionPage::graph(body, self.name)?;
            let mut page = Page::default();
            for item in listing
                .items
                .iter()
                .filter(|item| schedules::is_direct(item))
            {
                page.changes.push(Change::Upsert {
                    key: ItemKey::new(self.collection, object_id(item, self.name)?),
                    value: without_annotations(item),
                });
            }
            match listing.next_link {
                Some(url) => page.next = Next::Continue(encode_state(&ListState { url })?),
                None => page.completed.push((self.collection, None)),
            }
            Ok(page)
        })
    }
}

/// PIM for Groups eligibility (`GroupEligibility` items, id = schedule id; P2). The list
/// requires `$filter` on `groupId` or `principalId`, so it is read per group, 20 groups to a
/// `$batch`, every round (or every `poll_every`), and the whole collection is swept at the end. Groups synced from
/// on-premises and dynamic groups are left out: PIM for Groups cannot manage their membership
/// (inference from the PIM for Groups documentation; verify on a live tenant).
pub struct GroupEligibilityFeed;

const GROUP_ELIGIBILITY: PerObjectSource = PerObjectSource {
    feed: "group_eligibility",
    objects: Collection::Group,
    accept: Some(is_pim_capable),
    collection: Collection::GroupEligibility,
    url: group_eligibility_url,
    item_id: schedule_id,
    item_value: without_annotations,
    scope_per_object: false,
};

fn group_eligibility_url(group: &str) -> String {
    format!(
        "/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=groupId%20eq%20'{group}'"
    )
}

fn schedule_id(_group: &str, item: &Value) -> Result<String, FeedError> {
    object_id(item, "group_eligibility")
}

impl Feed for GroupEligibilityFeed {
    fn name(&self) -> String {
        GROUP_ELIGIBILITY.feed.into()
    }

    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        vec![(Collection::GroupEligibility, None)]
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let round = match position {
                Position::Continue(state) => GROUP_ELIGIBILITY.decode(state)?,
                start => {
                    if ctx.options.skip_p2 {
                        return Ok(Page::default());
                    }
                    if !ctx.options.pim_for_groups {
                        no_pim_for_groups_here();
                        return Ok(Page::default());
                    }
                    match start_poll(ctx, start)? {
                        Some(round) => round,
                        None => return Ok(skipped(start)),
                    }
                }
            };
            GROUP_ELIGIBILITY.page(ctx, round).await
        })
    }
}

/// Says once per process why group eligibility is not read: the API pages of PIM for Groups
/// (privilegedaccessgroup-list-eligibilityschedules.md) list it for the global service only.
fn no_pim_for_groups_here() {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::info!(
            "PIM for Groups is not available in this national cloud: group eligibility is not read"
        );
    });
}

fn is_pim_capable(group: &Value) -> bool {
    let synced = group.get("onPremisesSyncEnabled") == Some(&Value::Bool(true));
    let dynamic = group
        .get("groupTypes")
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t == "DynamicMembership"));
    !synced && !dynamic
}
