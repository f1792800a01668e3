//! The store's items: put, merge, remove, mark and sweep, cursors, reset, persistence.

mod store_support;

use baton_azure_delta::item::{Change, Collection, ItemKey};
use baton_azure_delta::store::{ExportKind, Generation, RoundOutcome};
use serde_json::json;
use store_support::*;

const ALICE: &str = "a1b2c3d4-0000-4000-8000-000000000001";
const BOB: &str = "a1b2c3d4-0000-4000-8000-000000000002";
const CAROL: &str = "a1b2c3d4-0000-4000-8000-000000000003";
const SALES: &str = "9a0b1c2d-0000-4000-8000-0000000000a1";
const OPS: &str = "9a0b1c2d-0000-4000-8000-0000000000a2";

fn user_key(id: &str) -> ItemKey {
    ItemKey::new(Collection::User, id)
}

#[test]
fn upsert_merge_and_remove_change_the_stored_item() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let round = store.begin_round("users").unwrap();
    store
        .commit_page("users", &[user(ALICE, "Alice Adams")], round, &[], None)
        .unwrap();
    assert_eq!(
        store.item(&user_key(ALICE)).unwrap(),
        Some(user_value(ALICE, "Alice Adams"))
    );

    // Graph `Prefer: return=minimal`: only the changed properties arrive.
    let merge = Change::Merge {
        key: user_key(ALICE),
        value: json!({"displayName": "Alice Baker", "accountEnabled": false}),
    };
    store
        .commit_page("users", &[merge], round, &[], None)
        .unwrap();
    let merged = store.item(&user_key(ALICE)).unwrap().unwrap();
    assert_eq!(merged["displayName"], "Alice Baker");
    assert_eq!(merged["accountEnabled"], false);
    assert_eq!(merged["userPrincipalName"], "Alice.Adams@contoso.com");

    // A merge of an absent item creates it.
    let merge_new = Change::Merge {
        key: user_key(BOB),
        value: json!({"id": BOB, "displayName": "Bob"}),
    };
    store
        .commit_page("users", &[merge_new], round, &[], None)
        .unwrap();
    assert_eq!(
        store.item(&user_key(BOB)).unwrap(),
        Some(json!({"id": BOB, "displayName": "Bob"}))
    );

    let outcome = store
        .commit_page(
            "users",
            &[remove(Collection::User, ALICE)],
            round,
            &[],
            None,
        )
        .unwrap();
    assert_eq!(outcome.items_removed, 1);
    assert_eq!(store.item(&user_key(ALICE)).unwrap(), None);
    assert_eq!(store.item_ids(Collection::User, "").unwrap(), [BOB]);
}

#[test]
fn changes_apply_in_page_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let round = store.begin_round("groups").unwrap();
    let page = [
        member(SALES, ALICE),
        member(SALES, BOB),
        member(OPS, ALICE),
        // A deleted group's members go with it, including those written earlier in the page...
        Change::RemovePrefix {
            collection: Collection::GroupMember,
            prefix: format!("{SALES}/"),
        },
        // ...but not those written after.
        member(SALES, CAROL),
        remove(Collection::GroupMember, &format!("{OPS}/{ALICE}")),
        member(OPS, ALICE),
    ];
    store
        .commit_page("groups", &page, round, &[], None)
        .unwrap();
    assert_eq!(
        store.item_ids(Collection::GroupMember, "").unwrap(),
        [format!("{SALES}/{CAROL}"), format!("{OPS}/{ALICE}")]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );

    let round = store.begin_round("groups").unwrap();
    store
        .commit_page(
            "groups",
            &[Change::RemovePrefix {
                collection: Collection::GroupMember,
                prefix: format!("{SALES}/"),
            }],
            round,
            &[],
            None,
        )
        .unwrap();
    assert_eq!(
        store.item_ids(Collection::GroupMember, "").unwrap(),
        [format!("{OPS}/{ALICE}")]
    );
}

#[test]
fn a_sweep_removes_what_the_round_did_not_see_in_its_scope_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let first = store.begin_round("users").unwrap();
    store
        .commit_page(
            "users",
            &[user(ALICE, "Alice"), user(BOB, "Bob"), user(CAROL, "Carol")],
            first,
            &[(Collection::User, None)],
            None,
        )
        .unwrap();
    let groups = store.begin_round("groups").unwrap();
    store
        .commit_page(
            "groups",
            &[member(SALES, ALICE), member(SALES, BOB), member(OPS, BOB)],
            groups,
            &[],
            None,
        )
        .unwrap();

    // A baseline over two pages: the sweep on the last page keeps what the first page wrote.
    let second = store.begin_round("users").unwrap();
    assert!(second > first);
    store
        .commit_page("users", &[user(ALICE, "Alice")], second, &[], None)
        .unwrap();
    let outcome = store
        .commit_page(
            "users",
            &[user(CAROL, "Carol")],
            second,
            &[(Collection::User, None)],
            None,
        )
        .unwrap();
    assert_eq!(outcome.items_removed, 1);
    assert_eq!(
        store.item_ids(Collection::User, "").unwrap(),
        [ALICE, CAROL]
    );
    // Other collections are not the users round's to sweep.
    assert_eq!(
        store.item_ids(Collection::GroupMember, "").unwrap().len(),
        3
    );

    // A scoped sweep (one group's members listed completely) leaves other groups alone.
    let third = store.begin_round("groups").unwrap();
    store
        .commit_page(
            "groups",
            &[member(SALES, BOB)],
            third,
            &[(Collection::GroupMember, Some(format!("{SALES}/")))],
            None,
        )
        .unwrap();
    assert_eq!(
        store.item_ids(Collection::GroupMember, "").unwrap(),
        [format!("{SALES}/{BOB}"), format!("{OPS}/{BOB}")]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

#[test]
fn the_same_page_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let round = store.begin_round("groups").unwrap();
    let page = [
        user(ALICE, "Alice"),
        group(SALES, "Sales"),
        member(SALES, ALICE),
    ];
    let first = store
        .commit_page("groups", &page, round, &[], None)
        .unwrap();
    assert_eq!(first.items_written, 3);
    // Without an export nothing is projected; with one, a commit reports its record changes.
    assert_eq!(first.records_changed, None);
    store
        .record_export("sync-1", first.head_seq, ExportKind::Full)
        .unwrap();
    let again = store
        .commit_page("groups", &page, round, &[], None)
        .unwrap();
    assert_eq!(again.items_written, 0);
    assert_eq!(again.items_removed, 0);
    assert_eq!(again.records_changed, Some(0));
    assert_eq!(again.head_seq, first.head_seq);

    // In a later round the items are re-marked, but no record changes.
    let later = store.begin_round("groups").unwrap();
    let remarked = store
        .commit_page("groups", &page, later, &[], None)
        .unwrap();
    assert_eq!(remarked.items_written, 3);
    assert_eq!(remarked.records_changed, Some(0));
    assert_eq!(remarked.head_seq, first.head_seq);
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let error = store
        .commit_page("users", &[user(ALICE, "Alice")], Generation(1), &[], None)
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("never handed out"),
        "{error:#}"
    );

    let round = store.begin_round("users").unwrap();
    let not_an_object = Change::Upsert {
        key: user_key(ALICE),
        value: json!(["not", "an", "object"]),
    };
    let error = store
        .commit_page(
            "users",
            &[user(BOB, "Bob"), not_an_object],
            round,
            &[],
            None,
        )
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains(ALICE) && message.contains("JSON object"),
        "{message}"
    );
    // Nothing of the refused page was written.
    assert_eq!(store.item(&user_key(BOB)).unwrap(), None);
}

#[test]
fn cursors_rounds_and_reset() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.cursor("users").unwrap(), None);

    let round = store.begin_round("users").unwrap();
    assert_eq!(store.cursor("users").unwrap().unwrap().round, Some(round));
    let next_link = json!({"next": "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=abc"});
    store
        .commit_page(
            "users",
            &[user(ALICE, "Alice")],
            round,
            &[],
            Some(&next_link),
        )
        .unwrap();
    // A page without a cursor leaves the stored one.
    store
        .commit_page("users", &[user(BOB, "Bob")], round, &[], None)
        .unwrap();
    let state = store.cursor("users").unwrap().unwrap();
    assert_eq!(state.cursor, Some(next_link));
    assert!(state.cursor_written_at.is_some());

    store.end_round("users", RoundOutcome::Completed).unwrap();
    let state = store.cursor("users").unwrap().unwrap();
    assert_eq!(state.round, None);
    let last = state.last_round.unwrap();
    assert_eq!(
        (last.generation, last.outcome),
        (round, RoundOutcome::Completed)
    );
    assert!(store.end_round("users", RoundOutcome::Completed).is_err());

    store.reset().unwrap();
    let state = store.cursor("users").unwrap().unwrap();
    assert_eq!(state.cursor, None);
    // Items stay until a baseline sweeps them.
    assert_eq!(store.item_ids(Collection::User, "").unwrap(), [ALICE, BOB]);
}

#[test]
fn everything_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cursor =
        json!({"deltaLink": "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=xyz"});
    let (head, round) = {
        let store = open(dir.path());
        let round = store.begin_round("users").unwrap();
        store
            .commit_page(
                "users",
                &[
                    user(ALICE, "Alice"),
                    group(SALES, "Sales"),
                    member(SALES, ALICE),
                ],
                round,
                &[],
                Some(&cursor),
            )
            .unwrap();
        store.flush().unwrap();
        (store.head_seq(), round)
    };
    let store = open(dir.path());
    assert_eq!(store.head_seq(), head);
    assert_eq!(
        store.item(&user_key(ALICE)).unwrap(),
        Some(user_value(ALICE, "Alice"))
    );
    assert_eq!(store.cursor("users").unwrap().unwrap().cursor, Some(cursor));
    assert!(store.begin_round("users").unwrap() > round);
    let status = store.status().unwrap();
    assert_eq!(status.items.get(&Collection::User), Some(&1));
    assert_eq!(status.items.get(&Collection::GroupMember), Some(&1));
}

#[test]
fn status_counts_items_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let round = store.begin_round("groups").unwrap();
    store
        .commit_page(
            "groups",
            &[
                user(ALICE, "Alice"),
                user(BOB, "Bob"),
                group(SALES, "Sales"),
                member(SALES, ALICE),
                member(SALES, BOB),
                owner(SALES, ALICE),
            ],
            round,
            &[],
            None,
        )
        .unwrap();
    store
        .commit_page(
            "groups",
            &[remove(Collection::GroupMember, &format!("{SALES}/{BOB}"))],
            round,
            &[],
            None,
        )
        .unwrap();
    let status = store.status().unwrap();
    assert_eq!(status.items.get(&Collection::User), Some(&2));
    assert_eq!(status.items.get(&Collection::Group), Some(&1));
    assert_eq!(status.items.get(&Collection::GroupMember), Some(&1));
    assert_eq!(status.items.get(&Collection::GroupOwner), Some(&1));
    assert!(status.disk_bytes > 0);
    // Commits without an export do not project, so records are not counted...
    assert_eq!(status.records, None);
    // ...until a snapshot counts them; from then on every commit keeps the count.
    let all = records(&store);
    store
        .record_export("sync-1", store.head_seq(), ExportKind::Full)
        .unwrap();
    store
        .commit_page(
            "groups",
            &[member(SALES, BOB), user(CAROL, "Carol")],
            round,
            &[],
            None,
        )
        .unwrap();
    let counted = store.status().unwrap().records.unwrap();
    let all_after = records(&store);
    assert!(all_after.len() > all.len());
    for (table, count) in counted {
        assert_eq!(ids(&all_after, table).len() as u64, count, "{table:?}");
    }
}

#[test]
fn a_store_can_be_shared_between_tasks() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<baton_azure_delta::store::Store>();
}

/// A paged id scan (how a full pass over every user resumes) reads one page per call from the
/// store's key order: ascending, strictly after the last id, never past its collection.
#[test]
fn ids_after_pages_through_one_collection_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let round = store.begin_round("users").unwrap();
    let users = [CAROL, ALICE, BOB].map(|id| user(id, id));
    let mut page = users.to_vec();
    page.push(group(SALES, "Sales"));
    store.commit_page("users", &page, round, &[], None).unwrap();

    let first = store.item_ids_after(Collection::User, None, 2).unwrap();
    assert_eq!(first, [ALICE, BOB]);
    let second = store
        .item_ids_after(Collection::User, Some(BOB), 2)
        .unwrap();
    assert_eq!(
        second,
        [CAROL],
        "the scan stops at the end of the collection"
    );
    let after_the_end = store
        .item_ids_after(Collection::User, Some(CAROL), 2)
        .unwrap();
    assert!(after_the_end.is_empty());
    // An `after` that is not stored resumes at the next id.
    let resumed = store
        .item_ids_after(
            Collection::User,
            Some("a1b2c3d4-0000-4000-8000-0000000000015"),
            5,
        )
        .unwrap();
    assert_eq!(resumed, [BOB, CAROL]);
    assert_eq!(
        store.item_ids_after(Collection::Group, None, 5).unwrap(),
        [SALES]
    );
}
