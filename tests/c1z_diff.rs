//! Diff pairs: old snapshot minus deletions plus upserts equals the new snapshot, over random
//! change sequences; the pair's linkage; the fallback to a full snapshot; `--diff-since` bases.

mod c1z_support;
mod c1z_testdata;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use baton_azure_delta::c1z::reader::diff_base;
use baton_azure_delta::c1z::{
    C1zReader, ExportOptions, ExportRequest, ExportSource, export, write_diff, write_full,
};
use baton_azure_delta::model::{Record, RecordChange, Table};
use c1z_support::{Snapshot, read_sync, snapshot_of, verify, verify_allowing};
use c1z_testdata::{self as testdata, Tenant};
use proptest::prelude::*;

const SKIP: ExportOptions = ExportOptions {
    skip_expand_grants: true,
};

const BASE: Tenant = Tenant {
    users: 8,
    groups: 4,
    members_per_group: 3,
    nested_every: 2,
};

/// A store stand-in: the current records and a change log of every write.
struct Model {
    state: Snapshot,
    log: Vec<(Table, String, Option<Record>, Option<Record>)>,
}

impl Model {
    fn new() -> Model {
        Model {
            state: snapshot_of(BASE.records().unwrap()),
            log: Vec::new(),
        }
    }

    fn put(&mut self, record: Record) {
        let key = (record.table(), record.external_id());
        let old = self.state.insert(key.clone(), record.clone());
        self.log.push((key.0, key.1, old, Some(record)));
    }

    fn remove_where(&mut self, doomed: impl Fn(&Record) -> bool) {
        let keys: Vec<_> = self
            .state
            .iter()
            .filter(|(_, r)| doomed(r))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            let old = self.state.remove(&key);
            self.log.push((key.0, key.1, old, None));
        }
    }

    fn apply(&mut self, op: (u8, u32, u32)) {
        let (kind, a, b) = op;
        let user = |i: u32| testdata::object_id(1, i);
        let group = |i: u32| testdata::object_id(2, i);
        match kind {
            0 => self.put(testdata::user(&user(a), &format!("user{a}"))),
            1 => self.put(testdata::user(&user(a), &format!("renamed{b}"))),
            2 => {
                let id = user(a);
                self.remove_where(|r| mentions(r, "user", &id));
            }
            3 => {
                let g = group(a);
                self.put(testdata::group(&g, &format!("group{a}")));
                self.put(testdata::members_entitlement(&g));
                self.put(testdata::owners_entitlement(&g));
            }
            4 => {
                let id = group(a);
                self.remove_where(|r| mentions(r, "group", &id));
            }
            5 | 6 => {
                // A membership: only between things that exist, as the projection emits them.
                let (g, member_type, member) = if kind == 5 {
                    (group(a), "user", user(b))
                } else {
                    (group(a), "group", group(b))
                };
                let exists = |t: &str, id: &str| {
                    self.state
                        .contains_key(&(Table::Resources, format!("{t}:{id}")))
                };
                if exists("group", &g) && exists(member_type, &member) && g != member {
                    self.put(testdata::membership(&g, member_type, &member));
                }
            }
            _ => {
                let g = group(a);
                let member = user(b);
                self.remove_where(|r| match r {
                    Record::Grant(grant) => grant.id == format!("group:{g}:members:user:{member}"),
                    _ => false,
                });
            }
        }
    }

    /// The net change of every record since log position `since`, as the store reports it.
    fn changes_since(&self, since: usize) -> Vec<RecordChange> {
        let mut net: BTreeMap<(Table, String), (Option<Record>, Option<Record>)> = BTreeMap::new();
        for (table, id, old, new) in &self.log[since..] {
            net.entry((*table, id.clone()))
                .and_modify(|e| e.1 = new.clone())
                .or_insert((old.clone(), new.clone()));
        }
        net.into_iter()
            .filter(|(_, (old, new))| {
                old.as_ref().map(Record::encode) != new.as_ref().map(Record::encode)
            })
            .map(|((table, external_id), (old, new))| RecordChange {
                table,
                external_id,
                old,
                new,
            })
            .collect()
    }
}

/// Whether a record is, or hangs off, the resource `type:id`.
fn mentions(record: &Record, resource_type: &str, id: &str) -> bool {
    let is = |rid: &Option<baton_azure_delta::model::proto::ResourceId>| {
        rid.as_ref()
            .is_some_and(|r| r.resource_type == resource_type && r.resource == id)
    };
    match record {
        Record::ResourceType(_) => false,
        Record::Resource(r) => is(&r.id),
        Record::Entitlement(e) => e.resource.as_ref().is_some_and(|r| is(&r.id)),
        Record::Grant(g) => {
            g.principal.as_ref().is_some_and(|p| is(&p.id))
                || g.entitlement
                    .as_ref()
                    .and_then(|e| e.resource.as_ref())
                    .is_some_and(|r| is(&r.id))
        }
    }
}

fn write_snapshot(path: &Path, state: &Snapshot) -> String {
    let mut feed = |sink: &mut dyn FnMut(Record) -> Result<()>| {
        state.values().cloned().try_for_each(&mut *sink)
    };
    write_full(path, &mut feed, SKIP)
        .unwrap()
        .full_sync_id
        .unwrap()
}

fn sync_of_type(reader: &C1zReader, sync_type: &str) -> baton_azure_delta::c1z::SyncRun {
    let mut found: Vec<_> = reader
        .syncs()
        .unwrap()
        .into_iter()
        .filter(|s| s.sync_type == sync_type)
        .collect();
    assert_eq!(found.len(), 1, "one {sync_type} sync");
    found.remove(0)
}

/// Writes old snapshot, diff and new snapshot; checks that the pair takes old to new.
fn check_diff(ops: &[(u8, u32, u32)], with_full: bool, run_verifier: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let old_path = dir.path().join("old.c1z");
    let base = write_snapshot(&old_path, &model.state);
    let since = model.log.len();
    for op in ops {
        model.apply(*op);
    }
    let changes = model.changes_since(since);

    let diff_path = dir.path().join("diff.c1z");
    let mut feed = |sink: &mut dyn FnMut(Record) -> Result<()>| {
        model.state.values().cloned().try_for_each(&mut *sink)
    };
    let full = with_full.then_some((&mut feed as baton_azure_delta::c1z::RecordFeed, SKIP));
    let summary = write_diff(&diff_path, &base, &changes, full).unwrap();
    let new_path = dir.path().join("new.c1z");
    let new_sync = write_snapshot(&new_path, &model.state);

    let old = read_sync(&C1zReader::open(&old_path).unwrap(), &base);
    let new_reader = C1zReader::open(&new_path).unwrap();
    let new = read_sync(&new_reader, &new_sync);

    let diff = C1zReader::open(&diff_path).unwrap();
    let deletions = sync_of_type(&diff, "partial_deletions");
    let upserts = sync_of_type(&diff, "partial_upserts");
    for (run, partner) in [(&deletions, &upserts), (&upserts, &deletions)] {
        assert_eq!(run.parent_sync_id, base);
        assert_eq!(run.linked_sync_id, partner.sync_id);
        assert!(run.ended_at.is_some() && run.supports_diff && run.grants_backfilled);
    }
    let pair = summary.diff.as_ref().unwrap();
    assert_eq!(pair.deletions_sync_id, deletions.sync_id);
    assert_eq!(pair.upserts_sync_id, upserts.sync_id);

    let deleted = read_sync(&diff, &deletions.sync_id);
    let upserted = read_sync(&diff, &upserts.sync_id);
    let mut applied = old.clone();
    for (key, record) in &deleted {
        assert_eq!(old.get(key), Some(record), "a deletion carries the old row");
        assert!(!new.contains_key(key), "a deleted record is gone");
        applied.remove(key);
    }
    for (key, record) in &upserted {
        assert_ne!(old.get(key), Some(record), "an upsert changes something");
        applied.insert(key.clone(), record.clone());
    }
    assert_eq!(applied, new, "old - deletions + upserts == new");

    if with_full {
        let full_id = summary.full_sync_id.clone().unwrap();
        assert_eq!(read_sync(&diff, &full_id), new);
        assert_eq!(diff.latest_full_sync_id().unwrap(), Some(full_id.clone()));
        assert_eq!(diff.syncs().unwrap().last().unwrap().sync_id, full_id);
    } else {
        assert_eq!(diff.syncs().unwrap().len(), 2);
    }
    if run_verifier {
        verify(&old_path);
        verify(&new_path);
        if with_full {
            verify(&diff_path);
        } else {
            // A diff-only file has no full sync, and its rows reference records of the base
            // sync, which lives in the earlier file: the verifier can only warn about both.
            verify_allowing(
                &diff_path,
                &[
                    "no finished sync of type 'full'",
                    "not in v1_resource_types",
                    "not in this sync",
                    "not in sync (edge dropped)",
                ],
            );
        }
    }
}

fn ops() -> impl Strategy<Value = Vec<(u8, u32, u32)>> {
    prop::collection::vec((0u8..8, 0u32..10, 0u32..10), 0..40)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn diff_pair_takes_the_old_snapshot_to_the_new(ops in ops(), with_full in any::<bool>()) {
        check_diff(&ops, with_full, false);
    }
}

#[test]
fn diff_files_pass_the_verifier() {
    let ops = [
        (0, 9, 0), // new user
        (1, 2, 7), // renamed user
        (2, 3, 0), // removed user with its grants
        (3, 8, 0), // new group
        (5, 8, 9), // ...with the new user as member
        (6, 8, 1), // ...and a nested group
        (4, 3, 0), // removed group
        (7, 0, 0), // removed membership
    ];
    check_diff(&ops, false, true);
    check_diff(&ops, true, true);
}

#[test]
fn an_empty_change_set_gives_an_empty_pair() {
    check_diff(&[], false, false);
}

/// An ExportSource whose change log reaches back to `reachable` only.
struct Source {
    model: Model,
    reachable: Option<(String, usize)>,
}

impl ExportSource for Source {
    fn for_each_record(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        self.model.state.values().cloned().try_for_each(sink)
    }
    fn changes_since_export(&self, sync_id: &str) -> Result<Option<Vec<RecordChange>>> {
        Ok(self
            .reachable
            .as_ref()
            .filter(|(id, _)| id == sync_id)
            .map(|(_, since)| self.model.changes_since(*since)))
    }
}

#[test]
fn a_diff_the_log_no_longer_reaches_becomes_a_full_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = Source {
        model: Model::new(),
        reachable: None,
    };
    let first = export(
        &dir.path().join("1.c1z"),
        &source,
        &ExportRequest::Full,
        SKIP,
    )
    .unwrap();
    let base = first.full_sync_id.clone().unwrap();
    source.reachable = Some((base.clone(), source.model.log.len()));
    source.model.apply((0, 9, 0));

    let request = ExportRequest::DiffSince {
        base_sync_id: base.clone(),
        with_full: false,
    };
    let diff = export(&dir.path().join("2.c1z"), &source, &request, SKIP).unwrap();
    assert!(diff.fell_back_to_full.is_none());
    let pair = diff.diff.as_ref().unwrap();
    assert_eq!((pair.deletions, pair.upserts), (0, 1));
    assert_eq!(diff.state_sync_id(), Some(pair.upserts_sync_id.as_str()));

    source.reachable = None;
    let path = dir.path().join("3.c1z");
    let fallback = export(&path, &source, &request, SKIP).unwrap();
    let reason = fallback.fell_back_to_full.as_deref().unwrap();
    assert!(
        reason.contains(&base) && reason.contains("full snapshot"),
        "{reason}"
    );
    assert!(fallback.diff.is_none());
    let reader = C1zReader::open(&path).unwrap();
    assert_eq!(reader.syncs().unwrap().len(), 1);
    assert_eq!(
        read_sync(&reader, fallback.full_sync_id.as_deref().unwrap()),
        source.model.state
    );
    verify(&path);
}

#[test]
fn diff_since_accepts_a_file_or_a_sync_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.c1z");
    let sync = write_snapshot(&path, &Model::new().state);
    assert_eq!(diff_base(path.to_str().unwrap()).unwrap(), sync);
    assert_eq!(diff_base(&sync).unwrap(), sync);
    let err = diff_base("not-a-sync").unwrap_err();
    assert!(format!("{err:#}").contains("not-a-sync"), "{err:#}");
}
