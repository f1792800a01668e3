//! The ARM feeds: the tenant feed (subscriptions, management group tree, assignments and PIM
//! eligibility at group and root scope) and a subscription's feed (full listing, then Activity
//! Log hints).

mod feeds_support;

use std::time::Duration;

use baton_azure_delta::azure::ApiError;
use baton_azure_delta::feeds::activity_log;
use baton_azure_delta::feeds::arm_tenant::ArmTenantFeed;
use baton_azure_delta::feeds::{Collection, FeedError, Hints, Position, subscription_feed};
use feeds_support::{Harness, fixture};
use serde_json::{Value, json};
use time::macros::datetime;

const SUB: &str = "089bd33f-d4ec-47fe-8ba5-0753aa5c5b33";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const ACCOUNT: &str = "/subscriptions/089bd33f-d4ec-47fe-8ba5-0753aa5c5b33/resourceGroups/rg-web/providers/Microsoft.Storage/storageAccounts/contosoweb";

fn sub_url(tail: &str) -> String {
    format!("/subscriptions/{SUB}/{tail}")
}

fn assignments_url() -> String {
    sub_url("providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01")
}

/// Scripts every list of a full subscription listing.
fn script_full_listing(h: &Harness) {
    h.api
        .arm(&sub_url("resourcegroups?api-version=2021-04-01"), json!({"value": [
            {"id": format!("/subscriptions/{SUB}/resourceGroups/rg-web"), "name": "rg-web", "type": "Microsoft.Resources/resourceGroups", "location": "westeurope", "properties": {"provisioningState": "Succeeded"}}
        ]}))
        .arm(&sub_url("providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=atScopeAndBelow()"), json!({"value": [
            {"id": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"), "name": "b24988ac-6180-42a0-ab88-20f7382dd24c", "type": "Microsoft.Authorization/roleDefinitions", "properties": {"roleName": "Contributor", "type": "BuiltInRole", "assignableScopes": ["/"]}}
        ]}))
        .arm(&assignments_url(), fixture("arm_role_assignments"))
        .arm(&sub_url("providers/Microsoft.Authorization/roleEligibilityScheduleInstances?api-version=2020-10-01"), json!({"value": []}))
        .arm(&sub_url("providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01"), json!({"value": [
            {"id": ACCOUNT, "name": "contosoweb", "type": "Microsoft.Storage/storageAccounts", "kind": "StorageV2", "location": "westeurope"}
        ]}))
        .arm(&format!("{ACCOUNT}/blobServices/default/containers?api-version=2023-05-01"), json!({
            "value": [{"id": format!("{ACCOUNT}/blobServices/default/containers/images"), "name": "images", "type": "Microsoft.Storage/storageAccounts/blobServices/containers", "properties": {"publicAccess": "None"}}],
            "nextLink": "https://management.azure.com/next-containers"
        }))
        .arm("https://management.azure.com/next-containers", json!({
            "value": [{"id": format!("{ACCOUNT}/blobServices/default/containers/logs"), "name": "logs", "type": "Microsoft.Storage/storageAccounts/blobServices/containers", "properties": {}}]
        }));
}

#[tokio::test]
async fn a_subscription_baseline_lists_everything_and_keeps_only_its_own_assignments() {
    let mut h = Harness::new();
    let feed = subscription_feed(SUB);
    h.store.put(
        Collection::StorageAccount,
        &format!("{SUB}:rg-old:deleted"),
        json!({}),
    );
    h.store.put(
        Collection::Container,
        &format!("{SUB}:rg-old:deleted:c"),
        json!({}),
    );
    script_full_listing(&h);

    let round = h
        .round(feed.as_ref(), Position::Baseline, Hints::default())
        .await
        .unwrap();

    assert!(h.api.all_used());
    assert_eq!(
        h.store.ids(Collection::ResourceGroup),
        vec![format!("{SUB}:rg-web")]
    );
    assert_eq!(
        h.store.ids(Collection::RoleDefinition),
        vec![format!("{SUB}:b24988ac-6180-42a0-ab88-20f7382dd24c")]
    );
    // Keyed by its own lower-cased id; the one inherited from the management group is not ours.
    assert_eq!(
        h.store.ids(Collection::RoleAssignment),
        vec![format!(
            "/subscriptions/{SUB}/resourcegroups/rg-web/providers/microsoft.authorization/roleassignments/b1c2d3e4-0000-0000-0000-000000000001"
        )]
    );
    assert_eq!(
        h.store.ids(Collection::StorageAccount),
        vec![format!("{SUB}:rg-web:contosoweb")]
    );
    assert_eq!(
        h.store.ids(Collection::Container),
        vec![
            format!("{SUB}:rg-web:contosoweb:images"),
            format!("{SUB}:rg-web:contosoweb:logs")
        ]
    );
    let completed = round.completed();
    for (collection, prefix) in [
        (Collection::ResourceGroup, format!("{SUB}:")),
        (Collection::RoleDefinition, format!("{SUB}:")),
        (Collection::RoleAssignment, format!("/subscriptions/{SUB}/")),
        (Collection::StorageAccount, format!("{SUB}:")),
    ] {
        let scope = (collection, Some(prefix));
        assert!(completed.contains(&scope), "{scope:?} not completed");
    }
    // Containers are swept per account; a gone account's containers are forgotten.
    assert!(completed.contains(&(
        Collection::Container,
        Some(format!("{SUB}:rg-web:contosoweb:"))
    )));
    assert!(
        round
            .changes()
            .contains(&baton_azure_delta::feeds::Change::RemovePrefix {
                collection: Collection::Container,
                prefix: format!("{SUB}:rg-old:deleted:"),
            })
    );
    assert_eq!(
        round.cursor["checked_until"],
        json!(h.clock.now().unix_timestamp())
    );
}

#[tokio::test]
async fn skipping_containers_and_p2_skips_their_calls() {
    let mut h = Harness::new();
    h.options.skip_p2 = true;
    h.options.skip_storage_containers = true;
    script_full_listing(&h);
    h.round(
        subscription_feed(SUB).as_ref(),
        Position::Baseline,
        Hints::default(),
    )
    .await
    .unwrap();
    let urls: Vec<String> = h.api.calls().into_iter().map(|c| c.url).collect();
    assert_eq!(urls.len(), 4, "{urls:?}");
    assert!(
        !urls
            .iter()
            .any(|u| u.contains("roleEligibility") || u.contains("containers"))
    );
}

fn event(id: &str, at: &str, operation: &str, status: &str) -> Value {
    json!({"eventDataId": id, "eventTimestamp": at, "operationName": {"value": operation}, "status": {"value": status}})
}

#[tokio::test]
async fn activity_log_events_relist_only_the_stale_list_once_and_are_deduplicated_across_windows() {
    let mut h = Harness::new();
    let feed = subscription_feed(SUB);
    h.clock = feeds_support::TestClock::at(datetime!(2026-11-26 03:00 UTC));
    script_full_listing(&h);
    let baseline = h
        .round(feed.as_ref(), Position::Baseline, Hints::default())
        .await
        .unwrap();
    h.api.clear_log();

    // Round 1 at 04:00: the window reaches back 30 minutes before the baseline's start.
    h.clock.advance(Duration::from_secs(3600));
    let first_url = activity_log::query_url(
        SUB,
        datetime!(2026-11-26 02:30 UTC),
        datetime!(2026-11-26 04:00 UTC),
    )
    .unwrap();
    let page1 = fixture("activity_log_page1");
    h.api
        .arm(&first_url, page1.clone())
        .arm(
            page1["nextLink"].as_str().unwrap(),
            fixture("activity_log_page2"),
        )
        .arm(&assignments_url(), json!({"value": []}));
    let round = h
        .round(
            feed.as_ref(),
            Position::Delta(baseline.cursor),
            Hints::default(),
        )
        .await
        .unwrap();

    let urls: Vec<String> = h.api.calls().into_iter().map(|c| c.url).collect();
    assert_eq!(
        urls,
        vec![
            first_url,
            page1["nextLink"].as_str().unwrap().to_string(),
            assignments_url()
        ],
        "two log pages, then role assignments re-listed once for the event seen on both pages"
    );
    assert!(
        h.store.ids(Collection::RoleAssignment).is_empty(),
        "the re-list swept the deleted assignment"
    );
    assert!(round.completed().contains(&(
        Collection::RoleAssignment,
        Some(format!("/subscriptions/{SUB}/"))
    )));
    assert!(
        h.store.ids(Collection::ResourceGroup).len() == 1,
        "lists the log did not name are left alone"
    );

    // Round 2 at 04:10: the overlap returns the same succeeded event again: no re-list.
    h.api.clear_log();
    h.clock.advance(Duration::from_secs(600));
    let second_url = activity_log::query_url(
        SUB,
        datetime!(2026-11-26 03:30 UTC),
        datetime!(2026-11-26 04:10 UTC),
    )
    .unwrap();
    h.api.arm(&second_url, json!({"value": [
        event("8c1e9f2a-51a7-4a5e-9a8e-1b2c3d4e5f60", "2026-11-26T03:40:14.7654321Z", "Microsoft.Authorization/roleAssignments/write", "Succeeded")
    ]}));
    let quiet = h
        .round(
            feed.as_ref(),
            Position::Delta(round.cursor),
            Hints::default(),
        )
        .await
        .unwrap();
    assert_eq!(h.api.calls().len(), 1, "one call when nothing new happened");
    assert!(
        quiet.cursor["seen"]
            .get("8c1e9f2a-51a7-4a5e-9a8e-1b2c3d4e5f60")
            .is_some()
    );

    // Round 3 at 05:10: the event is now older than the overlap and forgotten.
    h.api.clear_log();
    h.clock.advance(Duration::from_secs(3600));
    let third_url = activity_log::query_url(
        SUB,
        datetime!(2026-11-26 03:40 UTC),
        datetime!(2026-11-26 05:10 UTC),
    )
    .unwrap();
    h.api.arm(&third_url, json!({"value": [
        event("ffffffff-0000-0000-0000-000000000001", "2026-11-26T05:00:00Z", "Microsoft.Authorization/roleDefinitions/write", "Succeeded")
    ]}))
    .arm(&sub_url("providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=atScopeAndBelow()"), json!({"value": []}));
    let later = h
        .round(
            feed.as_ref(),
            Position::Delta(quiet.cursor),
            Hints::default(),
        )
        .await
        .unwrap();
    assert!(
        h.api.all_used(),
        "a role definition write re-lists role definitions"
    );
    assert!(
        later.cursor["seen"]
            .get("8c1e9f2a-51a7-4a5e-9a8e-1b2c3d4e5f60")
            .is_none()
    );
}

#[tokio::test]
async fn a_cursor_older_than_the_log_retention_relists_everything() {
    let mut h = Harness::new();
    let feed = subscription_feed(SUB);
    let old = h.clock.now().unix_timestamp() - 91 * 24 * 3600;
    script_full_listing(&h);
    let cursor =
        json!({"checked_until": old, "seen": {}, "last_full": h.clock.now().unix_timestamp()});
    let round = h
        .round(feed.as_ref(), Position::Delta(cursor), Hints::default())
        .await
        .unwrap();
    assert!(h.api.all_used());
    assert!(!h.api.calls().iter().any(|c| c.url.contains("eventtypes")));
    assert!(
        round
            .completed()
            .contains(&(Collection::ResourceGroup, Some(format!("{SUB}:"))))
    );
}

#[tokio::test]
async fn a_forbidden_container_list_keeps_that_account_s_containers_only() {
    let mut h = Harness::new();
    h.options.skip_p2 = true;
    let second = format!(
        "/subscriptions/{SUB}/resourceGroups/rg-web/providers/Microsoft.Storage/storageAccounts/locked"
    );
    h.store.put(
        Collection::Container,
        &format!("{SUB}:rg-web:locked:secret"),
        json!({}),
    );
    h.store.put(
        Collection::Container,
        &format!("{SUB}:rg-web:contosoweb:removed"),
        json!({}),
    );
    h.api
        .arm(
            &sub_url("resourcegroups?api-version=2021-04-01"),
            json!({"value": []}),
        )
        .arm(
            &sub_url("providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=atScopeAndBelow()"),
            json!({"value": []}),
        )
        .arm(&assignments_url(), json!({"value": []}))
        .arm(
            &sub_url("providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01"),
            json!({"value": [
                {"id": ACCOUNT, "name": "contosoweb"},
                {"id": second, "name": "locked"}
            ]}),
        )
        .arm(
            &format!("{ACCOUNT}/blobServices/default/containers?api-version=2023-05-01"),
            json!({"value": []}),
        )
        .arm_err(
            &format!("{second}/blobServices/default/containers?api-version=2023-05-01"),
            ApiError::Forbidden {
                code: "AuthorizationFailed".into(),
                message: "denied".into(),
            },
        );
    h.round(
        subscription_feed(SUB).as_ref(),
        Position::Baseline,
        Hints::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        h.store.ids(Collection::Container),
        vec![format!("{SUB}:rg-web:locked:secret")]
    );
}

/// One rule for every kind of round: a list the caller may not read keeps its stored items, in
/// a delta round's full pass and in a baseline (a reset, the daily reconciliation) alike.
#[tokio::test]
async fn a_forbidden_list_keeps_the_stored_items() {
    let delta = json!({"checked_until": 0, "seen": {}, "last_full": 0});
    for start in [Position::Delta(delta), Position::Baseline] {
        let mut h = Harness::new();
        h.options.skip_p2 = true;
        h.options.skip_storage_containers = true;
        h.store.put(
            Collection::StorageAccount,
            &format!("{SUB}:rg:acc"),
            json!({}),
        );
        h.api
            .arm(
                &sub_url("resourcegroups?api-version=2021-04-01"),
                json!({"value": []}),
            )
            .arm(
                &sub_url(
                    "providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=atScopeAndBelow()",
                ),
                json!({"value": []}),
            )
            .arm(&assignments_url(), json!({"value": []}))
            .arm_err(
                &sub_url("providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01"),
                ApiError::Forbidden {
                    code: "AuthorizationFailed".into(),
                    message: "no read".into(),
                },
            );
        let label = format!("{start:?}");
        let round = h
            .round(subscription_feed(SUB).as_ref(), start, Hints::default())
            .await
            .unwrap();
        assert!(!round.completes_any(Collection::StorageAccount), "{label}");
        assert_eq!(h.store.ids(Collection::StorageAccount).len(), 1, "{label}");
    }
}

fn script_tenant(h: &Harness) {
    h.store
        .put(Collection::Organization, TENANT, json!({"id": TENANT}));
    h.api
        .arm("/subscriptions?api-version=2022-12-01", json!({"value": [
            {"id": format!("/subscriptions/{SUB}"), "subscriptionId": SUB, "tenantId": TENANT, "displayName": "Prod Subscription", "state": "Enabled"}
        ]}))
        .arm(&format!("/providers/Microsoft.Management/managementGroups/{TENANT}?api-version=2023-04-01&$expand=children&$recurse=true"), fixture("management_group_tree"))
        .arm(&format!("/providers/Microsoft.Management/managementGroups/{TENANT}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"), json!({"value": [
            {"id": "/providers/Microsoft.Authorization/roleAssignments/ROOT-1", "name": "root-1", "properties": {"scope": "/", "principalId": "p", "principalType": "User", "roleDefinitionId": "/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"}}
        ]}))
        .arm("/providers/Microsoft.Management/managementGroups/contoso-prod/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()", json!({"value": [
            {"id": "/providers/Microsoft.Authorization/roleAssignments/ROOT-1", "name": "root-1", "properties": {"scope": "/"}},
            {"id": "/providers/Microsoft.Management/managementGroups/contoso-prod/providers/Microsoft.Authorization/roleAssignments/MG-1", "name": "mg-1", "properties": {"scope": "/providers/Microsoft.Management/managementGroups/contoso-prod"}}
        ]}));
}

/// The eligibility list `atScope()` at one management group, on api-version 2020-10-01 (Role
/// Eligibility Schedule Instances - List For Scope).
fn group_eligibility_url(group: &str) -> String {
    format!(
        "/providers/Microsoft.Management/managementGroups/{group}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances?api-version=2020-10-01&$filter=atScope()"
    )
}

/// Scripts both groups' eligibility lists: the root group's empty, contoso-prod's on two pages
/// (an instance at the group, one at `/`, and one at a subscription that the feed must leave to
/// that subscription's feed; then one at the root group above it).
fn script_group_eligibility(h: &Harness) {
    let page1 = fixture("arm_mg_eligibility_page1");
    h.api
        .arm(&group_eligibility_url(TENANT), json!({"value": []}))
        .arm(&group_eligibility_url("contoso-prod"), page1.clone())
        .arm(
            page1["nextLink"].as_str().unwrap(),
            fixture("arm_mg_eligibility_page2"),
        );
}

/// The ids the eligibility fixtures give at group or root scope, lower-cased, sorted.
fn group_eligibility_ids() -> Vec<String> {
    let mut ids = vec![
        "/providers/microsoft.management/managementgroups/contoso-prod/providers/microsoft.authorization/roleeligibilityscheduleinstances/e1a2b3c4-0000-0000-0000-000000000001".to_string(),
        "/providers/microsoft.authorization/roleeligibilityscheduleinstances/e1a2b3c4-0000-0000-0000-000000000002".to_string(),
        format!("/providers/microsoft.management/managementgroups/{TENANT}/providers/microsoft.authorization/roleeligibilityscheduleinstances/e1a2b3c4-0000-0000-0000-000000000004"),
    ];
    ids.sort();
    ids
}

#[tokio::test]
async fn the_tenant_feed_flattens_the_group_tree_and_owns_group_and_root_assignments() {
    let mut h = Harness::new();
    h.store.put(Collection::RoleAssignment, "/providers/microsoft.management/managementgroups/old/providers/microsoft.authorization/roleassignments/x", json!({}));
    let own = format!("/subscriptions/{SUB}/providers/microsoft.authorization/roleassignments/s1");
    h.store.put(Collection::RoleAssignment, &own, json!({}));
    script_tenant(&h);
    script_group_eligibility(&h);

    h.round(&ArmTenantFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();

    assert!(h.api.all_used());
    assert_eq!(h.store.ids(Collection::Subscription), vec![SUB.to_string()]);
    let mut groups = h.store.ids(Collection::ManagementGroup);
    groups.sort();
    assert_eq!(groups, vec![TENANT.to_string(), "contoso-prod".to_string()]);
    let prod = h
        .store
        .get(Collection::ManagementGroup, "contoso-prod")
        .unwrap();
    assert_eq!(prod["properties"]["parent"]["name"], TENANT);
    assert_eq!(prod["properties"]["children"][0]["name"], SUB);
    assert_eq!(
        h.store.get(Collection::ManagementGroup, TENANT).unwrap()["properties"]["parent"],
        Value::Null
    );
    let mut assignments = h.store.ids(Collection::RoleAssignment);
    assignments.sort();
    assert_eq!(assignments, vec![
        "/providers/microsoft.authorization/roleassignments/root-1".to_string(),
        "/providers/microsoft.management/managementgroups/contoso-prod/providers/microsoft.authorization/roleassignments/mg-1".to_string(),
        own,
    ], "the stale group assignment is swept; the subscription's own is not this feed's to sweep");
}

const STALE_GROUP_ELIGIBILITY: &str = "/providers/microsoft.management/managementgroups/old/providers/microsoft.authorization/roleeligibilityscheduleinstances/x";

#[tokio::test]
async fn group_and_root_eligibility_is_listed_per_group_across_pages_and_subscription_scope_is_left_alone()
 {
    let mut h = Harness::new();
    h.store.put(
        Collection::RoleEligibility,
        STALE_GROUP_ELIGIBILITY,
        json!({}),
    );
    let own = format!(
        "/subscriptions/{SUB}/providers/microsoft.authorization/roleeligibilityscheduleinstances/s1"
    );
    h.store.put(Collection::RoleEligibility, &own, json!({}));
    script_tenant(&h);
    script_group_eligibility(&h);

    let round = h
        .round(&ArmTenantFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();

    assert!(h.api.all_used(), "both pages of contoso-prod's list read");
    let mut expected = group_eligibility_ids();
    expected.push(own.clone());
    expected.sort();
    let mut stored = h.store.ids(Collection::RoleEligibility);
    stored.sort();
    assert_eq!(
        stored, expected,
        "the stale group eligibility is swept; the subscription-scope instance atScope() returned is not stored (that subscription's feed owns it)"
    );
    let at_group = h
        .store
        .get(
            Collection::RoleEligibility,
            "/providers/microsoft.management/managementgroups/contoso-prod/providers/microsoft.authorization/roleeligibilityscheduleinstances/e1a2b3c4-0000-0000-0000-000000000001",
        )
        .unwrap();
    assert_eq!(
        at_group,
        fixture("arm_mg_eligibility_page1")["value"][0],
        "stored as Microsoft sent it"
    );
    assert!(
        round
            .completed()
            .contains(&(Collection::RoleEligibility, Some("/providers/".to_string())))
    );
    // Eligibility is read after every assignment list, so a licence refusal cannot cut those.
    let urls: Vec<String> = h.api.calls().into_iter().map(|c| c.url).collect();
    let first_eligibility = urls
        .iter()
        .position(|u| u.contains("roleEligibilityScheduleInstances"))
        .unwrap();
    assert!(
        urls[first_eligibility..]
            .iter()
            .all(|u| !u.contains("roleAssignments")),
        "{urls:?}"
    );
}

#[tokio::test]
async fn with_p2_skipped_the_tenant_feed_lists_no_eligibility_and_keeps_what_is_stored() {
    let mut h = Harness::new();
    h.options.skip_p2 = true;
    h.store.put(
        Collection::RoleEligibility,
        STALE_GROUP_ELIGIBILITY,
        json!({}),
    );
    script_tenant(&h);
    let round = h
        .round(&ArmTenantFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert!(h.api.all_used());
    assert!(!h.api.called("roleEligibility"));
    assert!(!round.completes_any(Collection::RoleEligibility));
    assert_eq!(
        h.store.ids(Collection::RoleEligibility),
        vec![STALE_GROUP_ELIGIBILITY.to_string()]
    );
}

#[tokio::test]
async fn a_licence_refusal_at_group_scope_reaches_the_engine_as_license_required() {
    let mut h = Harness::new();
    script_tenant(&h);
    h.api.arm_err(
        &group_eligibility_url(TENANT),
        ApiError::LicenseRequired {
            message: "The tenant needs an AAD Premium 2 license.".into(),
        },
    );
    let result = h
        .round(&ArmTenantFeed, Position::Baseline, Hints::default())
        .await;
    assert!(
        matches!(result, Err(FeedError::LicenseRequired(_))),
        "{:?}",
        result.err()
    );
    // Every assignment list was read (and committed) before the refusal.
    assert!(h.api.all_used());
}

#[tokio::test]
async fn a_forbidden_group_eligibility_list_keeps_the_stored_items() {
    let mut h = Harness::new();
    h.store.put(
        Collection::RoleEligibility,
        STALE_GROUP_ELIGIBILITY,
        json!({}),
    );
    script_tenant(&h);
    let page1 = fixture("arm_mg_eligibility_page1");
    h.api
        .arm_err(
            &group_eligibility_url(TENANT),
            ApiError::Forbidden {
                code: "AuthorizationFailed".into(),
                message: "no read".into(),
            },
        )
        .arm(&group_eligibility_url("contoso-prod"), page1.clone())
        .arm(
            page1["nextLink"].as_str().unwrap(),
            fixture("arm_mg_eligibility_page2"),
        );
    let round = h
        .round(&ArmTenantFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert!(h.api.all_used(), "the other group is still listed");
    assert!(
        !round.completes_any(Collection::RoleEligibility),
        "one group's list is missing: nothing may be swept"
    );
    let mut expected = group_eligibility_ids();
    expected.push(STALE_GROUP_ELIGIBILITY.to_string());
    expected.sort();
    let mut stored = h.store.ids(Collection::RoleEligibility);
    stored.sort();
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn a_forbidden_group_assignment_list_keeps_the_stored_assignments() {
    let mut h = Harness::new();
    const STALE: &str = "/providers/microsoft.management/managementgroups/old/providers/microsoft.authorization/roleassignments/x";
    h.store.put(Collection::RoleAssignment, STALE, json!({}));
    h.store
        .put(Collection::Organization, TENANT, json!({"id": TENANT}));
    h.api
        .arm("/subscriptions?api-version=2022-12-01", json!({"value": [
            {"id": format!("/subscriptions/{SUB}"), "subscriptionId": SUB, "tenantId": TENANT}
        ]}))
        .arm(&format!("/providers/Microsoft.Management/managementGroups/{TENANT}?api-version=2023-04-01&$expand=children&$recurse=true"), fixture("management_group_tree"))
        .arm_err(&format!("/providers/Microsoft.Management/managementGroups/{TENANT}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"),
            ApiError::Forbidden { code: "AuthorizationFailed".into(), message: "no read".into() })
        .arm("/providers/Microsoft.Management/managementGroups/contoso-prod/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()", json!({"value": [
            {"id": "/providers/Microsoft.Management/managementGroups/contoso-prod/providers/Microsoft.Authorization/roleAssignments/MG-1", "name": "mg-1", "properties": {"scope": "/providers/Microsoft.Management/managementGroups/contoso-prod"}}
        ]}));
    script_group_eligibility(&h);

    let round = h
        .round(&ArmTenantFeed, Position::Baseline, Hints::default())
        .await
        .expect("a forbidden list does not fail the round");

    assert!(
        h.api.all_used(),
        "the other group and the eligibility lists are still read"
    );
    assert!(
        !round.completes_any(Collection::RoleAssignment),
        "one group's list is missing: no assignment may be swept"
    );
    assert!(
        round.completes_any(Collection::RoleEligibility),
        "the eligibility lists were all read"
    );
    let mut stored = h.store.ids(Collection::RoleAssignment);
    stored.sort();
    assert_eq!(stored, vec![
        "/providers/microsoft.management/managementgroups/contoso-prod/providers/microsoft.authorization/roleassignments/mg-1".to_string(),
        STALE.to_string(),
    ]);
}

/// Issue #14, item 2: a 403 (no Management Group Reader) or 404 (no hierarchy) on the tree is
/// no evidence that the groups, or what is assigned at them and at the root, are gone.
#[tokio::test]
async fn without_management_group_reader_the_tenant_feed_keeps_what_it_read_before() {
    const ROOT_ASSIGNMENT: &str = "/providers/microsoft.authorization/roleassignments/root-1";
    for refusal in [
        ApiError::Forbidden {
            code: "AuthorizationFailed".into(),
            message: "no access".into(),
        },
        ApiError::NotFound {
            code: "NotFound".into(),
            message: "no hierarchy".into(),
        },
    ] {
        let mut h = Harness::new();
        h.store.put(Collection::Organization, TENANT, json!({}));
        h.store.put(Collection::ManagementGroup, "old", json!({}));
        h.store
            .put(Collection::RoleAssignment, ROOT_ASSIGNMENT, json!({}));
        h.api
            .arm("/subscriptions?api-version=2022-12-01", json!({"value": []}))
            .arm_err(&format!("/providers/Microsoft.Management/managementGroups/{TENANT}?api-version=2023-04-01&$expand=children&$recurse=true"), refusal);
        let round = h
            .round(&ArmTenantFeed, Position::Baseline, Hints::default())
            .await
            .unwrap();
        assert_eq!(h.api.calls().len(), 2);
        let tree = &h.api.calls()[1];
        assert!(
            tree.headers
                .contains(&("Cache-Control".to_string(), "no-cache".to_string())),
            "the tree bypasses ARM's caches (item 12): {:?}",
            tree.headers
        );
        assert!(!round.completes_any(Collection::ManagementGroup));
        assert!(!round.completes_any(Collection::RoleAssignment));
        assert_eq!(
            h.store.ids(Collection::ManagementGroup),
            vec!["old".to_string()]
        );
        assert_eq!(
            h.store.ids(Collection::RoleAssignment),
            vec![ROOT_ASSIGNMENT.to_string()]
        );
    }
}

#[tokio::test]
async fn a_removed_subscription_takes_every_item_its_feed_stored() {
    let mut h = Harness::new();
    script_full_listing(&h);
    h.round(
        subscription_feed(SUB).as_ref(),
        Position::Baseline,
        Hints::default(),
    )
    .await
    .unwrap();
    let other = "/subscriptions/ffffffff-0000-0000-0000-000000000000/providers/microsoft.authorization/roleassignments/x";
    h.store.put(Collection::RoleAssignment, other, json!({}));
    let page = baton_azure_delta::feeds::Page {
        changes: baton_azure_delta::feeds::subscription_removed(SUB),
        ..Default::default()
    };
    h.store.apply(&page, 99);
    for collection in [
        Collection::ResourceGroup,
        Collection::RoleDefinition,
        Collection::StorageAccount,
        Collection::Container,
    ] {
        assert!(
            h.store.ids(collection).is_empty(),
            "{collection:?} left behind"
        );
    }
    assert_eq!(
        h.store.ids(Collection::RoleAssignment),
        vec![other.to_string()]
    );
}
