//! The tenant-level ARM feed: subscriptions (`Subscription` items), the management group tree
//! (`ManagementGroup` items), and the role assignments and PIM eligibility (P2) made at
//! management group or root scope (`RoleAssignment` and `RoleEligibility` items whose id starts
//! with `/providers/`). All are polled: ARM has no delta.
//!
//! The tree is one call: `managementGroups/{tenantId}?$expand=children&$recurse=true` on the
//! root group (named after the tenant id), cheaper than listing groups and then getting each
//! one's parent. It is sent with `Cache-Control: no-cache`, so a moved subscription is seen
//! under its new parent at once. Assignments and eligibility instances are listed per group with
//! `$filter=atScope()` (at the group and above); each is keyed by its own lower-cased id, so the
//! copies two groups return are one item. Subscription-scope ones belong to each subscription's
//! own feed, so that no item is marked by two feeds' rounds.
//!
//! Without Management Group Reader the tree answers 403 (or 404 where no hierarchy exists): the
//! feed then keeps the groups, and what is assigned at them and at the root, as last read (a
//! missing permission is no evidence that they are gone), and sweeps none of them. A group
//! whose assignment or eligibility list answers 403 is skipped with a warning, and the round
//! then sweeps none of that collection. Eligibility needs P2: with `skip_p2` it is not listed (nor swept); a licence
//! refusal ends the round for the engine to turn P2 off, as in the subscription feeds.

use std::collections::VecDeque;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::graph::CollectionPage;
use super::schedules;
use super::{
    Change, Collection, Feed, FeedContext, FeedError, ItemKey, Next, Page, Position, decode_state,
    encode_state, store_error,
};
use crate::azure::ApiError;

const FEED: &str = "arm_tenant";
const SUBSCRIPTIONS_API: &str = "2022-12-01";
const MANAGEMENT_GROUPS_API: &str = "2023-04-01";
pub(crate) const AUTHORIZATION_API: &str = "2022-04-01";
/// PIM for Azure resources (`roleEligibilityScheduleInstances`): the api-version its REST
/// reference (List For Scope) documents.
pub(crate) const ELIGIBILITY_API: &str = "2020-10-01";
/// The `type` of a management group in a `$expand=children` tree.
const MANAGEMENT_GROUP_TYPE: &str = "Microsoft.Management/managementGroups";
/// Ids (lower-cased) of what sits at management group or root scope, this feed's to sweep.
const GROUP_OR_ROOT: &str = "/providers/";

pub struct ArmTenantFeed;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
enum TenantJob {
    Subscriptions,
    ManagementGroupTree,
    ManagementGroupAssignments { group: String },
    ManagementGroupEligibility { group: String },
}

#[derive(Serialize, Deserialize)]
struct TenantRound {
    jobs: VecDeque<TenantJob>,
    /// The nextLink of the job at the head of `jobs`, once its first page was read.
    next_link: Option<String>,
    /// The tenant id, from the organization item or the subscriptions' `tenantId`.
    tenant: Option<String>,
    /// Whether this round lists eligibility at every group (P2 on, no group's list refused):
    /// only then may its end sweep the stored group and root eligibility. False in a round
    /// planned before this field existed, which listed none.
    #[serde(default)]
    eligibility_listed: bool,
    /// A group refused its role assignment list (403): the round does not sweep the stored
    /// group and root assignments.
    #[serde(default)]
    assignments_refused: bool,
    /// Subscriptions of other tenants the list returned (Azure Lighthouse), left out.
    #[serde(default)]
    foreign_subscriptions: usize,
}

impl TenantRound {
    /// The tree could not be read: nothing stored above the subscriptions (groups, their and
    /// the root's assignments and eligibility) may be swept this round.
    fn tree_unreadable(&mut self) {
        self.assignments_refused = true;
        self.eligibility_listed = false;
    }

    /// P2 turned off after the round was planned (a licence refusal, or the option set before
    /// a resume): drop the eligibility lists still to read, and leave the stored ones alone.
    fn forget_eligibility(&mut self) {
        if matches!(
            self.jobs.front(),
            Some(TenantJob::ManagementGroupEligibility { .. })
        ) {
            self.next_link = None;
        }
        self.jobs
            .retain(|job| !matches!(job, TenantJob::ManagementGroupEligibility { .. }));
        self.eligibility_listed = false;
    }
}

impl Feed for ArmTenantFeed {
    fn polled(&self) -> bool {
        true
    }

    fn name(&self) -> String {
        FEED.into()
    }

    /// Management groups, and group and root assignments and eligibility, are not here: the
    /// round completes them itself, and only when it could read the tree and every group's list.
    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        vec![(Collection::Subscription, None)]
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let mut round = match position {
                Position::Continue(state) => decode_state::<TenantRound>(FEED, state)?,
                Position::Baseline | Position::Delta(_) => TenantRound {
                    jobs: [TenantJob::Subscriptions, TenantJob::ManagementGroupTree].into(),
                    next_link: None,
                    tenant: ctx
                        .items
                        .item_ids(Collection::Organization, "")
                        .map_err(store_error)?
                        .into_iter()
                        .next(),
                    eligibility_listed: !ctx.options.skip_p2,
                    assignments_refused: false,
                    foreign_subscriptions: 0,
                },
            };
            if ctx.options.skip_p2 {
                round.forget_eligibility();
            }
            let mut page = Page::default();
            if let Some(job) = round.jobs.front().cloned() {
                match read_job(ctx, &job, &mut round, &mut page).await? {
                    Some(link) => round.next_link = Some(link),
                    None => {
                        round.jobs.pop_front();
                    }
                }
            }
            page.next = if round.jobs.is_empty() {
                if !round.assignments_refused {
                    page.completed
                        .push((Collection::RoleAssignment, Some(GROUP_OR_ROOT.into())));
                }
                if round.eligibility_listed {
                    page.completed
                        .push((Collection::RoleEligibility, Some(GROUP_OR_ROOT.into())));
                }
                Next::RoundDone(round_note(&round))
            } else {
                Next::Continue(encode_state(&round)?)
            };
            Ok(page)
        })
    }
}

/// Reads one page of `job` into `page` (and new jobs into `round`); returns its nextLink.
async fn read_job(
    ctx: &FeedContext,
    job: &TenantJob,
    round: &mut TenantRound,
    page: &mut Page,
) -> Result<Option<String>, FeedError> {
    match job {
        TenantJob::Subscriptions => {
            let url = round
                .next_link
                .take()
                .unwrap_or_else(|| format!("/subscriptions?api-version={SUBSCRIPTIONS_API}"));
            let Some(tenant) = round.tenant.clone() else {
                // Only the organization says which tenant is ours: `/subscriptions` also lists
                // other tenants' subscriptions delegated to us.
                return Err(FeedError::Malformed(
                    "subscriptions: the tenant id is not known yet (the organization feed has not read it); nothing is changed until it is".into(),
                ));
            };
            let listing = CollectionPage::arm(ctx.api.arm_get(&url).await?, "subscriptions")?;
            for item in &listing.items {
                let id = string_field(item, "subscriptionId", "subscriptions")?;
                if !is_of_tenant(item, &tenant) {
                    round.foreign_subscriptions += 1;
                    continue;
                }
                page.changes.push(Change::Upsert {
                    key: ItemKey::new(Collection::Subscription, id),
                    value: item.clone(),
                });
            }
            if listing.next_link.is_none() {
                page.completed.push((Collection::Subscription, None));
            }
            Ok(listing.next_link)
        }
        TenantJob::ManagementGroupTree => {
            let groups = match &round.tenant {
                Some(tenant) => read_tree(ctx, tenant).await?,
                None => None,
            };
            let Some(groups) = groups else {
                round.tree_unreadable();
                return Ok(None);
            };
            let mut names = Vec::new();
            for group in groups {
                let name = string_field(&group, "name", "management group tree")?;
                names.push(name.clone());
                page.changes.push(Change::Upsert {
                    key: ItemKey::new(Collection::ManagementGroup, name),
                    value: group,
                });
            }
            // Eligibility last: a licence refusal ends the round, after every assignment list.
            for group in &names {
                round.jobs.push_back(TenantJob::ManagementGroupAssignments {
                    group: group.clone(),
                });
            }
            if round.eligibility_listed {
                for group in names {
                    round
                        .jobs
                        .push_back(TenantJob::ManagementGroupEligibility { group });
                }
            }
            page.completed.push((Collection::ManagementGroup, None));
            Ok(None)
        }
        TenantJob::ManagementGroupAssignments { group } => {
            let first = format!(
                "/providers/Microsoft.Management/managementGroups/{group}/providers/Microsoft.Authorization/roleAssignments?api-version={AUTHORIZATION_API}&$filter=atScope()"
            );
            let url = round.next_link.take().unwrap_or(first);
            let what = "management group role assignments";
            let Some(body) = group_list(ctx, &url, group, what).await? else {
                round.assignments_refused = true;
                return Ok(None);
            };
            read_group_listing(body, Collection::RoleAssignment, what, page)
        }
        TenantJob::ManagementGroupEligibility { group } => {
            let first = format!(
                "/providers/Microsoft.Management/managementGroups/{group}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances?api-version={ELIGIBILITY_API}&$filter=atScope()"
            );
            let url = round.next_link.take().unwrap_or(first);
            let what = "management group role eligibility";
            let Some(body) = group_list(ctx, &url, group, what).await? else {
                round.eligibility_listed = false;
                return Ok(None);
            };
            read_group_listing(body, Collection::RoleEligibility, what, page)
        }
    }
}

/// One page of a group's `atScope()` list, or None when the caller may not read it: as in the
/// subscription feeds, the stored items are kept (the caller's round then sweeps none), and
/// the log says so. A 403 on one group must not fail the feed round after round.
async fn group_list(
    ctx: &FeedContext,
    url: &str,
    group: &str,
    what: &str,
) -> Result<Option<Value>, FeedError> {
    match ctx.api.arm_get(url).await {
        Ok(body) => Ok(Some(body)),
        Err(ApiError::Forbidden { code, .. }) => {
            tracing::warn!(feed = FEED, group = %group, code = %code, "{what} listing forbidden; keeping the stored items");
            Ok(None)
        }
        Err(other) => Err(other.into()),
    }
}

/// One page of an `atScope()` list at a group into `collection`; returns its nextLink.
fn read_group_listing(
    body: Value,
    collection: Collection,
    what: &str,
    page: &mut Page,
) -> Result<Option<String>, FeedError> {
    let listing = CollectionPage::arm(body, what)?;
    for item in &listing.items {
        let id = string_field(item, "id", what)?.to_ascii_lowercase();
        // atScope() at a group also returns what is above it; a subscription's own items are
        // that subscription feed's.
        if id.starts_with(GROUP_OR_ROOT) && schedules::is_direct(item) {
            page.changes.push(Change::Upsert {
                key: ItemKey::new(collection, id),
                value: item.clone(),
            });
        }
    }
    Ok(listing.next_link)
}

/// The management groups under (and including) the tenant root group, each normalised to
/// `{id, name, type, properties: {displayName, parent: {id, name} | null, children: [{id, name,
/// type, displayName}]}}` (direct children only, subscriptions included); None when the caller
/// may not read the tree.
async fn read_tree(ctx: &FeedContext, tenant: &str) -> Result<Option<Vec<Value>>, FeedError> {
    let url = format!(
        "/providers/Microsoft.Management/managementGroups/{tenant}?api-version={MANAGEMENT_GROUPS_API}&$expand=children&$recurse=true"
    );
    // The spec's default for this header is `no-cache`, but only a request that sends it is
    // sure to bypass ARM's caches, and a cached tree keeps a moved subscription under its old
    // parent (managementGroups.json, Get: "Cache-Control ... Populate the header with 'no-cache'
    // value to bypass existing caches").
    let root = match ctx
        .api
        .arm_get_with_headers(&url, &[("Cache-Control", "no-cache")])
        .await
    {
        Ok(root) => root,
        Err(ApiError::Forbidden { .. } | ApiError::NotFound { .. }) => {
            tracing::warn!(
                "the management group tree is not readable (grant Management Group Reader at the tenant root); management groups and what is assigned at them are kept as last read"
            );
            return Ok(None);
        }
        Err(other) => return Err(other.into()),
    };
    let properties = root.get("properties").cloned().unwrap_or(Value::Null);
    let top = json!({
        "id": root.get("id"),
        "name": root.get("name"),
        "type": root.get("type"),
        "displayName": properties.get("displayName"),
        "children": properties.get("children"),
    });
    let mut groups = Vec::new();
    flatten(&top, Value::Null, &mut groups);
    Ok(Some(groups))
}

fn flatten(node: &Value, parent: Value, out: &mut Vec<Value>) {
    let children: &[Value] = node
        .get("children")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let summary = |n: &Value| {
        let mut s = Map::new();
        for field in ["id", "name", "type", "displayName"] {
            s.insert(field.into(), n.get(field).cloned().unwrap_or(Value::Null));
        }
        Value::Object(s)
    };
    out.push(json!({
        "id": node.get("id"),
        "name": node.get("name"),
        "type": MANAGEMENT_GROUP_TYPE,
        "properties": {
            "displayName": node.get("displayName"),
            "parent": parent,
            "children": children.iter().map(summary).collect::<Vec<_>>(),
        },
    }));
    let me = json!({"id": node.get("id"), "name": node.get("name")});
    for child in children {
        if child
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(is_management_group_type)
        {
            flatten(child, me.clone(), out);
        }
    }
}

/// Current api-versions say `Microsoft.Management/managementGroups`, older ones
/// `/providers/Microsoft.Management/managementGroups`; subscriptions are `/subscriptions`.
fn is_management_group_type(kind: &str) -> bool {
    kind.to_ascii_lowercase()
        .ends_with("microsoft.management/managementgroups")
}

/// Whether a `/subscriptions` item belongs to `tenant`. The list returns every subscription the
/// caller can reach, including other tenants' delegated through Azure Lighthouse (Subscriptions -
/// List, subscriptions.json 2022-12-01: `tenantId` is "the subscription tenant ID",
/// `managedByTenants` the tenants that manage it). Those are not this tenant's resources: their
/// grants would name principals of another directory, and their tree is not ours.
fn is_of_tenant(item: &Value, tenant: &str) -> bool {
    item.get("tenantId")
        .and_then(Value::as_str)
        .is_some_and(|id| id.eq_ignore_ascii_case(tenant))
}

/// The cursor a round ends with: what it left out, for `status` to show (`note`).
fn round_note(round: &TenantRound) -> Value {
    match round.foreign_subscriptions {
        0 => Value::Null,
        n => {
            json!({"note": format!("{n} subscription(s) of other tenants (Azure Lighthouse delegations) left out")})
        }
    }
}

pub(crate) fn string_field(item: &Value, field: &str, what: &str) -> Result<String, FeedError> {
    match item.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(FeedError::Malformed(format!(
            "{what}: an item has no string `{field}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eligibility(group: &str) -> TenantJob {
        TenantJob::ManagementGroupEligibility {
            group: group.into(),
        }
    }

    fn assignments(group: &str) -> TenantJob {
        TenantJob::ManagementGroupAssignments {
            group: group.into(),
        }
    }

    fn is_eligibility(job: &TenantJob) -> bool {
        matches!(job, TenantJob::ManagementGroupEligibility { .. })
    }

    /// A round with eligibility planned, half way through the list at the head of `jobs`.
    fn paging(jobs: Vec<TenantJob>) -> TenantRound {
        TenantRound {
            jobs: jobs.into(),
            next_link: Some("https://management.azure.com/next".into()),
            tenant: None,
            eligibility_listed: true,
            assignments_refused: false,
            foreign_subscriptions: 0,
        }
    }

    #[test]
    fn p2_turned_off_mid_round_drops_the_eligibility_lists_and_their_next_link() {
        let mut round = paging(vec![eligibility("a"), eligibility("b")]);
        round.forget_eligibility();
        assert!(round.jobs.is_empty());
        assert_eq!(round.next_link, None, "the link was the dropped list's");
        assert!(!round.eligibility_listed, "nothing may be swept");

        let mut round = paging(vec![assignments("a"), eligibility("a")]);
        round.forget_eligibility();
        assert_eq!(round.jobs.len(), 1);
        assert!(!is_eligibility(&round.jobs[0]));
        assert!(round.next_link.is_some(), "the assignment list goes on");
    }

    #[test]
    fn a_round_planned_before_eligibility_existed_sweeps_none() {
        let state = json!({"jobs": [{"job": "management_group_assignments", "group": "a"}], "next_link": null, "tenant": "t"});
        let round: TenantRound = serde_json::from_value(state).unwrap();
        assert!(!round.eligibility_listed);
    }
}
