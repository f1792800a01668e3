//! The emulator's responses against Microsoft's documented samples in `fixtures/`: every field
//! of a sample must be in the emulator's answer with the same JSON type, recursively, and the
//! paging and delta markers must be where the sample has them. This ties the wire format to the
//! documentation rather than to our own client.

mod emulator_http_support;

use std::time::Duration;

use emulator::TenantSpec;
use emulator::changes::TenantChange;
use emulator_http_support::{ARM_SCOPE, Answer, GRAPH_SCOPE, Harness};
use serde_json::{Value, json};

struct Fixture {
    name: String,
    response: Value,
    optional: Vec<String>,
}

fn fixture(name: &str) -> Fixture {
    // The fixtures are the workspace's: the feeds' tests read the same samples.
    let path = format!("{}/../fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let parsed: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"));
    assert!(
        parsed["source"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://")),
        "{name} names its source"
    );
    Fixture {
        name: name.to_string(),
        response: parsed["response"].clone(),
        optional: parsed["optional_keys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

const LINK_MARKERS: [&str; 2] = ["@odata.nextLink", "@odata.deltaLink"];

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences between a documented sample and an actual answer (empty when the shape matches).
fn shape_errors(doc: &Value, actual: &Value, path: &str, optional: &[String]) -> Vec<String> {
    match (doc, actual) {
        (Value::Null, _) | (_, Value::Null) => Vec::new(),
        (Value::Object(d), Value::Object(a)) => {
            let mut errors = Vec::new();
            for (key, dv) in d {
                if LINK_MARKERS.contains(&key.as_str()) {
                    if !LINK_MARKERS.iter().any(|m| a.contains_key(*m)) {
                        errors.push(format!("{path}: no @odata.nextLink or @odata.deltaLink"));
                    }
                    continue;
                }
                match a.get(key) {
                    Some(av) => {
                        errors.extend(shape_errors(dv, av, &format!("{path}.{key}"), optional))
                    }
                    None if optional.contains(key) => {}
                    None => errors.push(format!("{path}: missing '{key}'")),
                }
            }
            errors
        }
        (Value::Array(d), Value::Array(a)) => {
            if d.is_empty() {
                return Vec::new();
            }
            if a.is_empty() {
                return vec![format!("{path}: empty where the sample has items")];
            }
            let mut errors = Vec::new();
            for (i, dv) in d.iter().enumerate() {
                let attempts: Vec<Vec<String>> = a
                    .iter()
                    .map(|av| shape_errors(dv, av, &format!("{path}[{i}]"), optional))
                    .collect();
                if !attempts.iter().any(Vec::is_empty) {
                    errors.extend(
                        attempts
                            .into_iter()
                            .min_by_key(Vec::len)
                            .unwrap_or_default(),
                    );
                }
            }
            errors
        }
        (d, a) if kind(d) == kind(a) => Vec::new(),
        (d, a) => vec![format!(
            "{path}: sample has {} but emulator sent {}",
            kind(d),
            kind(a)
        )],
    }
}

fn assert_shape(f: &Fixture, answer: &Answer) {
    let errors = shape_errors(&f.response, &answer.body, "$", &f.optional);
    assert!(
        errors.is_empty(),
        "{} differs from the documented shape:\n{}\nemulator sent: {}",
        f.name,
        errors.join("\n"),
        answer.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_reads_match_documented_samples() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.emulator.control();
    let (group, sp, user_with_mailbox, eligible_group) = control.with_tenant(|t| {
        let group = t
            .live_groups()
            .max_by_key(|g| g.members.len())
            .map(|g| g.id)
            .expect("group");
        let sp = t
            .service_principals
            .values()
            .find(|s| !s.app_role_assigned_to.is_empty())
            .map(|s| s.id)
            .expect("assigned app");
        let mailbox = t
            .live_users()
            .find(|u| u.mailbox.user_purpose().is_some())
            .map(|u| u.id)
            .expect("mailbox");
        let eligible = t
            .group_eligibilities
            .values()
            .next()
            .map(|e| e.group_id)
            .expect("PIM for Groups eligibility");
        (group, sp, mailbox, eligible)
    });
    let cases = [
        ("graph/users_list", "/v1.0/users".to_string()),
        ("graph/users_delta_select", "/v1.0/users/delta?$select=displayName,givenName,surname".to_string()),
        ("graph/groups_delta_initial", "/v1.0/groups/delta?$select=displayName,description&$expand=members".to_string()),
        ("graph/group_members", format!("/v1.0/groups/{group}/members")),
        ("graph/app_role_assigned_to", format!("/v1.0/servicePrincipals/{sp}/appRoleAssignedTo")),
        ("graph/service_principals_select", "/v1.0/servicePrincipals?$select=id,appId,displayName,servicePrincipalType,appRoles,accountEnabled".to_string()),
        ("graph/role_definitions", "/v1.0/roleManagement/directory/roleDefinitions".to_string()),
        ("graph/role_assignments", "/v1.0/roleManagement/directory/roleAssignments".to_string()),
        ("graph/role_eligibility_schedules", "/v1.0/roleManagement/directory/roleEligibilitySchedules".to_string()),
        ("graph/role_eligibility_schedule_instances", "/v1.0/roleManagement/directory/roleEligibilityScheduleInstances".to_string()),
        (
            "graph/group_eligibility_schedules",
            format!("/v1.0/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=groupId%20eq%20'{eligible_group}'"),
        ),
        ("graph/mailbox_settings_user_purpose", format!("/v1.0/users/{user_with_mailbox}/mailboxSettings?$select=userPurpose")),
        ("graph/organization", "/v1.0/organization".to_string()),
        ("graph/error_not_found", "/v1.0/users/00000000-0000-0000-0000-00000000dead".to_string()),
    ];
    for (name, path) in cases {
        let answer = h.graph_get(&path, &[]).await;
        assert_shape(&fixture(name), &answer);
    }
}

#[tokio::test]
async fn graph_delta_changes_and_batch_match_documented_samples() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.emulator.control();
    let users = h
        .graph_get(
            "/v1.0/users/delta?$select=displayName&$deltatoken=latest",
            &[],
        )
        .await;
    let users_link = users.body["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();
    let groups = h
        .graph_get(
            "/v1.0/groups/delta?$select=displayName,description&$expand=members&$deltatoken=latest",
            &[],
        )
        .await;
    let groups_link = groups.body["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();

    let (group, removed, added, soft) = control.with_tenant(|t| {
        let g = t
            .live_groups()
            .find(|g| g.members.len() >= 2)
            .expect("group");
        let removed = g.members[0];
        let added = t
            .live_users()
            .find(|u| !g.members.contains(&u.id))
            .map(|u| u.id)
            .expect("non-member");
        let soft = t
            .live_users()
            .find(|u| u.id != added && !g.members.contains(&u.id))
            .map(|u| u.id)
            .expect("another user");
        (g.id, removed, added, soft)
    });
    control
        .apply(TenantChange::RemoveMember {
            group,
            member: removed,
        })
        .expect("remove");
    control
        .apply(TenantChange::AddMember {
            group,
            member: added,
        })
        .expect("add");
    control
        .apply(TenantChange::SoftDeleteUser(soft))
        .expect("soft delete");

    assert_shape(
        &fixture("graph/groups_delta_changes"),
        &h.graph_get(&groups_link, &[]).await,
    );
    assert_shape(
        &fixture("graph/users_delta_removed"),
        &h.graph_get(&users_link, &[]).await,
    );

    let token = h.token(GRAPH_SCOPE).await;
    let body = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/organization"},
        {"id": "2", "method": "GET", "url": "/users/00000000-0000-0000-0000-00000000dead"},
    ]});
    let batch = h
        .send(
            reqwest::Method::POST,
            &h.graph_url("/v1.0/$batch"),
            &token,
            &[],
            Some(&body),
        )
        .await;
    assert_shape(&fixture("graph/batch"), &batch);
}

#[tokio::test]
async fn arm_answers_match_documented_samples() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.emulator.control();
    let (sub, account, user, role) = control.with_tenant(|t| {
        let account = t.storage_accounts.values().next().expect("storage account");
        let sub = account.subscription;
        let account_id = emulator::tenant::storage_account_scope(account);
        let user = t.live_users().next().map(|u| u.id).expect("user");
        let role = t
            .role_definitions
            .values()
            .find(|r| r.assignable_scopes.iter().any(|s| s == "/"))
            .map(|r| r.id)
            .expect("built-in");
        (sub, account_id, user, role)
    });
    let cases = [
        (
            "arm/subscriptions_list",
            "/subscriptions?api-version=2022-12-01".to_string(),
        ),
        (
            "arm/management_groups_list",
            "/providers/Microsoft.Management/managementGroups?api-version=2021-04-01".to_string(),
        ),
        (
            "arm/resource_groups_list",
            format!("/subscriptions/{sub}/resourcegroups?api-version=2021-04-01"),
        ),
        (
            "arm/storage_accounts_list",
            format!(
                "/subscriptions/{sub}/providers/Microsoft.Storage/storageAccounts?api-version=2023-01-01"
            ),
        ),
        (
            "arm/containers_list",
            format!("{account}/blobServices/default/containers?api-version=2023-01-01"),
        ),
        (
            "arm/role_definitions_list",
            format!(
                "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01"
            ),
        ),
        (
            "arm/role_assignments_list",
            format!(
                "/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"
            ),
        ),
        (
            "arm/role_eligibility_schedules",
            format!(
                "/subscriptions/{sub}/providers/Microsoft.Authorization/roleEligibilitySchedules?api-version=2020-10-01"
            ),
        ),
        (
            "arm/error_missing_api_version",
            "/subscriptions".to_string(),
        ),
    ];
    for (name, path) in cases {
        let answer = h.arm_get(&path).await;
        assert_shape(&fixture(name), &answer);
    }

    let token = h.token(ARM_SCOPE).await;
    let entities = h
        .send(
            reqwest::Method::POST,
            &h.arm_url("/providers/Microsoft.Management/getEntities?api-version=2021-04-01"),
            &token,
            &[],
            None,
        )
        .await;
    assert_shape(&fixture("arm/entities"), &entities);

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
    assert_shape(&fixture("arm/role_assignment_created"), &created);

    control.advance_clock(Duration::from_secs(15 * 60));
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    };
    let now = time::OffsetDateTime::now_utc();
    let filter = format!(
        "eventTimestamp ge '{}' and eventTimestamp le '{}' and resourceProvider eq 'Microsoft.Authorization'",
        fmt(now - time::Duration::hours(1)),
        fmt(now + time::Duration::hours(1))
    );
    let log = h
        .arm_get(&format!(
            "/subscriptions/{sub}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter={}",
            url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        ))
        .await;
    assert_shape(&fixture("arm/activity_log"), &log);
}

#[test]
fn the_shape_check_can_fail() {
    let doc = json!({"value": [{"id": "x", "members@delta": [{"id": "y", "@removed": {"reason": "deleted"}}]}], "@odata.deltaLink": "l"});
    let missing_marker =
        json!({"value": [{"id": "x", "members@delta": [{"id": "y"}]}], "@odata.deltaLink": "l"});
    assert!(!shape_errors(&doc, &missing_marker, "$", &[]).is_empty());
    let no_link = json!({"value": [{"id": "x", "members@delta": [{"id": "y", "@removed": {"reason": "deleted"}}]}]});
    assert!(!shape_errors(&doc, &no_link, "$", &[]).is_empty());
    let wrong_type = json!({"value": [{"id": 1, "members@delta": [{"id": "y", "@removed": {"reason": "deleted"}}]}], "@odata.nextLink": "l"});
    assert!(!shape_errors(&doc, &wrong_type, "$", &[]).is_empty());
    let same = json!({"value": [{"id": "z", "extra": true, "members@delta": [{"id": "q", "@removed": {"reason": "deleted"}}]}], "@odata.nextLink": "l"});
    assert!(shape_errors(&doc, &same, "$", &[]).is_empty());
}
