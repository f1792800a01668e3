//! Opening a store: integrity check, moving a damaged store aside, the file lock, and a change
//! of projection options.

mod store_support;

use std::path::Path;

use baton_azure_delta::item::{Change, Collection, ItemKey};
use baton_azure_delta::model::projection::ProjectionOptions;
use baton_azure_delta::model::record::Table;
use baton_azure_delta::store::{ExportKind, Store, StoreInUse, StoreUse};
use baton_azure_delta::sync::setup::open_store;
use serde_json::json;
use store_support::*;

const ALICE: &str = "a1b2c3d4-0000-4000-8000-000000000001";
const SALES: &str = "9a0b1c2d-0000-4000-8000-0000000000a1";
const ONPREM: &str = "9a0b1c2d-0000-4000-8000-0000000000a3";

fn store_with_a_user(dir: &Path) {
    let store = open(dir);
    let round = store.begin_round("users").unwrap();
    store
        .commit_page("users", &[user(ALICE, "Alice")], round, &[], None)
        .unwrap();
    store.flush().unwrap();
}

/// The directories next to `dir` that a damaged store was moved to.
fn moved_aside(dir: &Path) -> Vec<String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(&format!("{name}.corrupt-")))
        .collect()
}

/// Rewrites one `meta` entry behind the store's back, as a bug or a newer build might.
fn tamper_meta(dir: &Path, key: &str, value: Option<&[u8]>) {
    let db = open_raw_sled(dir);
    let meta = db.open_tree("meta").unwrap();
    match value {
        Some(value) => meta.insert(key, value).unwrap(),
        None => meta.remove(key).unwrap(),
    };
    db.flush().unwrap();
}

#[test]
fn a_store_with_an_unknown_schema_is_moved_aside_and_started_fresh() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state");
    store_with_a_user(&dir);
    tamper_meta(&dir, "schema", Some(&99u64.to_be_bytes()));

    let store = open(&dir);
    assert_eq!(
        store.item_ids(Collection::User, "").unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(moved_aside(&dir).len(), 1);
    // The moved store is intact for inspection.
    let aside = root.path().join(&moved_aside(&dir)[0]);
    drop(store);
    let db = open_raw_sled(&aside);
    assert_eq!(db.open_tree("items").unwrap().len(), 1);
}

#[test]
fn a_store_missing_its_options_or_with_damaged_items_is_moved_aside() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state");
    store_with_a_user(&dir);
    tamper_meta(&dir, "options", None);
    drop(open(&dir));
    assert_eq!(moved_aside(&dir).len(), 1);

    store_with_a_user(&dir);
    {
        let db = open_raw_sled(&dir);
        let items = db.open_tree("items").unwrap();
        let (key, _) = items.first().unwrap().unwrap();
        items
            .insert(key, &b"\x00\x00\x00\x00\x00\x00\x00\x01{not json"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let store = open(&dir);
    assert_eq!(
        store.item_ids(Collection::User, "").unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(moved_aside(&dir).len(), 2);
}

#[test]
fn files_sled_cannot_read_are_moved_aside() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state");
    store_with_a_user(&dir);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::write(&path, b"this is not a sled file at all").unwrap();
        }
    }
    let store = open(&dir);
    assert_eq!(
        store.item_ids(Collection::User, "").unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(moved_aside(&dir).len(), 1);
}

#[test]
fn a_store_in_use_is_refused_not_moved_aside() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state");
    let first = open(&dir);
    let error = match Store::open(&dir, ProjectionOptions::default()) {
        Ok(_) => panic!("a second open of a store in use succeeded"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("in use by another"), "{error}");
    assert!(moved_aside(&dir).is_empty());
    drop(first);
}

/// Whether a state dir is in use is decided by the error's type, not by its text: a path that
/// happens to contain "lock" ("blocklist", "clock") must not turn an unrelated failure into
/// "in use by another process".
#[test]
fn an_unreadable_store_under_a_path_saying_lock_is_not_reported_in_use() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("blocklist-clock");
    // sled's data file is a directory: opening it fails with an I/O error unrelated to locks.
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let error = match open_store(&dir, ProjectionOptions::default(), StoreUse::Rounds) {
        Ok(_) => panic!("a store whose data file is a directory opened"),
        Err(error) => error,
    };
    assert!(!error.is::<StoreInUse>(), "{error:#}");
    assert!(
        !format!("{error:#}").contains("in use by another"),
        "{error:#}"
    );
    assert!(
        format!("{error:#}").contains("opening the store"),
        "{error:#}"
    );
}

#[test]
fn a_store_in_use_is_reported_as_such_by_setup() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state");
    let first = open(&dir);
    let error = match open_store(&dir, ProjectionOptions::default(), StoreUse::Rounds) {
        Ok(_) => panic!("a second open of a store in use succeeded"),
        Err(error) => error,
    };
    assert!(error.is::<StoreInUse>(), "{error:#}");
    drop(first);
}

#[test]
fn changed_options_are_reprojected_into_the_change_log() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("state");
    let export_seq = {
        let store = open(&dir);
        let round = store.begin_round("groups").unwrap();
        let onprem = Change::Upsert {
            key: ItemKey::new(Collection::Group, ONPREM),
            value: json!({
                "id": ONPREM,
                "displayName": "Domain Admins (synced)",
                "securityEnabled": true,
                "mailEnabled": false,
                "groupTypes": [],
                "onPremisesSyncEnabled": true,
            }),
        };
        store
            .commit_page(
                "groups",
                &[
                    user(ALICE, "Alice"),
                    group(SALES, "Sales"),
                    onprem,
                    member(SALES, ALICE),
                    member(ONPREM, ALICE),
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
        seq
    };
    let before = records(&open(&dir));

    let skip_ad_groups = ProjectionOptions {
        skip_ad_groups: true,
        ..ProjectionOptions::default()
    };
    let store = Store::open(&dir, skip_ad_groups.clone()).unwrap();
    assert_eq!(store.options(), &skip_ad_groups);
    let counted = store.status().unwrap().records.unwrap();
    let after = records(&store);
    assert!(after.len() < before.len());
    assert!(!after.contains_key(&(Table::Resources, format!("group:{ONPREM}"))));
    assert!(after.contains_key(&(Table::Grants, format!("group:{SALES}:members:user:{ALICE}"))));

    // The diff since the export turns the old snapshot into the new one.
    let changes = store.changes_since(export_seq).unwrap().unwrap();
    assert!(!changes.is_empty());
    let mut replayed = before;
    apply_changes(&mut replayed, &changes);
    assert_eq!(replayed, after);

    // The counts follow the new options.
    for (table, count) in counted {
        assert_eq!(ids(&after, table).len() as u64, count, "{table:?}");
    }

    // Opening again with the same options re-projects nothing.
    let head = store.head_seq();
    drop(store);
    let store = Store::open(&dir, skip_ad_groups).unwrap();
    assert_eq!(store.head_seq(), head);
}
