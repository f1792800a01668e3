//! Crash safety (DESIGN invariant 2): a process committing pages is killed with SIGKILL at a
//! random moment, several times over; every restart finds a store that opens, whose items are
//! exactly the pages up to its cursor, and whose records equal a fresh store's given the same
//! items.
//!
//! The child is this test binary run again with `STORE_CRASH_DIR` set, executing only
//! `child_commits_pages_until_killed`.

mod store_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use baton_azure_delta::item::{Change, Collection, ItemKey};
use baton_azure_delta::store::{ExportKind, Store};
use serde_json::json;
use store_support::*;

const DIR_VAR: &str = "STORE_CRASH_DIR";
const USERS_PER_PAGE: usize = 20;
const GROUP: &str = "9a0b1c2d-0000-4000-8000-0000000000a1";

fn user_id(page: u64, n: usize) -> String {
    format!("a1b2c3d4-0000-4000-8000-{page:08x}{n:04x}")
}

/// Page `n`: twenty users, their memberships in one group, and the previous page's users
/// renamed (so that commits also change and log existing records).
fn page(n: u64) -> Vec<Change> {
    let mut changes = vec![group(GROUP, "Everyone")];
    for i in 0..USERS_PER_PAGE {
        changes.push(user(&user_id(n, i), &format!("User {n} {i}")));
        changes.push(member(GROUP, &user_id(n, i)));
        if n > 1 {
            changes.push(user(&user_id(n - 1, i), &format!("User {n} {i} renamed")));
        }
    }
    changes
}

fn committed_page(store: &Store) -> u64 {
    store
        .cursor("crash")
        .unwrap()
        .and_then(|s| s.cursor)
        .and_then(|c| c["page"].as_u64())
        .unwrap_or(0)
}

#[test]
fn child_commits_pages_until_killed() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return; // only meaningful as the child of `kill_9_at_random_moments_loses_nothing`
    };
    let store = open(Path::new(&dir));
    let round = store.begin_round("crash").unwrap();
    for n in committed_page(&store) + 1..100_000 {
        store
            .commit_page("crash", &page(n), round, &[], Some(&json!({"page": n})))
            .unwrap();
    }
}

#[test]
fn kill_9_at_random_moments_loses_nothing() {
    if std::env::var(DIR_VAR).is_ok() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state");
    let exe = std::env::current_exe().unwrap();
    // An export before the crashes: the log must carry every later change exactly once.
    let (export, exported) = {
        let store = open(&dir);
        let round = store.begin_round("setup").unwrap();
        store
            .commit_page("setup", &[group(GROUP, "Everyone")], round, &[], None)
            .unwrap();
        let seq = store.head_seq();
        store
            .record_export("before-crashes", seq, ExportKind::Full)
            .unwrap();
        (seq, records(&store))
    };
    let mut last_page = 0;
    for (attempt, delay_ms) in [700u64, 350, 900, 500].into_iter().enumerate() {
        let mut child = Command::new(&exe)
            .args(["child_commits_pages_until_killed", "--exact", "--nocapture"])
            .env(DIR_VAR, &dir)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let store = open(&dir);
        let page = committed_page(&store);
        assert!(page >= last_page, "attempt {attempt}: the cursor went back");
        last_page = page;

        // The items are exactly those of pages 1..=page: no page half-applied.
        let users = store.item_ids(Collection::User, "").unwrap();
        assert_eq!(
            users.len() as u64,
            page * USERS_PER_PAGE as u64,
            "attempt {attempt}"
        );
        for i in 0..USERS_PER_PAGE {
            assert!(
                page == 0 || users.contains(&user_id(page, i)),
                "attempt {attempt}"
            );
            assert!(!users.contains(&user_id(page + 1, i)), "attempt {attempt}");
        }
        let members = store.item_ids(Collection::GroupMember, "").unwrap();
        assert_eq!(members.len(), users.len());

        // Records, counts and the reverse index agree with a store built afresh from the items.
        let fresh_dir = tempfile::tempdir().unwrap();
        let fresh = open(fresh_dir.path());
        let round = fresh.begin_round("copy").unwrap();
        let mut copy = Vec::new();
        for c in [Collection::User, Collection::Group, Collection::GroupMember] {
            for id in store.item_ids(c, "").unwrap() {
                let key = ItemKey::new(c, id);
                let value = store.item(&key).unwrap().unwrap();
                copy.push(Change::Upsert { key, value });
            }
        }
        fresh.commit_page("copy", &copy, round, &[], None).unwrap();
        let counted = store.status().unwrap().records.unwrap();
        let recorded = records(&store);
        assert_eq!(recorded, records(&fresh), "attempt {attempt}");
        for (table, count) in counted {
            assert_eq!(ids(&recorded, table).len() as u64, count, "{table:?}");
        }

        // The change log still turns the export into the current records.
        let mut replayed = exported.clone();
        apply_changes(
            &mut replayed,
            &store.changes_since(export).unwrap().unwrap_or_else(|| {
                panic!(
                    "attempt {attempt}: no log since {export}: {:?}",
                    store.status().unwrap()
                )
            }),
        );
        assert_eq!(replayed, recorded, "attempt {attempt}");
    }
    assert!(last_page > 0, "the child never committed a page");
}
