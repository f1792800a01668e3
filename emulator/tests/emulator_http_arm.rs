//! ARM over HTTPS: api-version, containers and hierarchy, role assignment scope semantics,
//! PUT/DELETE with the Activity Log's delayed entries, paging and token-bucket throttling.

mod emulator_http_support;

use std::collections::BTreeSet;
use std::time::Duration;

use emulator::TenantSpec;
use emulator::tenant::scope_is_within;
use emulator_http_support::{ARM_SCOPE, Harness};
use serde_json::{Value, json};

fn names(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn api_version_is_required_and_hierarchy_is_served() {
    let h = Harness::start(TenantSpec::small()).await;
    let missing = h.arm_get("/subscriptions").await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["error"]["code"], "MissingApiVersionParameter");

    let subs = h.arm_all("/subscriptions?api-version=2022-12-01").await;
    let expected = h.emulator.control().with_tenant(|t| t.subscriptions.len());
    assert_eq!(subs.len(), expected);
    let sub = subs[0]["subscriptionId"]
        .as_str()
        .expect("subscriptionId")
        .to_string();
    assert_eq!(subs[0]["id"], format!("/subscriptions/{sub}"));

    let groups = h
        .arm_all(&format!(
            "/subscriptions/{sub}/resourcegroups?api-version=2021-04-01"
        ))
        .await;
    assert!(!groups.is_empty());
    let accounts = h.arm_all(&format!("/subscriptions/{sub}/providers/Microsoft.Storage/storageAccounts?api-version=2023-01-01")).await;
    let account = accounts.first().expect("a storage account");
    let account_id = account["id"].as_str().expect("id");
    let containers = h
        .arm_all(&format!(
            "{account_id}/blobServices/default/containers?api-version=2023-01-01"
        ))
        .await;
    assert!(!containers.is_empty());
    assert_eq!(
        containers[0]["type"],
        "Microsoft.Storage/storageAccounts/blobServices/containers"
    );

    let entities = h
        .arm_get("/providers/Microsoft.Management/getEntities?api-version=2020-05-01")
        .await;
    assert_eq!(entities.status, 404, "getEntities is a POST");
    let token = h.token(ARM_SCOPE).await;
    let url = h.arm_url("/providers/Microsoft.Management/getEntities?api-version=2020-05-01");
    let entities = h.send(reqwest::Method::POST, &url, &token, &[], None).await;
    assert_eq!(entities.status, 200);
    let value = entities.body["value"].as_array().expect("value");
    let sub_entity = value
        .iter()
        .find(|e| e["name"] == sub)
        .expect("the subscription is an entity");
    assert!(
        sub_entity["properties"]["parent"]["id"]
            .as_str()
            .is_some_and(|p| p.starts_with("/providers/Microsoft.Management/managementGroups/"))
    );
    let tenant_id = h.emulator.tenant_id();
    let root = value
        .iter()
        .find(|e| e["name"] == tenant_id)
        .expect("the root group is named after the tenant");
    assert!(root["properties"]["parent"].is_null());
}

#[tokio::test]
async fn role_assignment_lists_follow_arm_scope_semantics() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.emulator.control();
    // A resource group that has an assignment below it or at it, so both directions matter.
    let (rg_scope, at_or_above, all) = control.with_tenant(|t| {
        let rg = t
            .resource_groups
            .values()
            .max_by_key(|rg| {
                let scope = format!(
                    "/subscriptions/{}/resourceGroups/{}",
                    rg.subscription, rg.name
                );
                t.role_assignments
                    .values()
                    .filter(|a| scope_is_within(t, &a.scope, &scope))
                    .count()
            })
            .expect("resource groups");
        let scope = format!(
            "/subscriptions/{}/resourceGroups/{}",
            rg.subscription, rg.name
        );
        let above: BTreeSet<String> = t
            .role_assignments
            .values()
            .filter(|a| scope_is_within(t, &scope, &a.scope))
            .map(|a| a.name.to_string())
            .collect();
        let below: BTreeSet<String> = t
            .role_assignments
            .values()
            .filter(|a| scope_is_within(t, &a.scope, &scope))
            .map(|a| a.name.to_string())
            .collect();
        (
            scope,
            above.clone(),
            above.union(&below).cloned().collect::<BTreeSet<_>>(),
        )
    });
    assert!(
        all.len() > at_or_above.len(),
        "the scope has assignments below it"
    );
    assert!(!at_or_above.is_empty(), "and at or above it");
    let base = format!(
        "{rg_scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"
    );
    let unfiltered = h.arm_all(&base).await;
    assert_eq!(names(&unfiltered), all);
    let at_scope = h.arm_all(&format!("{base}&$filter=atScope()")).await;
    assert_eq!(names(&at_scope), at_or_above);
    assert!(
        at_scope.iter().all(|a| a["properties"]["scope"].is_string()
            && a["properties"]["principalType"].is_string())
    );
}

#[tokio::test]
async fn put_and_delete_land_in_the_activity_log_after_a_delay() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.emulator.control();
    let (sub, user, role) = control.with_tenant(|t| {
        let sub = *t.subscriptions.keys().next().expect("subscription");
        let user = t.live_users().next().expect("user").id;
        let role = t
            .role_definitions
            .values()
            .find(|r| r.assignable_scopes.iter().any(|s| s == "/"))
            .expect("built-in role")
            .id;
        (sub, user, role)
    });
    let token = h.token(ARM_SCOPE).await;
    let name = uuid::Uuid::new_v4();
    let url = h.arm_url(&format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=2022-04-01"));
    let body = json!({"properties": {
        "roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
        "principalId": user.to_string(),
        "principalType": "User",
    }});
    let created = h
        .send(reqwest::Method::PUT, &url, &token, &[], Some(&body))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.body["properties"]["scope"],
        format!("/subscriptions/{sub}")
    );
    let other = h.arm_url(&format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01", uuid::Uuid::new_v4()));
    let duplicate = h
        .send(reqwest::Method::PUT, &other, &token, &[], Some(&body))
        .await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(duplicate.body["error"]["code"], "RoleAssignmentExists");

    let start = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let end = time::OffsetDateTime::now_utc() + time::Duration::hours(2);
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    };
    let filter = format!(
        "eventTimestamp ge '{}' and eventTimestamp le '{}' and resourceProvider eq 'Microsoft.Authorization'",
        fmt(start),
        fmt(end)
    );
    let log_url = format!(
        "/subscriptions/{sub}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter={}",
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    );
    let mine = |events: &[Value], op: &str| {
        events.iter().any(|e| {
            e["operationName"]["value"] == op
                && e["status"]["value"] == "Succeeded"
                && e["resourceId"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&name.to_string()))
        })
    };
    let now = h.arm_all(&log_url).await;
    assert!(
        !mine(&now, "Microsoft.Authorization/roleAssignments/write"),
        "not queryable yet"
    );
    control.advance_clock(Duration::from_secs(10 * 60));
    let later = h.arm_all(&log_url).await;
    assert!(mine(
        &later,
        "Microsoft.Authorization/roleAssignments/write"
    ));
    let event = later
        .iter()
        .find(|e| {
            e["resourceId"]
                .as_str()
                .is_some_and(|r| r.ends_with(&name.to_string()))
        })
        .expect("event");
    for field in [
        "eventTimestamp",
        "submissionTimestamp",
        "eventDataId",
        "caller",
        "correlationId",
    ] {
        assert!(event[field].is_string(), "{field} missing");
    }

    let deleted = h
        .send(reqwest::Method::DELETE, &url, &token, &[], None)
        .await;
    assert_eq!(deleted.status, 200);
    let again = h
        .send(reqwest::Method::DELETE, &url, &token, &[], None)
        .await;
    assert_eq!(again.status, 204);
    control.advance_clock(Duration::from_secs(10 * 60));
    let last = h.arm_all(&log_url).await;
    assert!(mine(
        &last,
        "Microsoft.Authorization/roleAssignments/delete"
    ));

    let no_filter = h.arm_get(&format!("/subscriptions/{sub}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01")).await;
    assert_eq!(no_filter.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_assignments_page_with_next_link() {
    let h = Harness::start(TenantSpec::with_users(6000)).await;
    let total = h
        .emulator
        .control()
        .with_tenant(|t| t.role_assignments.len());
    assert!(total > 100, "enough assignments to page: {total}");
    let first = h
        .arm_get("/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01")
        .await;
    assert_eq!(first.status, 200);
    assert!(
        first.body["nextLink"]
            .as_str()
            .is_some_and(|l| l.contains("api-version=2022-04-01") && l.contains("$skiptoken="))
    );
    let all = h
        .arm_all("/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01")
        .await;
    assert_eq!(names(&all).len(), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arm_read_bucket_empties_into_429_when_quotas_are_on() {
    let h = Harness::start_with(TenantSpec::small(), |c| c.quotas = true).await;
    let token = h.token(ARM_SCOPE).await;
    let sub = h
        .emulator
        .control()
        .with_tenant(|t| *t.subscriptions.keys().next().expect("subscription"));
    let url = h.arm_url(&format!("/subscriptions/{sub}?api-version=2022-12-01"));
    let mut throttled = None;
    for _ in 0..10 {
        let round = (0..60).map(|_| h.send(reqwest::Method::GET, &url, &token, &[], None));
        for answer in futures::future::join_all(round).await {
            if answer.status == 429 && throttled.is_none() {
                throttled = Some(answer);
            }
        }
        if throttled.is_some() {
            break;
        }
    }
    let throttled = throttled.expect("the read bucket of 250 ran out");
    assert_eq!(
        throttled.body["error"]["code"],
        "SubscriptionRequestsThrottled"
    );
    assert!(
        throttled
            .header("retry-after")
            .is_some_and(|s| s.parse::<u64>().is_ok())
    );
    assert!(
        throttled
            .header("x-ms-ratelimit-remaining-subscription-reads")
            .is_some()
    );
}
