//! The change log: what a commit logs, how `changes_since` folds it, export retention, and the
//! invariant that incremental pages give the same records as a fresh baseline.

mod store_support;

use std::collections::{BTreeMap, BTreeSet};

use baton_azure_delta::item::{Change, Collection, ItemKey};
use baton_azure_delta::model::record::{Record, Table};
use baton_azure_delta::store::{ExportKind, RETAINED_EXPORTS, Store};
use proptest::prelude::*;
use serde_json::json;
use store_support::*;

const ALICE: &str = "a1b2c3d4-0000-4000-8000-000000000001";
const BOB: &str = "a1b2c3d4-0000-4000-8000-000000000002";
const SALES: &str = "9a0b1c2d-0000-4000-8000-0000000000a1";

fn grant_id(group: &str, user: &str) -> String {
    format!("group:{group}:members:user:{user}")
}

/// A store holding Alice, Bob, the Sales group with Alice as member, and an export of that.
fn exported_store(dir: &std::path::Path) -> (Store, u64) {
    let store = open(dir);
    let round = store.begin_round("groups").unwrap();
    store
        .commit_page(
            "groups",
            &[
                user(ALICE, "Alice"),
                user(BOB, "Bob"),
                group(SALES, "Sales"),
                member(SALES, ALICE),
            ],
            round,
            &[],
            None,
        )
        .unwrap();
    let seq = store.head_seq();
    store
        .record_export("sync-1", seq, ExportKind::Full)
        .unwrap();
    (store, seq)
}

#[test]
fn a_baseline_into_an_empty_store_is_not_logged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let round = store.begin_round("groups").unwrap();
    let outcome = store
        .commit_page(
            "groups",
            &[
                user(ALICE, "Alice"),
                group(SALES, "Sales"),
                member(SALES, ALICE),
            ],
            round,
            &[],
            None,
        )
        .unwrap();
    assert_eq!(outcome.records_changed, None, "not projected");
    let status = store.status().unwrap();
    assert_eq!(status.records, None);
    assert_eq!(status.log_entries, 0);
    assert_eq!(status.log_floor, store.head_seq());
    // No diff reaches back before the baseline; one from its end is empty.
    assert_eq!(store.changes_since(0).unwrap(), None);
    assert_eq!(
        store.changes_since(store.head_seq()).unwrap(),
        Some(Vec::new())
    );
}

#[test]
fn changes_since_an_export_are_net_changes_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let (store, export) = exported_store(dir.path());
    let before = records(&store);
    let round = store.begin_round("groups").unwrap();
    // Bob joins and leaves again (no net change); Alice is renamed twice (one net change);
    // the group gains an owner.
    for page in [
        vec![member(SALES, BOB), user(ALICE, "Alice Baker")],
        vec![remove(Collection::GroupMember, &format!("{SALES}/{BOB}"))],
        vec![user(ALICE, "Alice Carter"), owner(SALES, BOB)],
    ] {
        store
            .commit_page("groups", &page, round, &[], None)
            .unwrap();
    }
    let changes = store.changes_since(export).unwrap().unwrap();
    let changed: BTreeSet<(Table, String)> = changes
        .iter()
        .map(|c| (c.table, c.external_id.clone()))
        .collect();
    assert!(changed.contains(&(Table::Resources, format!("user:{ALICE}"))));
    assert!(changed.contains(&(Table::Grants, format!("group:{SALES}:owners:user:{BOB}"))));
    assert!(!changed.contains(&(Table::Grants, grant_id(SALES, BOB))));
    let alice = changes
        .iter()
        .find(|c| c.external_id == format!("user:{ALICE}"))
        .unwrap();
    let name = |r: &Option<Record>| match r {
        Some(Record::Resource(r)) => r.display_name.clone(),
        other => panic!("not a resource: {other:?}"),
    };
    assert_eq!(name(&alice.old), "Alice");
    assert_eq!(name(&alice.new), "Alice Carter");

    let mut replayed = before;
    apply_changes(&mut replayed, &changes);
    assert_eq!(replayed, records(&store));
}

#[test]
fn removing_a_user_removes_the_grants_that_name_it() {
    let dir = tempfile::tempdir().unwrap();
    let (store, export) = exported_store(dir.path());
    assert!(records(&store).contains_key(&(Table::Grants, grant_id(SALES, ALICE))));
    let round = store.begin_round("users").unwrap();
    // The users feed removes a soft-deleted user; the membership item stays (Graph's group
    // delta does not report it) but its grant must go, and come back on restore.
    store
        .commit_page(
            "users",
            &[remove(Collection::User, ALICE)],
            round,
            &[],
            None,
        )
        .unwrap();
    assert!(
        store
            .item(&ItemKey::new(
                Collection::GroupMember,
                format!("{SALES}/{ALICE}")
            ))
            .unwrap()
            .is_some()
    );
    let now = records(&store);
    assert!(!now.contains_key(&(Table::Grants, grant_id(SALES, ALICE))));
    let changes = store.changes_since(export).unwrap().unwrap();
    let grant = changes
        .iter()
        .find(|c| c.external_id == grant_id(SALES, ALICE))
        .expect("the grant's removal is logged");
    assert!(grant.old.is_some() && grant.new.is_none());

    store
        .commit_page("users", &[user(ALICE, "Alice")], round, &[], None)
        .unwrap();
    assert!(records(&store).contains_key(&(Table::Grants, grant_id(SALES, ALICE))));
    assert_eq!(store.changes_since(export).unwrap(), Some(Vec::new()));
}

#[test]
fn the_log_keeps_what_retained_exports_need_and_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let (store, first_export) = exported_store(dir.path());
    let round = store.begin_round("users").unwrap();
    let mut exports = vec![("sync-1".to_string(), first_export)];
    for n in 2..=RETAINED_EXPORTS + 2 {
        store
            .commit_page("users", &[user(BOB, &format!("Bob {n}"))], round, &[], None)
            .unwrap();
        let seq = store.head_seq();
        let sync_id = format!("sync-{n}");
        store
            .record_export(&sync_id, seq, ExportKind::Diff)
            .unwrap();
        exports.push((sync_id, seq));
    }
    let (dropped, kept) = exports.split_at(exports.len() - RETAINED_EXPORTS);
    for (sync_id, seq) in dropped {
        assert_eq!(store.export_seq(sync_id).unwrap(), None);
        assert_eq!(store.changes_since(*seq).unwrap(), None, "{sync_id}");
    }
    for (sync_id, seq) in kept {
        assert_eq!(store.export_seq(sync_id).unwrap(), Some(*seq));
        assert!(store.changes_since(*seq).unwrap().is_some(), "{sync_id}");
    }
    let status = store.status().unwrap();
    assert_eq!(status.exports.len(), RETAINED_EXPORTS);
    assert_eq!(status.log_floor, kept[0].1);
    // Only entries after the oldest kept export remain: one user change per later commit.
    assert_eq!(status.log_entries, RETAINED_EXPORTS - 1);
    assert!(
        store
            .record_export("sync-x", store.head_seq() + 1, ExportKind::Full)
            .is_err()
    );
}

// Incremental equals full (DESIGN invariant 1), over random pages of a small tenant.

const USERS: [&str; 3] = [ALICE, BOB, "a1b2c3d4-0000-4000-8000-000000000003"];
const GROUPS: [&str; 2] = [SALES, "9a0b1c2d-0000-4000-8000-0000000000a2"];

const SUB: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
const RESOURCE_GROUPS: [&str; 2] = ["rg-web", "rg-data"];
const ROLES: [(&str, &str); 2] = [
    ("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader"),
    ("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor"),
];

/// The scopes an assignment may be made at, as ARM spells them.
fn scope(n: usize) -> String {
    match n {
        0 => format!("/subscriptions/{SUB}"),
        1 | 2 => format!(
            "/subscriptions/{SUB}/resourceGroups/{}",
            RESOURCE_GROUPS[n - 1]
        ),
        _ => format!(
            "/subscriptions/{SUB}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/kv-prod",
            RESOURCE_GROUPS[0]
        ),
    }
}

/// ARM items: the subscription, its resource groups and role definitions, and role
/// assignments that move between scopes, roles and principals (so that the records of the
/// scope an assignment leaves must be found from the item as it was).
fn arb_arm_change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (0..2usize).prop_map(|n| Change::Upsert {
            key: ItemKey::new(Collection::Subscription, SUB),
            value: json!({
                "id": format!("/subscriptions/{SUB}"),
                "subscriptionId": SUB,
                "displayName": format!("Production {n}"),
                "state": "Enabled",
            }),
        }),
        (0..RESOURCE_GROUPS.len()).prop_map(|r| Change::Upsert {
            key: ItemKey::new(Collection::ResourceGroup, format!("{SUB}:{}", RESOURCE_GROUPS[r])),
            value: json!({
                "id": format!("/subscriptions/{SUB}/resourceGroups/{}", RESOURCE_GROUPS[r]),
                "name": RESOURCE_GROUPS[r],
                "location": "westeurope",
                "properties": {"provisioningState": "Succeeded"},
            }),
        }),
        (0..RESOURCE_GROUPS.len()).prop_map(|r| remove(
            Collection::ResourceGroup,
            &format!("{SUB}:{}", RESOURCE_GROUPS[r])
        )),
        (0..ROLES.len(), any::<bool>()).prop_map(|(r, renamed)| {
            let (guid, name) = ROLES[r];
            Change::Upsert {
                key: ItemKey::new(Collection::RoleDefinition, format!("{SUB}:{guid}")),
                value: json!({
                    "id": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
                    "name": guid,
                    "type": "Microsoft.Authorization/roleDefinitions",
                    "properties": {
                        "roleName": if renamed { format!("{name} (renamed)") } else { name.to_string() },
                        "type": "BuiltInRole",
                        "assignableScopes": ["/"],
                    },
                }),
            }
        }),
        (0..ROLES.len()).prop_map(|r| remove(
            Collection::RoleDefinition,
            &format!("{SUB}:{}", ROLES[r].0)
        )),
        (0..3usize, 0..4usize, 0..ROLES.len(), 0..USERS.len() + GROUPS.len()).prop_map(
            |(a, s, r, p)| {
                let id = format!(
                    "/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/0000000{a}-aaaa-4aaa-8aaa-00000000000{a}"
                );
                let (principal, kind) = match USERS.get(p) {
                    Some(u) => (*u, "User"),
                    None => (GROUPS[p - USERS.len()], "Group"),
                };
                Change::Upsert {
                    key: ItemKey::new(Collection::RoleAssignment, id.to_ascii_lowercase()),
                    value: json!({
                        "id": id,
                        "name": format!("0000000{a}-aaaa-4aaa-8aaa-00000000000{a}"),
                        "type": "Microsoft.Authorization/roleAssignments",
                        "properties": {
                            "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{}", ROLES[r].0),
                            "principalId": principal,
                            "principalType": kind,
                            "scope": scope(s),
                        },
                    }),
                }
            }
        ),
        (0..3usize).prop_map(|a| remove(
            Collection::RoleAssignment,
            &format!(
                "/subscriptions/{SUB}/providers/microsoft.authorization/roleassignments/0000000{a}-aaaa-4aaa-8aaa-00000000000{a}"
            )
        )),
    ]
}

fn arb_change() -> impl Strategy<Value = Change> {
    prop_oneof![3 => arb_entra_change(), 2 => arb_arm_change()]
}

fn arb_entra_change() -> impl Strategy<Value = Change> {
    let u = 0..USERS.len();
    let g = 0..GROUPS.len();
    prop_oneof![
        (u.clone(), 0..3usize).prop_map(|(u, n)| user(USERS[u], &format!("User {n}"))),
        u.clone().prop_map(|u| remove(Collection::User, USERS[u])),
        (u.clone(), any::<bool>()).prop_map(|(u, enabled)| Change::Merge {
            key: ItemKey::new(Collection::User, USERS[u]),
            value: json!({"accountEnabled": enabled}),
        }),
        (u.clone(), 0..2usize).prop_map(|(u, m)| Change::Upsert {
            key: ItemKey::new(Collection::User, USERS[u]),
            value: {
                let mut v = user_value(USERS[u], "Managed");
                v["manager"] = json!({"id": USERS[m], "mail": "boss@contoso.com"});
                v
            },
        }),
        (g.clone(), 0..2usize).prop_map(|(g, n)| group(GROUPS[g], &format!("Group {n}"))),
        g.clone().prop_map(|g| remove(Collection::Group, GROUPS[g])),
        (g.clone(), u.clone()).prop_map(|(g, u)| member(GROUPS[g], USERS[u])),
        (g.clone(), g.clone()).prop_map(|(g, n)| Change::Upsert {
            key: ItemKey::new(
                Collection::GroupMember,
                format!("{}/{}", GROUPS[g], GROUPS[n])
            ),
            value: json!({"@odata.type": "#microsoft.graph.group"}),
        }),
        (g.clone(), u.clone()).prop_map(|(g, u)| remove(
            Collection::GroupMember,
            &format!("{}/{}", GROUPS[g], USERS[u])
        )),
        (g.clone(), u.clone()).prop_map(|(g, u)| owner(GROUPS[g], USERS[u])),
        g.prop_map(|g| Change::RemovePrefix {
            collection: Collection::GroupMember,
            prefix: format!("{}/", GROUPS[g]),
        }),
    ]
}

/// Every item of a store, to rebuild it elsewhere.
fn all_items(store: &Store) -> Vec<Change> {
    let mut out = Vec::new();
    for c in [
        Collection::User,
        Collection::Group,
        Collection::GroupMember,
        Collection::GroupOwner,
        Collection::Subscription,
        Collection::ResourceGroup,
        Collection::RoleDefinition,
        Collection::RoleAssignment,
    ] {
        for id in store.item_ids(c, "").unwrap() {
            let key = ItemKey::new(c, id);
            let value = store.item(&key).unwrap().unwrap();
            out.push(Change::Upsert { key, value });
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn incremental_pages_equal_a_fresh_baseline(
        start in prop::collection::vec(arb_change(), 0..12),
        pages in prop::collection::vec(prop::collection::vec(arb_change(), 1..5), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let round = store.begin_round("all").unwrap();
        store.commit_page("all", &start, round, &[], None).unwrap();
        let export = store.head_seq();
        store.record_export("base", export, ExportKind::Full).unwrap();
        let exported = records(&store);
        for page in &pages {
            store.commit_page("all", page, round, &[], None).unwrap();
        }
        let counts: BTreeMap<Table, u64> = store.status().unwrap().records.unwrap();
        let incremental = records(&store);

        // The log turns the exported records into the current ones.
        let mut replayed = exported;
        apply_changes(&mut replayed, &store.changes_since(export).unwrap().unwrap());
        prop_assert_eq!(&replayed, &incremental);

        // A fresh store given the final items in one page projects the same records.
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = open(fresh_dir.path());
        let round = fresh.begin_round("all").unwrap();
        fresh.commit_page("all", &all_items(&store), round, &[], None).unwrap();
        prop_assert_eq!(&records(&fresh), &incremental);

        // The counts the commits maintained agree with the projection.
        for (table, count) in counts {
            prop_assert_eq!(ids(&incremental, table).len() as u64, count, "{:?}", table);
        }
    }
}
