//! Projection throughput on a synthetic tenant held in memory (no sled, so the numbers are the
//! projection's own): a full snapshot, and the incremental work one change costs.
//!
//! `cargo bench --bench projection` (sizes: PROJECTION_BENCH_USERS, default 20 000).

/// The program's allocator (src/main.rs), so the numbers are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/projection_support/mod.rs"]
mod projection_support;

use std::collections::BTreeSet;
use std::time::Instant;

use baton_azure_delta::item::{Collection, ItemKey};
use baton_azure_delta::model::projection::{self, ItemLookup, Origin, ProjectionOptions};
use projection_support::{MemItems, arm_assignment, member, role_definition_arm, user};
use serde_json::json;

fn guid(kind: u32, n: u32) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

fn synthetic(users: u32) -> MemItems {
    let groups = users / 10;
    let sps = users / 20;
    let mut m = MemItems::default();
    m.put(
        Collection::Organization,
        &guid(1, 0),
        json!({"id": guid(1, 0), "displayName": "Bench"}),
    );
    for u in 0..users {
        let id = guid(2, u);
        let mut v = user(
            &id,
            &format!("user{u}"),
            &format!("user{u}@bench.example"),
            None,
        );
        if u > 0 {
            v["manager@delta"] = json!([{"id": guid(2, u / 10)}]);
        }
        m.put(Collection::User, &id, v);
    }
    for g in 0..groups {
        let id = guid(3, g);
        m.put(
            Collection::Group,
            &id,
            json!({"id": id, "displayName": format!("group{g}")}),
        );
        // Ten memberships per user on average, spread over the groups.
        for k in 0..100 {
            let u = (g * 97 + k * 7919) % users;
            m.put(
                Collection::GroupMember,
                &format!("{id}/{}", guid(2, u)),
                member("user"),
            );
        }
        m.put(
            Collection::GroupOwner,
            &format!("{id}/{}", guid(2, g)),
            member("user"),
        );
    }
    let sub = guid(9, 1);
    for r in 0..50 {
        m.put(
            Collection::RoleDefinition,
            &format!("{sub}:{}", guid(8, r)),
            role_definition_arm(&guid(8, r), &format!("role{r}")),
        );
    }
    m.put(
        Collection::Subscription,
        &sub,
        json!({"id": format!("/subscriptions/{sub}"), "displayName": "bench"}),
    );
    for s in 0..sps {
        let id = guid(4, s);
        m.put(
            Collection::ServicePrincipal,
            &id,
            json!({
                "id": id, "displayName": format!("app{s}"), "servicePrincipalType": "Application",
                "appRoles": [{"id": guid(5, 1), "displayName": "User"}]
            }),
        );
        for k in 0..20 {
            m.put(
                Collection::AppRoleAssignment,
                &format!("{id}/a{k}"),
                json!({
                    "appRoleId": guid(5, 1), "principalId": guid(2, (s * 31 + k) % users),
                    "principalType": "User", "resourceId": id
                }),
            );
        }
        let (rid, v) = arm_assignment(
            &format!("/subscriptions/{sub}"),
            &format!("ra{s}"),
            &guid(8, s % 50),
            &guid(2, s),
            "User",
        );
        m.put(Collection::RoleAssignment, &rid, v);
    }
    m
}

fn main() {
    let users: u32 = std::env::var("PROJECTION_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let built = Instant::now();
    let items = synthetic(users);
    let item_count = items.entries().count();
    println!(
        "synthetic tenant: {users} users, {item_count} items, built in {:.2?}",
        built.elapsed()
    );
    let options = ProjectionOptions::default();

    let started = Instant::now();
    let origins = projection::all_origins(&items);
    let mut records = 0usize;
    for origin in &origins {
        records += projection::project(origin, &items, &options).len();
    }
    let took = started.elapsed();
    println!(
        "full snapshot: {} origins, {records} records in {took:.2?} = {:.0} records/s",
        origins.len(),
        records as f64 / took.as_secs_f64()
    );

    // What one change costs the store: dependents before and after, then projection of each.
    let cases = [
        (
            "user (manager of 10, ~10 memberships)",
            ItemKey::new(Collection::User, guid(2, 7)),
        ),
        (
            "group (~100 members)",
            ItemKey::new(Collection::Group, guid(3, 5)),
        ),
        (
            "membership",
            ItemKey::new(
                Collection::GroupMember,
                items.ids(Collection::GroupMember, "").swap_remove(0),
            ),
        ),
        (
            "role definition",
            ItemKey::new(
                Collection::RoleDefinition,
                format!("{}:{}", guid(9, 1), guid(8, 3)),
            ),
        ),
    ];
    for (name, key) in cases {
        let rounds = 200;
        let started = Instant::now();
        let mut projected = 0usize;
        for _ in 0..rounds {
            let mut affected: BTreeSet<Origin> =
                projection::dependents(&key, &items).into_iter().collect();
            affected.insert(Origin::Item(key.clone()));
            for origin in &affected {
                projected += projection::project(origin, &items, &options).len();
            }
        }
        let each = started.elapsed() / rounds;
        println!(
            "one {name} change: {} records re-projected in {each:.2?}",
            projected / rounds as usize
        );
    }
}
