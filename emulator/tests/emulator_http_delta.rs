//! Graph delta over HTTPS: rounds, page caps with a large group split and repeated, duplicates,
//! soft and hard deletes, `members@delta`, `$select` tracking, `Prefer: return=minimal`,
//! `$deltatoken=latest`, `syncStateNotFound` and the 410 Gone resync switch.

mod emulator_http_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use emulator::TenantSpec;
use emulator::changes::{TenantChange, UserPatch};
use emulator_http_support::Harness;
use serde_json::Value;

/// Every page of one round, and the deltaLink that ends it.
async fn round(h: &Harness, start: &str, headers: &[(&str, &str)]) -> (Vec<Value>, String) {
    let mut pages = Vec::new();
    let mut url = h.graph_url(start);
    loop {
        let page = h.graph_get(&url, headers).await;
        assert_eq!(page.status, 200, "{url}: {}", page.body);
        let next = page.body["@odata.nextLink"].as_str().map(str::to_string);
        let delta = page.body["@odata.deltaLink"].as_str().map(str::to_string);
        assert!(
            next.is_none() || delta.is_none(),
            "a page never carries both links"
        );
        pages.push(page.body);
        match (next, delta) {
            (Some(n), None) => url = n,
            (None, Some(d)) => return (pages, d),
            _ => panic!("a page without nextLink or deltaLink"),
        }
    }
}

fn items(pages: &[Value]) -> Vec<Value> {
    pages
        .iter()
        .flat_map(|p| p["value"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_rounds_cap_pages_split_large_groups_and_repeat_objects() {
    let h = Harness::start(TenantSpec::with_users(2000)).await;
    let (pages, delta_link) = round(
        &h,
        "/v1.0/users/delta?$select=id,displayName,accountEnabled",
        &[],
    )
    .await;
    assert!(delta_link.contains("$deltatoken="));
    assert!(pages.len() > 1);
    let users = items(&pages);
    let unique: BTreeSet<&str> = users.iter().filter_map(|u| u["id"].as_str()).collect();
    let live: BTreeSet<String> = h
        .emulator
        .control()
        .with_tenant(|t| t.live_users().map(|u| u.id.to_string()).collect());
    assert_eq!(unique, live.iter().map(String::as_str).collect());
    assert!(
        users.len() > unique.len(),
        "the initial round repeats some objects"
    );
    assert!(
        pages
            .iter()
            .all(|p| p["value"].as_array().is_some_and(|v| v.len() <= 201))
    );

    let (pages, _) = round(
        &h,
        "/v1.0/groups/delta?$select=id,displayName,members,owners",
        &[],
    )
    .await;
    let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut appearances: BTreeMap<String, usize> = BTreeMap::new();
    for page in &pages {
        let value = page["value"].as_array().expect("value");
        assert!(value.len() <= 200);
        let links: usize = value
            .iter()
            .map(|g| {
                g["members@delta"].as_array().map_or(0, Vec::len)
                    + g["owners@delta"].as_array().map_or(0, Vec::len)
            })
            .sum();
        assert!(links <= 500, "{links} links on one page");
        for g in value {
            let id = g["id"].as_str().expect("id").to_string();
            *appearances.entry(id.clone()).or_default() += 1;
            assert!(
                g["displayName"].is_string(),
                "a repeated group keeps its properties"
            );
            let set = members.entry(id).or_default();
            for m in g["members@delta"].as_array().into_iter().flatten() {
                assert!(m.get("@removed").is_none());
                set.insert(m["id"].as_str().expect("member id").to_string());
            }
        }
    }
    let expected: BTreeMap<String, BTreeSet<String>> = h.emulator.control().with_tenant(|t| {
        t.live_groups()
            .map(|g| {
                (
                    g.id.to_string(),
                    g.members.iter().map(|m| m.to_string()).collect(),
                )
            })
            .collect()
    });
    assert_eq!(members, expected);
    let (largest, _) = h.emulator.control().with_tenant(|t| {
        t.live_groups()
            .map(|g| (g.id.to_string(), g.members.len()))
            .max_by_key(|(_, n)| *n)
            .expect("groups")
    });
    assert!(
        appearances[&largest] >= 2,
        "the large group is split over pages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_rounds_report_changes_removals_and_member_links() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.emulator.control();
    let (_, users_link) = round(&h, "/v1.0/users/delta?$select=id,displayName", &[]).await;
    let (_, groups_link) =
        round(&h, "/v1.0/groups/delta?$select=id,displayName,members", &[]).await;

    let (renamed, soft, hard, disabled, group, added, removed) = control.with_tenant(|t| {
        let users: Vec<_> = t.live_users().map(|u| u.id).collect();
        let group = t
            .live_groups()
            .find(|g| !g.members.is_empty())
            .expect("group with members");
        let removed = group.members[0];
        let added = *users
            .iter()
            .find(|u| {
                !group.members.contains(u)
                    && **u != removed
                    && ![users[0], users[1], users[2]].contains(u)
            })
            .expect("a non-member");
        (
            users[0], users[1], users[2], users[3], group.id, added, removed,
        )
    });
    let rename = UserPatch {
        display_name: Some("Renamed Person".into()),
        ..UserPatch::default()
    };
    control
        .apply(TenantChange::UpdateUser {
            id: renamed,
            patch: rename,
        })
        .expect("rename");
    control
        .apply(TenantChange::SoftDeleteUser(soft))
        .expect("soft delete");
    control
        .apply(TenantChange::HardDeleteUser(hard))
        .expect("hard delete");
    let disable = UserPatch {
        account_enabled: Some(false),
        ..UserPatch::default()
    };
    control
        .apply(TenantChange::UpdateUser {
            id: disabled,
            patch: disable,
        })
        .expect("disable");
    control
        .apply(TenantChange::AddMember {
            group,
            member: added,
        })
        .expect("add member");
    control
        .apply(TenantChange::RemoveMember {
            group,
            member: removed,
        })
        .expect("remove member");

    let (pages, _) = round(&h, &users_link, &[]).await;
    let by_id: BTreeMap<String, Value> = items(&pages)
        .into_iter()
        .map(|u| (u["id"].as_str().unwrap_or_default().to_string(), u))
        .collect();
    assert_eq!(by_id[&renamed.to_string()]["displayName"], "Renamed Person");
    assert_eq!(by_id[&soft.to_string()]["@removed"]["reason"], "changed");
    assert_eq!(by_id[&hard.to_string()]["@removed"]["reason"], "deleted");
    assert!(
        !by_id.contains_key(&disabled.to_string()),
        "accountEnabled is not selected, so it is not tracked"
    );

    let (pages, _) = round(&h, &groups_link, &[]).await;
    let changed = items(&pages);
    let entry = changed
        .iter()
        .find(|g| g["id"] == group.to_string())
        .expect("the group changed");
    let links = entry["members@delta"].as_array().expect("members@delta");
    let find = |id: uuid::Uuid| links.iter().find(|m| m["id"] == id.to_string()).cloned();
    assert!(find(added).is_some_and(|m| m.get("@removed").is_none()));
    assert_eq!(
        find(removed).map(|m| m["@removed"]["reason"].clone()),
        Some("deleted".into())
    );
}

#[tokio::test]
async fn minimal_responses_latest_tokens_expiry_and_forced_resync() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.emulator.control();
    let latest = h
        .graph_get(
            "/v1.0/users/delta?$select=id,displayName,surname&$deltatoken=latest",
            &[],
        )
        .await;
    assert_eq!(latest.status, 200);
    assert_eq!(latest.body["value"].as_array().map(Vec::len), Some(0));
    let link = latest.body["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();

    let user = control
        .with_tenant(|t| t.live_users().next().map(|u| u.id))
        .expect("a user");
    let rename = UserPatch {
        display_name: Some("Only This Changed".into()),
        ..UserPatch::default()
    };
    control
        .apply(TenantChange::UpdateUser {
            id: user,
            patch: rename,
        })
        .expect("rename");
    let minimal = h.graph_get(&link, &[("Prefer", "return=minimal")]).await;
    assert_eq!(minimal.status, 200);
    assert_eq!(minimal.header("preference-applied"), Some("return=minimal"));
    let value = minimal.body["value"].as_array().expect("value");
    assert_eq!(value.len(), 1);
    let keys: BTreeSet<&str> = value[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, BTreeSet::from(["id", "displayName"]));
    let next_link = minimal.body["@odata.deltaLink"]
        .as_str()
        .expect("deltaLink")
        .to_string();

    control.force_delta_resync(true);
    let gone = h.graph_get(&next_link, &[]).await;
    assert_eq!(gone.status, 410);
    let location = gone.header("location").expect("Location").to_string();
    assert!(location.ends_with("$deltatoken="), "{location}");
    assert!(
        location.contains("$select=id,displayName,surname"),
        "{location}"
    );
    let (pages, fresh_link) = round(&h, &location, &[]).await;
    assert!(
        !items(&pages).is_empty(),
        "the Location starts a full round"
    );
    let fresh = h.graph_get(&fresh_link, &[]).await;
    assert_eq!(fresh.status, 200, "tokens issued after the switch work");
    control.force_delta_resync(false);

    control.advance_clock(Duration::from_secs(8 * 24 * 3600));
    let expired = h.graph_get(&fresh_link, &[]).await;
    assert_eq!(expired.status, 400);
    assert_eq!(expired.body["error"]["code"], "syncStateNotFound");
}

#[tokio::test]
async fn service_principal_and_directory_role_rounds_cover_every_object() {
    let h = Harness::start(TenantSpec::small()).await;
    let (sps, roles) = h.emulator.control().with_tenant(|t| {
        let sps: BTreeSet<String> = t
            .service_principals
            .keys()
            .map(|id| id.to_string())
            .collect();
        let roles: BTreeMap<String, BTreeSet<String>> = t
            .directory_roles
            .values()
            .map(|r| {
                (
                    r.id.to_string(),
                    r.members.iter().map(|m| m.to_string()).collect(),
                )
            })
            .collect();
        (sps, roles)
    });
    let (pages, _) = round(
        &h,
        "/v1.0/servicePrincipals/delta?$select=id,appId,displayName,servicePrincipalType",
        &[],
    )
    .await;
    let seen: BTreeSet<String> = items(&pages)
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(seen, sps);
    assert!(
        items(&pages)
            .iter()
            .all(|s| s["servicePrincipalType"].is_string())
    );

    assert!(
        !roles.is_empty(),
        "the tenant has activated directory roles"
    );
    let (pages, _) = round(&h, "/v1.0/directoryRoles/delta", &[]).await;
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for role in items(&pages) {
        let members = seen
            .entry(role["id"].as_str().expect("id").to_string())
            .or_default();
        for m in role["members@delta"].as_array().into_iter().flatten() {
            members.insert(m["id"].as_str().expect("member id").to_string());
        }
    }
    assert_eq!(seen, roles);

    let unknown = h.graph_get("/v1.0/applications/delta", &[]).await;
    assert_eq!(unknown.status, 400);
    let too_many: Vec<String> = (0..51)
        .map(|i| format!("id eq '{}'", uuid::Uuid::from_u128(i)))
        .collect();
    let filter =
        url::form_urlencoded::byte_serialize(too_many.join(" or ").as_bytes()).collect::<String>();
    let refused = h
        .graph_get(&format!("/v1.0/users/delta?$filter={filter}"), &[])
        .await;
    assert_eq!(refused.status, 400, "users delta takes at most 50 ids");
}
