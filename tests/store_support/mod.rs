//! Shared helpers of the store tests: Graph-shaped items and a record snapshot to compare.
#![allow(dead_code)] // each test file uses its own subset

use std::collections::BTreeMap;
use std::path::Path;

use baton_azure_delta::item::{Change, Collection, ItemKey};
use baton_azure_delta::model::projection::ProjectionOptions;
use baton_azure_delta::model::record::{Record, RecordChange, Table};
use baton_azure_delta::store::Store;
use serde_json::{Value, json};

pub fn open(dir: &Path) -> Store {
    Store::open(dir, ProjectionOptions::default()).expect("open store")
}

/// Opens the sled database under a store directly, to tamper with it, waiting for sled's file
/// lock as the store itself does.
pub fn open_raw_sled(dir: &Path) -> sled::Db {
    baton_azure_delta::store::open_waiting_for_lock(dir)
        .unwrap_or_else(|error| panic!("opening {} with sled: {error}", dir.display()))
}

/// A `users` item as Graph returns it (`GET /users/delta` with `$select`).
pub fn user_value(id: &str, name: &str) -> Value {
    let upn = format!("{}@contoso.com", name.replace(' ', "."));
    json!({
        "id": id,
        "displayName": name,
        "givenName": name.split(' ').next(),
        "userPrincipalName": upn,
        "mail": upn,
        "accountEnabled": true,
        "userType": "Member",
        "createdDateTime": "2024-01-15T09:30:00Z",
    })
}

pub fn user(id: &str, name: &str) -> Change {
    Change::Upsert {
        key: ItemKey::new(Collection::User, id),
        value: user_value(id, name),
    }
}

/// A `groups` item as Graph returns it (without `members@delta`).
pub fn group(id: &str, name: &str) -> Change {
    Change::Upsert {
        key: ItemKey::new(Collection::Group, id),
        value: json!({
            "id": id,
            "displayName": name,
            "description": format!("{name} team"),
            "mailEnabled": false,
            "securityEnabled": true,
            "groupTypes": [],
            "createdDateTime": "2023-05-01T08:00:00Z",
        }),
    }
}

/// A direct member, as the groups feed stores a `members@delta` entry.
pub fn member(group: &str, user: &str) -> Change {
    Change::Upsert {
        key: ItemKey::new(Collection::GroupMember, format!("{group}/{user}")),
        value: json!({"@odata.type": "#microsoft.graph.user"}),
    }
}

pub fn owner(group: &str, user: &str) -> Change {
    Change::Upsert {
        key: ItemKey::new(Collection::GroupOwner, format!("{group}/{user}")),
        value: json!({"@odata.type": "#microsoft.graph.user"}),
    }
}

pub fn remove(collection: Collection, id: &str) -> Change {
    Change::Remove {
        key: ItemKey::new(collection, id),
    }
}

/// Every record of the store, by table and external id, as its encoded bytes.
pub fn records(store: &Store) -> BTreeMap<(Table, String), Vec<u8>> {
    let mut out = BTreeMap::new();
    store
        .for_each_record(&mut |record: Record| {
            let previous = out.insert((record.table(), record.external_id()), record.encode());
            assert!(
                previous.is_none(),
                "record {:?} emitted twice",
                record.external_id()
            );
            Ok(())
        })
        .expect("for_each_record");
    out
}

/// Applies net changes to a record snapshot, checking that each change's `old` matches it.
pub fn apply_changes(snapshot: &mut BTreeMap<(Table, String), Vec<u8>>, changes: &[RecordChange]) {
    for change in changes {
        let key = (change.table, change.external_id.clone());
        assert_eq!(
            snapshot.get(&key),
            change.old.as_ref().map(Record::encode).as_ref(),
            "old side of {key:?}"
        );
        match &change.new {
            Some(record) => snapshot.insert(key, record.encode()),
            None => snapshot.remove(&key),
        };
    }
}

pub fn ids(snapshot: &BTreeMap<(Table, String), Vec<u8>>, table: Table) -> Vec<String> {
    snapshot
        .keys()
        .filter(|(t, _)| *t == table)
        .map(|(_, id)| id.clone())
        .collect()
}
