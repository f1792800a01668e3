//! Calls per feed for one tenant shape: a baseline, then a round where nothing changed. Each
//! feed runs against scripted pages sized as Microsoft pages them (999 a list page, 20 requests a
//! `$batch`); the counts are asserted against the formula each strategy promises and printed
//! (`cargo test --test feeds_call_counts -- --nocapture`).

mod feeds_support;

use baton_azure_delta::feeds::{
    Collection, Feed, Hints, Position, subscription_feed, tenant_feeds,
};
use feeds_support::Harness;
use serde_json::{Value, json};

const USERS: usize = 5000;
const GROUPS: usize = 800;
/// Objects per groups/delta page (Graph picks the size; a few hundred links a page).
const GROUPS_PER_DELTA_PAGE: usize = 100;
const SERVICE_PRINCIPALS: usize = 300;
/// Objects per servicePrincipals/delta page (Graph picks the size).
const SERVICE_PRINCIPALS_PER_DELTA_PAGE: usize = 100;
const APPLICATIONS: usize = 200;
/// Applications whose assignments fill more than one page.
const BIG_APPLICATIONS: usize = 2;
const SUBSCRIPTIONS: usize = 3;
const STORAGE_ACCOUNTS_PER_SUBSCRIPTION: usize = 2;
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const USER_FIELDS: &str = "id,displayName,givenName,surname,mail,userPrincipalName,accountEnabled,employeeId,userType,jobTitle,department,createdDateTime";
const GROUP_DELTA: &str = "/v1.0/groups/delta?$select=id,displayName,description,mail,mailEnabled,securityEnabled,groupTypes,onPremisesSyncEnabled,isAssignableToRole,createdDateTime,securityIdentifier,members,owners";
const SP_FIELDS: &str = "id,appId,displayName,servicePrincipalType,accountEnabled,appRoles,appOwnerOrganizationId,appRoleAssignmentRequired,tags,description,homepage";

fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// Scripts `items` as pages of `size` behind `first`, linked by `link_name`.
fn script_pages(h: &Harness, arm: bool, first: &str, items: Vec<Value>, size: usize, last: Value) {
    let chunks: Vec<Vec<Value>> = items.chunks(size).map(<[Value]>::to_vec).collect();
    let mut url = first.to_string();
    for (n, chunk) in chunks.iter().enumerate() {
        let mut page = json!({"value": chunk});
        if n + 1 < chunks.len() {
            let next = format!("https://example.invalid{first}&$skiptoken={n}");
            page[if arm { "nextLink" } else { "@odata.nextLink" }] = json!(next);
            script(h, arm, &url, page);
            url = next;
        } else {
            for (k, v) in last.as_object().into_iter().flatten() {
                page[k] = v.clone();
            }
            script(h, arm, &url, page);
        }
    }
}

fn script(h: &Harness, arm: bool, url: &str, page: Value) {
    if arm {
        h.api.arm(url, page);
    } else {
        h.api.graph(url, page);
    }
}

fn script_baseline(h: &Harness) {
    let users = (0..USERS)
        .map(|n| json!({"id": format!("u{n}"), "displayName": format!("User {n}")}))
        .collect();
    h.api.graph(
        &format!("/v1.0/users/delta?$select={USER_FIELDS},manager&$deltatoken=latest"),
        json!({"@odata.deltaLink": "users-dl"}),
    );
    script_pages(
        h,
        false,
        &format!("/v1.0/users?$select={USER_FIELDS}&$expand=manager($select=id)&$top=100"),
        users,
        // `$expand` on directory objects: at most 100 a page (Graph known issue 13635).
        100,
        json!({}),
    );
    let groups = (0..GROUPS)
        .map(|n| json!({"id": format!("g{n}"), "groupTypes": [], "members@delta": [{"@odata.type": "#microsoft.graph.user", "id": format!("u{n}")}]}))
        .collect();
    script_pages(
        h,
        false,
        GROUP_DELTA,
        groups,
        GROUPS_PER_DELTA_PAGE,
        json!({"@odata.deltaLink": "groups-dl"}),
    );
    let sps = (0..SERVICE_PRINCIPALS)
        .map(|n| {
            let kind = if n < APPLICATIONS {
                "Application"
            } else {
                "ManagedIdentity"
            };
            json!({"id": format!("sp{n}"), "servicePrincipalType": kind})
        })
        .collect();
    script_pages(
        h,
        false,
        &format!("/v1.0/servicePrincipals/delta?$select={SP_FIELDS}"),
        sps,
        SERVICE_PRINCIPALS_PER_DELTA_PAGE,
        json!({"@odata.deltaLink": "sps-dl"}),
    );
    script_polled_round(h, true);
    h.api.arm(&format!("/providers/Microsoft.Management/managementGroups/{TENANT}?api-version=2023-04-01&$expand=children&$recurse=true"), json!({
        "id": format!("/providers/Microsoft.Management/managementGroups/{TENANT}"), "name": TENANT, "type": "Microsoft.Management/managementGroups",
        "properties": {"displayName": "Tenant Root Group", "children": [{"id": "/providers/Microsoft.Management/managementGroups/prod", "name": "prod", "type": "Microsoft.Management/managementGroups", "displayName": "Prod", "children": []}]}
    }));
    for s in 0..SUBSCRIPTIONS {
        let sub = format!("00000000-0000-0000-0000-00000000000{s}");
        let base = format!("/subscriptions/{sub}");
        h.api
            .arm(&format!("{base}/resourcegroups?api-version=2021-04-01"), json!({"value": [{"name": "rg"}]}))
            .arm(&format!("{base}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=atScopeAndBelow()"), json!({"value": [{"name": "r"}]}))
            .arm(&format!("{base}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"), json!({"value": []}))
            .arm(&format!("{base}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances?api-version=2020-10-01"), json!({"value": []}));
        let accounts: Vec<Value> = (0..STORAGE_ACCOUNTS_PER_SUBSCRIPTION)
            .map(|a| json!({"id": format!("{base}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acc{a}"), "name": format!("acc{a}")}))
            .collect();
        for account in &accounts {
            h.api.arm(
                &format!(
                    "{}/blobServices/default/containers?api-version=2023-05-01",
                    account["id"].as_str().unwrap()
                ),
                json!({"value": []}),
            );
        }
        h.api.arm(
            &format!("{base}/providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01"),
            json!({"value": accounts}),
        );
    }
}

/// The lists every round re-reads (polled feeds), and the tenant's ARM lists.
fn script_polled_round(h: &Harness, per_object: bool) {
    h.api
        .graph("/v1.0/organization?$select=id,displayName,verifiedDomains,tenantType", json!({"value": [{"id": TENANT}]}))
        .graph("/v1.0/roleManagement/directory/roleDefinitions?$select=id,displayName,description,templateId,isBuiltIn,isEnabled", json!({"value": [{"id": "d1"}]}))
        .graph("/v1.0/roleManagement/directory/roleAssignments?$select=id,principalId,roleDefinitionId,directoryScopeId,appScopeId", json!({"value": [{"id": "a1"}]}))
        .graph("/v1.0/roleManagement/directory/roleEligibilitySchedules?$select=id,principalId,roleDefinitionId,directoryScopeId,appScopeId,memberType,scheduleInfo,status", json!({"value": []}));
    for n in (0..APPLICATIONS).filter(|_| per_object) {
        let url = format!("/servicePrincipals/sp{n}/appRoleAssignedTo?$top=999");
        if n < BIG_APPLICATIONS {
            let next = format!(
                "https://graph.microsoft.com/v1.0/servicePrincipals/sp{n}/appRoleAssignedTo?$skiptoken=1"
            );
            h.api.batch(
                &url,
                200,
                json!({"value": [{"id": format!("a{n}-1")}], "@odata.nextLink": next}),
            );
            h.api
                .graph(&next, json!({"value": [{"id": format!("a{n}-2")}]}));
        } else {
            h.api.batch(&url, 200, json!({"value": []}));
        }
    }
    // Service principal owners have no change signal either: every poll re-reads them.
    for n in (0..SERVICE_PRINCIPALS).filter(|_| per_object) {
        h.api.batch(
            &format!("/servicePrincipals/sp{n}/owners?$select=id"),
            200,
            json!({"value": []}),
        );
    }
    for n in (0..GROUPS).filter(|_| per_object) {
        h.api.batch(&format!("/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=groupId%20eq%20'g{n}'"), 200, json!({"value": []}));
    }
    h.api.arm("/subscriptions?api-version=2022-12-01", json!({"value": (0..SUBSCRIPTIONS)
        .map(|s| json!({"subscriptionId": format!("00000000-0000-0000-0000-00000000000{s}"), "tenantId": TENANT}))
        .collect::<Vec<_>>()}));
    for group in [TENANT, "prod"] {
        h.api.arm(&format!("/providers/Microsoft.Management/managementGroups/{group}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"), json!({"value": []}));
        h.api.arm(&format!("/providers/Microsoft.Management/managementGroups/{group}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances?api-version=2020-10-01&$filter=atScope()"), json!({"value": []}));
    }
}

fn script_quiet_round(h: &Harness, per_object: bool) {
    for link in ["users-dl", "groups-dl", "sps-dl"] {
        h.api
            .graph(link, json!({"value": [], "@odata.deltaLink": link}));
    }
    script_polled_round(h, per_object);
    h.api.arm(&format!("/providers/Microsoft.Management/managementGroups/{TENANT}?api-version=2023-04-01&$expand=children&$recurse=true"), json!({
        "id": "root", "name": TENANT, "properties": {"children": [{"id": "/providers/Microsoft.Management/managementGroups/prod", "name": "prod", "type": "Microsoft.Management/managementGroups", "children": []}]}
    }));
}

/// Runs every feed once from its position; returns (feed, calls) and the cursors.
async fn run_all(
    h: &mut Harness,
    feeds: &[Box<dyn Feed>],
    cursors: &mut [Option<Value>],
    activity: bool,
) -> Vec<(String, usize)> {
    let mut counts = Vec::new();
    for (n, feed) in feeds.iter().enumerate() {
        if activity && feed.name().starts_with("arm_subscription:") {
            let sub = feed
                .name()
                .trim_start_matches("arm_subscription:")
                .to_string();
            // The window starts where the baseline (10 minutes ago) started, minus the overlap.
            let from = h.clock.now()
                - std::time::Duration::from_secs(600)
                - h.options.activity_log_overlap;
            let url = baton_azure_delta::feeds::activity_log::query_url(&sub, from, h.clock.now())
                .unwrap();
            h.api.arm(&url, json!({"value": []}));
        }
        let before = h.api.calls().len();
        let start = match &cursors[n] {
            Some(cursor) => Position::Delta(cursor.clone()),
            None => Position::Baseline,
        };
        let round = h
            .round(feed.as_ref(), start, Hints::default())
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", feed.name()));
        cursors[n] = Some(round.cursor);
        counts.push((feed.name(), h.api.calls().len() - before));
    }
    counts
}

#[tokio::test]
async fn calls_per_feed_for_a_baseline_and_a_quiet_round() {
    let mut h = Harness::new();
    script_baseline(&h);
    let mut feeds = tenant_feeds();
    for s in 0..SUBSCRIPTIONS {
        feeds.push(subscription_feed(&format!(
            "00000000-0000-0000-0000-00000000000{s}"
        )));
    }
    let mut cursors = vec![None; feeds.len()];
    let baseline = run_all(&mut h, &feeds, &mut cursors, false).await;
    assert!(h.api.all_used(), "every scripted page was read");
    assert_eq!(h.store.ids(Collection::User).len(), USERS);

    h.clock.advance(std::time::Duration::from_secs(600));
    script_quiet_round(&h, true);
    let quiet = run_all(&mut h, &feeds, &mut cursors, true).await;
    assert!(h.api.all_used());

    // Ten minutes later again, with the per-object polls spaced to one an hour.
    h.options.poll_every = std::time::Duration::from_secs(3600);
    h.clock.advance(std::time::Duration::from_secs(600));
    script_quiet_round(&h, false);
    let spaced = run_all(&mut h, &feeds, &mut cursors, true).await;
    assert!(h.api.all_used());

    println!(
        "\n{:<56} {:>9} {:>7} {:>14}",
        "feed", "baseline", "quiet", "quiet, poll 1h"
    );
    for (((name, b), (_, q)), (_, p)) in baseline.iter().zip(&quiet).zip(&spaced) {
        println!("{name:<56} {b:>9} {q:>7} {p:>14}");
    }
    let total = |counts: &[(String, usize)]| counts.iter().map(|(_, c)| c).sum::<usize>();
    println!(
        "{:<56} {:>9} {:>7} {:>14}",
        "total",
        total(&baseline),
        total(&quiet),
        total(&spaced)
    );
    println!(
        "(tenant: {USERS} users, {GROUPS} groups, {SERVICE_PRINCIPALS} service principals of which {APPLICATIONS} applications, {SUBSCRIPTIONS} subscriptions)"
    );

    let expect = |name: &str, counts: &[(String, usize)]| {
        counts.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
    };
    let polled_assignments = ceil_div(APPLICATIONS, 20) + BIG_APPLICATIONS;
    let pim_groups = ceil_div(GROUPS, 20);
    for (name, base, quiet_calls) in [
        ("users", 1 + ceil_div(USERS, 100), 1),
        ("groups", ceil_div(GROUPS, GROUPS_PER_DELTA_PAGE), 1),
        (
            "service_principals",
            ceil_div(SERVICE_PRINCIPALS, SERVICE_PRINCIPALS_PER_DELTA_PAGE),
            1,
        ),
        (
            "service_principal_owners",
            ceil_div(SERVICE_PRINCIPALS, 20),
            ceil_div(SERVICE_PRINCIPALS, 20),
        ),
        (
            "app_role_assignments",
            polled_assignments,
            polled_assignments,
        ),
        ("group_eligibility", pim_groups, pim_groups),
        ("mailbox", 0, 0),
        // Subscriptions and the group tree, then per management group (root and prod) its
        // role assignments and, with P2, its PIM eligibility: both ARM lists have no delta.
        ("arm_tenant", 2 + 2 + 2, 2 + 2 + 2),
        (
            "arm_subscription:00000000-0000-0000-0000-000000000000",
            5 + STORAGE_ACCOUNTS_PER_SUBSCRIPTION,
            1,
        ),
    ] {
        assert_eq!(expect(name, &baseline), Some(base), "{name} baseline");
        assert_eq!(
            expect(name, &quiet),
            Some(quiet_calls),
            "{name} quiet round"
        );
    }
    for name in [
        "app_role_assignments",
        "group_eligibility",
        "service_principal_owners",
    ] {
        assert_eq!(expect(name, &spaced), Some(0), "{name} within poll_every");
    }
}
