//! Full snapshots: round trip, determinism, expansion, the independent verifier, atomic writes.

mod c1z_support;
mod c1z_testdata;

use std::path::Path;

use anyhow::{Result, bail};
use baton_azure_delta::c1z::{C1zReader, ExportOptions, StoredRow, write_full};
use baton_azure_delta::model::proto::{self, GrantExpandable, GrantImmutable};
use baton_azure_delta::model::{Record, Table};
use c1z_support::{read_sync, snapshot_of, verify};
use c1z_testdata::{self as testdata, Tenant};

const SMALL: Tenant = Tenant {
    users: 40,
    groups: 8,
    members_per_group: 6,
    nested_every: 3,
};

const SKIP: ExportOptions = ExportOptions {
    skip_expand_grants: true,
};

fn write(path: &Path, records: &[Record], options: ExportOptions) -> Result<()> {
    let mut feed = |sink: &mut dyn FnMut(Record) -> Result<()>| {
        records.iter().cloned().try_for_each(&mut *sink)
    };
    write_full(path, &mut feed, options).map(|_| ())
}

#[test]
fn round_trip_gives_back_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.c1z");
    let records = SMALL.records().unwrap();
    let mut feed = |sink: &mut dyn FnMut(Record) -> Result<()>| SMALL.for_each_record(sink);
    let summary = write_full(&path, &mut feed, SKIP).unwrap();

    let reader = C1zReader::open(&path).unwrap();
    let syncs = reader.syncs().unwrap();
    assert_eq!(syncs.len(), 1);
    let run = &syncs[0];
    assert_eq!(Some(run.sync_id.clone()), summary.full_sync_id);
    assert_eq!(run.sync_type, "full");
    assert!(run.ended_at.is_some() && run.supports_diff && run.grants_backfilled);
    assert_eq!(run.parent_sync_id, "");
    assert_eq!(run.sync_id.len(), 27);
    assert_eq!(reader.latest_full_sync_id().unwrap(), summary.full_sync_id);

    assert_eq!(
        read_sync(&reader, &run.sync_id),
        snapshot_of(records.clone())
    );
    let counts: Vec<u64> = Table::ALL
        .iter()
        .map(|t| records.iter().filter(|r| r.table() == *t).count() as u64)
        .collect();
    assert_eq!(summary.full_rows.to_vec(), counts);

    // Native profile: GrantExpandable lives in the expansion column, not in the blob.
    let grants = reader.rows(&run.sync_id, Table::Grants).unwrap();
    let expandable: Vec<_> = grants.iter().filter(|g| g.expansion.is_some()).collect();
    assert_eq!(
        expandable.len(),
        3,
        "groups 0, 3 and 6 each hold the next group"
    );
    for row in &grants {
        assert_eq!(row.needs_expansion, row.expansion.is_some());
        let blob: proto::Grant = prost::Message::decode(row.data.as_slice()).unwrap();
        assert!(proto::find_annotation::<GrantExpandable>(&blob.annotations).is_none());
    }
    verify(&path);
}

/// Every row of the latest full sync, per table, in row id order.
fn full_sync_rows(path: &Path) -> Vec<Vec<StoredRow>> {
    let reader = C1zReader::open(path).unwrap();
    let sync = reader.latest_full_sync_id().unwrap().unwrap();
    Table::ALL
        .iter()
        .map(|t| reader.rows(&sync, *t).unwrap())
        .collect()
}

#[test]
fn the_same_records_give_the_same_rows_and_any_order_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let records = SMALL.records().unwrap();
    let mut shuffled = records.clone();
    shuffled.reverse();
    let n = shuffled.len();
    shuffled.swap(3, n / 2);

    let mut files = Vec::new();
    for (name, input) in [
        ("a.c1z", &records),
        ("again.c1z", &records),
        ("shuffled.c1z", &shuffled),
    ] {
        let path = dir.path().join(name);
        write(&path, input, ExportOptions::default()).unwrap();
        verify(&path);
        files.push(full_sync_rows(&path));
    }
    // Byte for byte the same rows, row ids included, for the same input (the store yields its
    // records in key order).
    assert_eq!(files[0], files[1]);
    assert!(!files[0][3].is_empty(), "grants were written");
    // Another order gives other row ids but the same rows.
    let by_id = |tables: &Vec<Vec<StoredRow>>| {
        tables
            .iter()
            .map(|rows| {
                rows.iter()
                    .map(|r| (r.external_id.clone(), (r.data.clone(), r.expansion.clone())))
                    .collect::<std::collections::BTreeMap<_, _>>()
            })
            .collect::<Vec<_>>()
    };
    assert_ne!(
        files[0], files[2],
        "the shuffled input was written in its own order"
    );
    assert_eq!(by_id(&files[0]), by_id(&files[2]));
}

fn grants_by_id(reader: &C1zReader) -> std::collections::BTreeMap<String, proto::Grant> {
    let sync = reader.latest_full_sync_id().unwrap().unwrap();
    reader
        .records(&sync, Table::Grants)
        .unwrap()
        .into_iter()
        .map(|r| match r {
            Record::Grant(g) => (g.id.clone(), g),
            other => panic!("not a grant: {other:?}"),
        })
        .collect()
}

fn sources(grant: &proto::Grant) -> Vec<(String, bool)> {
    grant
        .sources
        .iter()
        .flat_map(|s| s.sources.iter().map(|(k, v)| (k.clone(), v.is_direct)))
        .collect()
}

/// Groups a..f: b is a member of a, c of b, a of c (a cycle); f of e; e of d through a shallow
/// user-only edge. Users: u1 in c, u2 in b and directly in a, u3 in e, u4 in f (so u4 is only
/// an expanded member of e, which the shallow edge e -> d must not carry).
fn nested_groups() -> Vec<Record> {
    let mut records = testdata::resource_types();
    for g in ["a", "b", "c", "d", "e", "f"] {
        records.push(testdata::group(g, g));
        records.push(testdata::members_entitlement(g));
    }
    for u in ["u1", "u2", "u3", "u4"] {
        records.push(testdata::user(u, u));
    }
    records.push(testdata::membership("a", "group", "b"));
    records.push(testdata::membership("b", "group", "c"));
    records.push(testdata::membership("c", "group", "a"));
    records.push(testdata::membership("c", "user", "u1"));
    records.push(testdata::membership("b", "user", "u2"));
    records.push(testdata::membership("a", "user", "u2"));
    records.push(testdata::membership("e", "user", "u3"));
    // f -> e (deep): u4 is a member of f, so it becomes an expanded member of e.
    records.push(testdata::membership("f", "user", "u4"));
    records.push(testdata::membership("e", "group", "f"));
    // e -> d, shallow: only grants direct on e (u3, group f) reach d, not u4.
    let Record::Grant(mut shallow) = testdata::membership("d", "group", "e") else {
        unreachable!()
    };
    shallow.annotations = vec![proto::any(&GrantExpandable {
        entitlement_ids: vec!["group:e:members".into()],
        shallow: true,
        resource_type_ids: vec!["user".into()],
    })];
    records.push(Record::Grant(shallow));
    records
}

#[test]
fn expansion_materializes_nested_groups_as_baton_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("expanded.c1z");
    let mut feed = |sink: &mut dyn FnMut(Record) -> Result<()>| {
        nested_groups().into_iter().try_for_each(&mut *sink)
    };
    let summary = write_full(&path, &mut feed, ExportOptions::default()).unwrap();
    verify(&path);
    let grants = grants_by_id(&C1zReader::open(&path).unwrap());
    let m = |g: &str, t: &str, p: &str| format!("group:{g}:members:{t}:{p}");

    // The cycle a -> b -> c -> a: u1 (direct in c) reaches b and a.
    let u1_in_b = &grants[&m("b", "user", "u1")];
    assert_eq!(sources(u1_in_b), vec![("group:c:members".into(), true)]);
    assert!(proto::find_annotation::<GrantImmutable>(&u1_in_b.annotations).is_some());
    let u1_in_a = &grants[&m("a", "user", "u1")];
    assert_eq!(sources(u1_in_a), vec![("group:b:members".into(), false)]);
    // u2 is direct in a: its grant gains itself as a direct source, plus b.
    let u2_in_a = &grants[&m("a", "user", "u2")];
    assert_eq!(
        sources(u2_in_a),
        vec![
            ("group:a:members".into(), true),
            ("group:b:members".into(), true)
        ]
    );
    assert!(proto::find_annotation::<GrantImmutable>(&u2_in_a.annotations).is_none());
    // ...and u2 reaches c through a.
    assert_eq!(
        sources(&grants[&m("c", "user", "u2")]),
        vec![("group:a:members".into(), true)]
    );
    // Groups in the cycle become members of each other (b holds a's membership through c).
    assert!(grants.contains_key(&m("b", "group", "a")));
    // Deep edge f -> e carries u4 into e.
    assert_eq!(
        sources(&grants[&m("e", "user", "u4")]),
        vec![("group:f:members".into(), true)]
    );
    // Shallow, user-only edge e -> d: u3 (direct on e) passes; u4 (expanded on e) and the
    // group f (not a user) do not.
    assert!(grants.contains_key(&m("d", "user", "u3")));
    assert!(!grants.contains_key(&m("d", "user", "u4")));
    assert!(!grants.contains_key(&m("d", "group", "f")));

    let direct = nested_groups()
        .iter()
        .filter(|r| r.table() == Table::Grants)
        .count() as u64;
    assert_eq!(summary.full_rows[3], direct + summary.expanded_grants);

    // With skip-expand, only the direct grants are written.
    let skipped = dir.path().join("skipped.c1z");
    write(&skipped, &nested_groups(), SKIP).unwrap();
    verify(&skipped);
    assert_eq!(
        grants_by_id(&C1zReader::open(&skipped).unwrap()).len() as u64,
        direct
    );
}

#[test]
fn expansion_stops_at_depth_twenty() {
    // g0 <- g1 <- ... <- g22: g(i+1) is a member of g(i); user u is a member of g22.
    let mut records = testdata::resource_types();
    records.push(testdata::user("u", "u"));
    for i in 0..=22 {
        records.push(testdata::group(&format!("g{i:02}"), "g"));
        records.push(testdata::members_entitlement(&format!("g{i:02}")));
        if i > 0 {
            records.push(testdata::membership(
                &format!("g{:02}", i - 1),
                "group",
                &format!("g{i:02}"),
            ));
        }
    }
    records.push(testdata::membership("g22", "user", "u"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.c1z");
    write(&path, &records, ExportOptions::default()).unwrap();
    verify(&path);
    let grants = grants_by_id(&C1zReader::open(&path).unwrap());
    assert!(
        grants.contains_key("group:g02:members:user:u"),
        "20 hops from g22"
    );
    assert!(
        !grants.contains_key("group:g01:members:user:u"),
        "21 hops from g22"
    );
}

#[test]
fn expansion_from_someone_elses_entitlement_is_refused() {
    let mut records = nested_groups();
    let Record::Grant(mut bad) = testdata::membership("a", "group", "d") else {
        unreachable!()
    };
    bad.annotations = vec![proto::any(&GrantExpandable {
        entitlement_ids: vec!["group:e:members".into()],
        ..GrantExpandable::default()
    })];
    records.push(Record::Grant(bad));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.c1z");
    let err = write(&path, &records, ExportOptions::default()).unwrap_err();
    assert!(format!("{err:#}").contains("group:e:members"), "{err:#}");
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "scratch files left"
    );
}

#[test]
fn duplicate_ids_are_an_error_that_names_them() {
    let mut records = SMALL.records().unwrap();
    records.push(testdata::user(&testdata::object_id(1, 0), "again"));
    let dir = tempfile::tempdir().unwrap();
    let err = write(&dir.path().join("dup.c1z"), &records, SKIP).unwrap_err();
    assert!(
        format!("{err:#}").contains(&testdata::object_id(1, 0)),
        "{err:#}"
    );
}

#[test]
fn failed_export_leaves_the_previous_file_and_no_scratch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.c1z");
    write(&path, &SMALL.records().unwrap(), SKIP).unwrap();
    let before = std::fs::read(&path).unwrap();

    // The record source fails half way, as a crash of the store would.
    let records = SMALL.records().unwrap();
    let mut feed = |sink: &mut dyn FnMut(Record) -> Result<()>| {
        for (i, r) in records.iter().enumerate() {
            if i == records.len() / 2 {
                bail!("store read failed");
            }
            sink(r.clone())?;
        }
        Ok(())
    };
    let err = write_full(&path, &mut feed, SKIP).unwrap_err();
    assert!(format!("{err:#}").contains("store read failed"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("sync.c1z")]);
}

#[test]
fn unwritable_paths_give_an_error_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("out.c1z");
    let err = write(&missing, &SMALL.records().unwrap(), SKIP).unwrap_err();
    assert!(format!("{err:#}").contains("no-such-dir"), "{err:#}");

    let err = write(dir.path(), &SMALL.records().unwrap(), SKIP).unwrap_err();
    assert!(format!("{err:#}").contains("is a directory"), "{err:#}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("out.c1z");
    let err = write(&under_file, &SMALL.records().unwrap(), SKIP).unwrap_err();
    assert!(format!("{err:#}").contains("a-file"), "{err:#}");
}

#[test]
fn reader_rejects_files_that_are_not_classic_c1z() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.c1z");
    std::fs::write(&path, b"C1Z3\0rest").unwrap();
    let err = C1zReader::open(&path).err().unwrap();
    assert!(format!("{err:#}").contains("not a classic .c1z"), "{err:#}");
}
