//! Writing `.c1z` files: full snapshots, diff pairs, and the export policy that picks one.
//!
//! Records are written straight into the output tables in the order they arrive (the store
//! yields them in key order, so the same store gives the same rows with the same row ids), then
//! optionally expanded in place. Indexes, and with them the check that no two records of a sync
//! share an id, are built once every row is in: one sorted build per index is far cheaper than
//! keeping eleven indexes current row by row, or than staging the rows to sort them first.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use rusqlite::{Connection, OptionalExtension, Statement, params};

use super::container::Target;
use super::rows::{Columns, GRANT_INSERT, Row};
use super::{SyncType, expand, new_sync_id, schema, sqlite_now};
use crate::handoff;
use crate::model::{Record, RecordChange, Table};

/// How a snapshot is written.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExportOptions {
    /// Leave grant expansion to the reader: write only the direct grants, with `GrantExpandable`
    /// in the `expansion` column (`SyncFullTask.skip_expand_grants` in baton).
    pub skip_expand_grants: bool,
}

/// A source of every record of a snapshot: it calls the sink once per record, in any order.
pub type RecordFeed<'a> = &'a mut dyn FnMut(&mut dyn FnMut(Record) -> Result<()>) -> Result<()>;

/// What the exporter needs from the store. The store answers `changes_since_export` with
/// `export_seq(sync_id)` then `changes_since(seq)`; after a successful export the caller records
/// it (`record_export(summary.state_sync_id(), head_seq read before the export)`), never before:
/// a failed export leaves the store as it was.
pub trait ExportSource {
    /// Every record of the current access graph, in any order.
    fn for_each_record(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()>;
    /// The net change of every record since the export named `sync_id`; `None` when the change
    /// log no longer reaches that export (or never knew it).
    fn changes_since_export(&self, sync_id: &str) -> Result<Option<Vec<RecordChange>>>;
}

/// Which file to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportRequest {
    Full,
    /// A diff pair against the export `base_sync_id`; `with_full` adds the new full snapshot.
    DiffSince {
        base_sync_id: String,
        with_full: bool,
    },
}

/// The sync ids of a diff pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffSyncs {
    pub base_sync_id: String,
    pub deletions_sync_id: String,
    pub upserts_sync_id: String,
    pub deletions: u64,
    pub upserts: u64,
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub path: PathBuf,
    pub file_size: u64,
    /// The full sync, when the file has one.
    pub full_sync_id: Option<String>,
    /// Rows of the full sync per table, in [`Table::ALL`] order (grants include expanded ones).
    pub full_rows: [u64; 4],
    /// Grants the expansion added to the full sync.
    pub expanded_grants: u64,
    pub diff: Option<DiffSyncs>,
    /// Why a requested diff became a full snapshot.
    pub fell_back_to_full: Option<String>,
}

impl ExportSummary {
    /// The sync id that names the state this file brings its reader to: the full sync if the
    /// file has one, else the upserts sync. A later `--diff-since` uses it as its base.
    pub fn state_sync_id(&self) -> Option<&str> {
        self.full_sync_id
            .as_deref()
            .or(self.diff.as_ref().map(|d| d.upserts_sync_id.as_str()))
    }
}

/// Exports `source` to `path` as requested. A diff whose base the change log no longer reaches
/// becomes a full snapshot, with a warning that says why.
pub fn export(
    path: &Path,
    source: &dyn ExportSource,
    request: &ExportRequest,
    options: ExportOptions,
) -> Result<ExportSummary> {
    let mut feed = |sink: &mut dyn FnMut(Record) -> Result<()>| source.for_each_record(sink);
    match request {
        ExportRequest::Full => write_full(path, &mut feed, options),
        ExportRequest::DiffSince {
            base_sync_id,
            with_full,
        } => match source.changes_since_export(base_sync_id)? {
            Some(changes) => {
                let full = with_full.then_some((&mut feed as RecordFeed, options));
                write_diff(path, base_sync_id, &changes, full)
            }
            None => {
                let reason = format!(
                    "the change log no longer reaches export {base_sync_id} (it was trimmed, or \
                     the export is unknown to this store): writing a full snapshot instead of a diff"
                );
                tracing::warn!(base_sync_id = %base_sync_id, "{reason}");
                let mut summary = write_full(path, &mut feed, options)?;
                summary.fell_back_to_full = Some(reason);
                Ok(summary)
            }
        },
    }
}

/// Writes a `.c1z` holding one finished full sync of every record `records` yields.
pub fn write_full(
    path: &Path,
    records: RecordFeed,
    options: ExportOptions,
) -> Result<ExportSummary> {
    let mut target = Target::new(path)?;
    let written = Database::create(&mut target).and_then(|mut db| {
        let full = db.write_full_sync(records, options)?;
        finish(db, target, path, Some(full), None)
    });
    written.with_context(|| format!("exporting a full snapshot to {}", path.display()))
}

/// Writes a `.c1z` holding the diff pair of `changes` against `base_sync_id`, and with `full`
/// also the new full snapshot (written last, so it is the newest finished sync).
pub fn write_diff(
    path: &Path,
    base_sync_id: &str,
    changes: &[RecordChange],
    full: Option<(RecordFeed, ExportOptions)>,
) -> Result<ExportSummary> {
    if base_sync_id.is_empty() {
        bail!("a diff needs the sync id of the export it starts from");
    }
    let mut target = Target::new(path)?;
    let written = Database::create(&mut target).and_then(|mut db| {
        let diff = db.write_diff_pair(base_sync_id, changes)?;
        let full = match full {
            Some((records, options)) => Some(db.write_full_sync(records, options)?),
            None => None,
        };
        finish(db, target, path, full, Some(diff))
    });
    written.with_context(|| format!("exporting a diff to {}", path.display()))
}

struct FullSync {
    sync_id: String,
    rows: [u64; 4],
    expanded_grants: u64,
}

fn finish(
    db: Database,
    target: Target,
    path: &Path,
    full: Option<FullSync>,
    diff: Option<DiffSyncs>,
) -> Result<ExportSummary> {
    let database = db.finish()?;
    let file_size = target.commit(&database)?;
    Ok(ExportSummary {
        path: path.to_path_buf(),
        file_size,
        full_rows: full.as_ref().map_or([0; 4], |f| f.rows),
        expanded_grants: full.as_ref().map_or(0, |f| f.expanded_grants),
        full_sync_id: full.map(|f| f.sync_id),
        diff,
        fell_back_to_full: None,
    })
}

/// Records travel to the writing thread in batches of this many (a tenth of an export's CPU went
/// to waking the other thread when they travelled one by one) ...
const RECORDS_PER_BATCH: usize = 512;
/// ... and this many batches may wait: enough to keep both threads busy, few enough (a few MB)
/// to keep memory flat.
const BATCHES_IN_FLIGHT: usize = 8;

/// The SQLite database of a `.c1z` being built.
struct Database {
    conn: Connection,
    path: PathBuf,
}

impl Database {
    fn create(target: &mut Target) -> Result<Database> {
        let path = target.scratch_path("db");
        let conn = Connection::open(&path)
            .with_context(|| format!("creating the c1z database {}", path.display()))?;
        // A scratch database: durability comes from the fsync of the final file, so no journal
        // and no syncs here. The main file keeps the rollback-journal header readers expect.
        // 64 KiB pages (valid for any SQLite reader): the index builds over a million grants
        // took a third less time than with 8 KiB pages. Rows are appended, so a small page
        // cache does: 16 MiB builds the indexes as fast as 64 MiB did. The cache size comes
        // after the page size, which it is counted in.
        conn.execute_batch(
            "pragma page_size = 65536;
             pragma journal_mode = off; pragma synchronous = off;
             pragma locking_mode = exclusive; pragma cache_size = -16384;
             pragma temp_store = file;",
        )
        .context("configuring the c1z database")?;
        schema::migrate(&conn, schema::TABLES)?;
        conn.execute_batch("begin")?;
        Ok(Database { conn, path })
    }

    /// Writes one full sync. The caller's thread produces the records (the store projects
    /// them: the larger half of the work) while a second thread encodes them and inserts the
    /// rows into SQLite, so the two overlap; the expansion follows on the writing thread.
    fn write_full_sync(&mut self, records: RecordFeed, options: ExportOptions) -> Result<FullSync> {
        let started_at = sqlite_now();
        let sync_id = new_sync_id();
        let conn = &mut self.conn;
        let feed_failed = AtomicBool::new(false);
        let writer_gone = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let (mut sender, batches) = handoff::channel(RECORDS_PER_BATCH, BATCHES_IN_FLIGHT);
            let feed_failed = &feed_failed;
            let writer = std::thread::Builder::new()
                .name("c1z-writer".to_string())
                .spawn_scoped(scope, move || {
                    let mut sync = SyncRows::begin(conn, sync_id)?;
                    let expanded_grants = write_rows(&mut sync, batches, feed_failed, options)?;
                    let (sync_id, rows) = sync.end(SyncRunRow {
                        sync_type: SyncType::Full,
                        started_at,
                        parent_sync_id: String::new(),
                        linked_sync_id: String::new(),
                    })?;
                    Ok(FullSync {
                        sync_id,
                        rows,
                        expanded_grants,
                    })
                })
                .context("starting the c1z writer thread")?;
            let stopped = |_: handoff::Closed| {
                writer_gone.store(true, Ordering::Release);
                anyhow!("the c1z writer stopped")
            };
            let fed = records(&mut |record| sender.push(record).map_err(stopped));
            if fed.is_err() {
                feed_failed.store(true, Ordering::Release);
            }
            // Finished or dropped, the sender is gone after this: the writer's loop ends.
            let fed = fed.and_then(|()| sender.finish().map_err(stopped));
            let written = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            match fed {
                // The writer's error is the cause when it stopped first.
                Err(_) if writer_gone.load(Ordering::Acquire) => written,
                Err(error) => Err(error),
                Ok(()) => written,
            }
        })
    }

    /// baton's diff pair: deletions (old rows of records now gone) first, then upserts (new rows
    /// of records that appeared or whose row changed), each linked to the other.
    fn write_diff_pair(&self, base_sync_id: &str, changes: &[RecordChange]) -> Result<DiffSyncs> {
        let deletions_sync_id = new_sync_id();
        let upserts_sync_id = new_sync_id();

        let started_at = sqlite_now();
        let mut deletions = SyncRows::begin(&self.conn, deletions_sync_id.clone())?;
        for change in changes {
            if let (Some(old), None) = (&change.old, &change.new) {
                deletions.insert(Row::from_record(old.clone())?)?;
            }
        }
        let (_, deleted) = deletions.end(SyncRunRow {
            sync_type: SyncType::PartialDeletions,
            started_at,
            parent_sync_id: base_sync_id.to_string(),
            linked_sync_id: upserts_sync_id.clone(),
        })?;

        let started_at = sqlite_now();
        let mut upserts = SyncRows::begin(&self.conn, upserts_sync_id.clone())?;
        for change in changes {
            if let Some(new) = &change.new {
                let changed = change
                    .old
                    .as_ref()
                    .is_none_or(|old| old.encode() != new.encode());
                if changed {
                    upserts.insert(Row::from_record(new.clone())?)?;
                }
            }
        }
        let (_, upserted) = upserts.end(SyncRunRow {
            sync_type: SyncType::PartialUpserts,
            started_at,
            parent_sync_id: base_sync_id.to_string(),
            linked_sync_id: deletions_sync_id.clone(),
        })?;
        Ok(DiffSyncs {
            base_sync_id: base_sync_id.to_string(),
            deletions_sync_id,
            upserts_sync_id,
            deletions: deleted.iter().sum(),
            upserts: upserted.iter().sum(),
        })
    }

    /// Commits, builds the indexes and closes the database, whose path it returns.
    fn finish(self) -> Result<PathBuf> {
        self.conn
            .execute_batch("commit")
            .context("committing the c1z database")?;
        // Nothing else runs while the indexes are built: let SQLite sort on the other cores
        // while it scans the table (with the 16 MiB cache, each index sorts in several runs).
        let helpers = std::thread::available_parallelism().map_or(0, |n| n.get() - 1);
        self.conn
            .pragma_update(None, "threads", helpers.min(4) as i64)
            .context("configuring the index build")?;
        let indexing = Instant::now();
        if let Err(error) = schema::migrate(&self.conn, schema::COMPLETE) {
            // The unique (external_id, sync_id) indexes are where duplicates show: name one.
            if let Some((table, id)) = self.a_duplicate_id()? {
                bail!("two {table:?} records share the id {id:?}");
            }
            return Err(error);
        }
        tracing::debug!(elapsed = ?indexing.elapsed(), "c1z indexes built");
        self.conn
            .close()
            .map_err(|(_, e)| e)
            .context("closing the c1z database")?;
        Ok(self.path)
    }

    fn a_duplicate_id(&self) -> Result<Option<(Table, String)>> {
        for table in Table::ALL {
            let sql = format!(
                "select external_id from {} group by sync_id, external_id having count(*) > 1
                 limit 1",
                table_name(table)
            );
            let found: Option<String> = self
                .conn
                .query_row(&sql, [], |row| row.get(0))
                .optional()
                .with_context(|| format!("looking for duplicate ids in {}", table_name(table)))?;
            if let Some(id) = found {
                return Ok(Some((table, id)));
            }
        }
        Ok(None)
    }
}

fn table_name(table: Table) -> &'static str {
    match table {
        Table::ResourceTypes => "v1_resource_types",
        Table::Resources => "v1_resources",
        Table::Entitlements => "v1_entitlements",
        Table::Grants => "v1_grants",
    }
}

/// The rows of one sync while they are written.
struct SyncRows<'a> {
    conn: &'a Connection,
    sync_id: String,
    discovered_at: String,
    /// The insert statement of each table, in [`Table::ALL`] order, prepared once per sync.
    inserts: [Statement<'a>; 4],
    /// Rows written per table, in [`Table::ALL`] order.
    rows: [u64; 4],
    grants_after: i64,
    entitlements_after: i64,
    expandable: Vec<i64>,
    indirect: HashSet<i64>,
}

/// The insert statement of each table; the last two parameters are sync_id and discovered_at.
const INSERTS: [&str; 4] = [
    "insert into v1_resource_types (external_id, data, sync_id, discovered_at)
     values (?1, ?2, ?3, ?4)",
    "insert into v1_resources (resource_type_id, external_id, parent_resource_type_id,
         parent_resource_id, data, sync_id, discovered_at)
     values (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    "insert into v1_entitlements (resource_type_id, resource_id, external_id, data, sync_id,
         discovered_at)
     values (?1, ?2, ?3, ?4, ?5, ?6)",
    GRANT_INSERT,
];

impl<'a> SyncRows<'a> {
    fn begin(conn: &'a Connection, sync_id: String) -> Result<SyncRows<'a>> {
        let last_row = |table: &str| -> Result<i64> {
            conn.query_row(
                &format!("select coalesce(max(id), 0) from {table}"),
                [],
                |r| r.get(0),
            )
            .with_context(|| format!("reading the last row of {table}"))
        };
        let [t, r, e, g] = INSERTS.map(|sql| conn.prepare(sql));
        Ok(SyncRows {
            conn,
            discovered_at: sqlite_now(),
            inserts: [t?, r?, e?, g?],
            rows: [0; 4],
            grants_after: last_row("v1_grants")?,
            entitlements_after: last_row("v1_entitlements")?,
            expandable: Vec::new(),
            indirect: HashSet::new(),
            sync_id,
        })
    }

    fn insert(&mut self, row: Row) -> Result<()> {
        let table = row.table();
        let (sync_id, discovered_at) = (&self.sync_id, &self.discovered_at);
        let insert = &mut self.inserts[table as usize];
        let inserted = match &row.columns {
            Columns::ResourceType => {
                insert.execute(params![row.external_id, row.data, sync_id, discovered_at])
            }
            Columns::Resource {
                resource_type_id,
                parent,
            } => insert.execute(params![
                resource_type_id,
                row.external_id,
                parent.as_ref().map(|p| &p.resource_type),
                parent.as_ref().map(|p| &p.resource),
                row.data,
                sync_id,
                discovered_at
            ]),
            Columns::Entitlement {
                resource_type_id,
                resource_id,
            } => insert.execute(params![
                resource_type_id,
                resource_id,
                row.external_id,
                row.data,
                sync_id,
                discovered_at
            ]),
            Columns::Grant(g) => insert.execute(params![
                g.resource_type_id,
                g.resource_id,
                g.entitlement_id,
                g.principal_resource_type_id,
                g.principal_resource_id,
                row.external_id,
                g.expansion,
                g.expansion.is_some(),
                row.data,
                sync_id,
                discovered_at
            ]),
        };
        inserted.with_context(|| format!("writing {table:?} record {:?}", row.external_id))?;
        // Table::ALL lists the tables in declaration order.
        self.rows[table as usize] += 1;
        if let Columns::Grant(g) = &row.columns {
            let rowid = self.conn.last_insert_rowid();
            if g.expansion.is_some() {
                self.expandable.push(rowid);
            }
            if !g.direct {
                self.indirect.insert(rowid);
            }
        }
        Ok(())
    }

    fn grants(&self) -> expand::SyncGrants<'_> {
        expand::SyncGrants {
            sync_id: &self.sync_id,
            discovered_at: &self.discovered_at,
            grants_after: self.grants_after,
            entitlements_after: self.entitlements_after,
            expandable: &self.expandable,
            indirect: &self.indirect,
        }
    }

    /// Records the sync in `v1_sync_runs`; returns its id and its rows per table.
    fn end(self, run: SyncRunRow) -> Result<(String, [u64; 4])> {
        self.conn
            .execute(
                "insert into v1_sync_runs (sync_id, started_at, ended_at, sync_token, sync_type,
                     parent_sync_id, linked_sync_id, supports_diff, grants_backfilled)
                 values (?1, ?2, ?3, '', ?4, ?5, ?6, 1, 1)",
                params![
                    self.sync_id,
                    run.started_at,
                    sqlite_now(),
                    run.sync_type.as_str(),
                    run.parent_sync_id,
                    run.linked_sync_id
                ],
            )
            .with_context(|| format!("recording sync {}", self.sync_id))?;
        Ok((self.sync_id, self.rows))
    }
}

/// The writing thread's share of a full sync: encodes and inserts every record it receives,
/// then expands the grants unless that is left to the reader. Returns the grants it added.
fn write_rows(
    sync: &mut SyncRows<'_>,
    batches: std::sync::mpsc::Receiver<Vec<Record>>,
    feed_failed: &AtomicBool,
    options: ExportOptions,
) -> Result<u64> {
    let loading = Instant::now();
    for record in batches.into_iter().flatten() {
        sync.insert(Row::from_record(record)?)?;
    }
    if feed_failed.load(Ordering::Acquire) {
        bail!("the records stopped coming");
    }
    tracing::debug!(rows = ?sync.rows, elapsed = ?loading.elapsed(), "c1z rows written");
    if options.skip_expand_grants {
        return Ok(0);
    }
    let expanding = Instant::now();
    let expanded = expand::expand(sync.conn, &sync.grants())?;
    sync.rows[Table::Grants as usize] += expanded;
    tracing::debug!(expanded, elapsed = ?expanding.elapsed(), "c1z grants expanded");
    Ok(expanded)
}

struct SyncRunRow {
    sync_type: SyncType,
    started_at: String,
    parent_sync_id: String,
    linked_sync_id: String,
}
