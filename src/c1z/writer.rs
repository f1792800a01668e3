//! Writing `.c1z` files: full snapshots, diff pairs, and the export policy that picks one.
//!
//! Records arrive in any order; each sync's rows are first staged in a scratch SQLite database
//! keyed by `external_id` (an external sort that keeps memory flat), optionally expanded, then
//! copied into the output tables in `external_id` order, so the same records always give the
//! same rows with the same row ids.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, ErrorCode, params};

use super::container::Target;
use super::rows::{Columns, Row};
use super::{SyncType, expand, new_sync_id, schema, sqlite_now};
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
    let written = Database::create(&mut target).and_then(|db| {
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
    let written = Database::create(&mut target).and_then(|db| {
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

/// Staging tables, one per record table, in the attached scratch database `stage`. WITHOUT ROWID
/// keeps each ordered by `external_id`, which also rejects duplicates.
const STAGE_SCHEMA: &str = "
create table stage.resource_types (external_id text primary key, data blob not null) without rowid;
create table stage.resources (external_id text primary key, resource_type_id text not null,
    parent_resource_type_id text, parent_resource_id text, data blob not null) without rowid;
create table stage.entitlements (external_id text primary key, resource_type_id text not null,
    resource_id text not null, data blob not null) without rowid;
create table stage.grants (external_id text primary key, resource_type_id text not null,
    resource_id text not null, entitlement_id text not null,
    principal_resource_type_id text not null, principal_resource_id text not null,
    expansion blob, direct integer not null, data blob not null) without rowid;
";

/// Copies a stage table into its `v1_` table in `external_id` order; ?1 = sync id,
/// ?2 = discovered_at.
fn copy_sql(table: Table) -> &'static str {
    match table {
        Table::ResourceTypes => {
            "insert into main.v1_resource_types (external_id, data, sync_id, discovered_at)
             select external_id, data, ?1, ?2 from stage.resource_types order by external_id"
        }
        Table::Resources => {
            "insert into main.v1_resources (resource_type_id, external_id, parent_resource_type_id,
                 parent_resource_id, data, sync_id, discovered_at)
             select resource_type_id, external_id, parent_resource_type_id, parent_resource_id,
                 data, ?1, ?2 from stage.resources order by external_id"
        }
        Table::Entitlements => {
            "insert into main.v1_entitlements (resource_type_id, resource_id, external_id, data,
                 sync_id, discovered_at)
             select resource_type_id, resource_id, external_id, data, ?1, ?2
             from stage.entitlements order by external_id"
        }
        Table::Grants => {
            "insert into main.v1_grants (resource_type_id, resource_id, entitlement_id,
                 principal_resource_type_id, principal_resource_id, external_id, expansion,
                 needs_expansion, data, sync_id, discovered_at)
             select resource_type_id, resource_id, entitlement_id, principal_resource_type_id,
                 principal_resource_id, external_id, expansion, expansion is not null, data, ?1, ?2
             from stage.grants order by external_id"
        }
    }
}

pub(crate) fn stage_table(table: Table) -> &'static str {
    match table {
        Table::ResourceTypes => "stage.resource_types",
        Table::Resources => "stage.resources",
        Table::Entitlements => "stage.entitlements",
        Table::Grants => "stage.grants",
    }
}

/// The SQLite database of a `.c1z` being built, with its staging area.
struct Database {
    conn: Connection,
    path: PathBuf,
}

impl Database {
    fn create(target: &mut Target) -> Result<Database> {
        let path = target.scratch_path("db");
        let stage = target.scratch_path("stage");
        let conn = Connection::open(&path)
            .with_context(|| format!("creating the c1z database {}", path.display()))?;
        // A scratch database: durability comes from the fsync of the final file, so no journal
        // and no syncs here. The main file keeps the rollback-journal header readers expect.
        conn.execute_batch(
            "pragma page_size = 8192;
             pragma journal_mode = off; pragma synchronous = off;
             pragma locking_mode = exclusive; pragma cache_size = -65536;
             pragma temp_store = file;",
        )
        .context("configuring the c1z database")?;
        let stage_str = stage
            .to_str()
            .with_context(|| format!("scratch path {} is not UTF-8", stage.display()))?;
        conn.execute("attach database ?1 as stage", [stage_str])
            .with_context(|| format!("creating the staging database {}", stage.display()))?;
        conn.execute_batch(
            "pragma stage.page_size = 8192;
             pragma stage.journal_mode = off; pragma stage.synchronous = off;
             pragma stage.cache_size = -65536;",
        )
        .context("configuring the staging database")?;
        schema::migrate(&conn, schema::TABLES)?;
        conn.execute_batch(STAGE_SCHEMA)
            .context("creating the staging tables")?;
        conn.execute_batch("begin")?;
        Ok(Database { conn, path })
    }

    fn stage(&self, record: &Record) -> Result<()> {
        let row = Row::from_record(record)?;
        let result = match &row.columns {
            Columns::ResourceType => self
                .conn
                .prepare_cached("insert into stage.resource_types values (?1, ?2)")?
                .execute(params![row.external_id, row.data]),
            Columns::Resource {
                resource_type_id,
                parent,
            } => self
                .conn
                .prepare_cached("insert into stage.resources values (?1, ?2, ?3, ?4, ?5)")?
                .execute(params![
                    row.external_id,
                    resource_type_id,
                    parent.as_ref().map(|p| &p.resource_type),
                    parent.as_ref().map(|p| &p.resource),
                    row.data
                ]),
            Columns::Entitlement {
                resource_type_id,
                resource_id,
            } => self
                .conn
                .prepare_cached("insert into stage.entitlements values (?1, ?2, ?3, ?4)")?
                .execute(params![
                    row.external_id,
                    resource_type_id,
                    resource_id,
                    row.data
                ]),
            Columns::Grant(g) => self
                .conn
                .prepare_cached(
                    "insert into stage.grants values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?
                .execute(params![
                    row.external_id,
                    g.resource_type_id,
                    g.resource_id,
                    g.entitlement_id,
                    g.principal_resource_type_id,
                    g.principal_resource_id,
                    g.expansion,
                    g.direct,
                    row.data
                ]),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => bail!(
                "two {:?} records share the id {:?}",
                record.table(),
                row.external_id
            ),
            Err(e) => Err(e).context("staging a record"),
        }
    }

    /// Moves the staged rows into the output tables as sync `sync_id`, and records the sync.
    fn write_sync(&self, sync_id: &str, run: SyncRunRow) -> Result<[u64; 4]> {
        let discovered_at = sqlite_now();
        let mut rows = [0u64; 4];
        for (i, table) in Table::ALL.into_iter().enumerate() {
            let copied = self
                .conn
                .execute(copy_sql(table), params![sync_id, discovered_at])
                .with_context(|| format!("writing the {table:?} rows of sync {sync_id}"))?;
            rows[i] = copied as u64;
            self.conn
                .execute(&format!("delete from {}", stage_table(table)), [])?;
        }
        self.conn
            .execute(
                "insert into v1_sync_runs (sync_id, started_at, ended_at, sync_token, sync_type,
                     parent_sync_id, linked_sync_id, supports_diff, grants_backfilled)
                 values (?1, ?2, ?3, '', ?4, ?5, ?6, 1, 1)",
                params![
                    sync_id,
                    run.started_at,
                    sqlite_now(),
                    run.sync_type.as_str(),
                    run.parent_sync_id,
                    run.linked_sync_id
                ],
            )
            .with_context(|| format!("recording sync {sync_id}"))?;
        Ok(rows)
    }

    fn write_full_sync(&self, records: RecordFeed, options: ExportOptions) -> Result<FullSync> {
        let sync_id = new_sync_id();
        let started_at = sqlite_now();
        records(&mut |record| self.stage(&record))?;
        let expanded_grants = if options.skip_expand_grants {
            0
        } else {
            expand::expand_staged(&self.conn)?
        };
        let rows = self.write_sync(
            &sync_id,
            SyncRunRow {
                sync_type: SyncType::Full,
                started_at,
                parent_sync_id: String::new(),
                linked_sync_id: String::new(),
            },
        )?;
        Ok(FullSync {
            sync_id,
            rows,
            expanded_grants,
        })
    }

    /// baton's diff pair: deletions (old rows of records now gone) first, then upserts (new rows
    /// of records that appeared or whose row changed), each linked to the other.
    fn write_diff_pair(&self, base_sync_id: &str, changes: &[RecordChange]) -> Result<DiffSyncs> {
        let deletions_sync_id = new_sync_id();
        let upserts_sync_id = new_sync_id();

        let started_at = sqlite_now();
        for change in changes {
            if let (Some(old), None) = (&change.old, &change.new) {
                self.stage(old)?;
            }
        }
        let deleted = self.write_sync(
            &deletions_sync_id,
            SyncRunRow {
                sync_type: SyncType::PartialDeletions,
                started_at,
                parent_sync_id: base_sync_id.to_string(),
                linked_sync_id: upserts_sync_id.clone(),
            },
        )?;

        let started_at = sqlite_now();
        for change in changes {
            if let Some(new) = &change.new {
                let changed = change
                    .old
                    .as_ref()
                    .is_none_or(|old| old.encode() != new.encode());
                if changed {
                    self.stage(new)?;
                }
            }
        }
        let upserted = self.write_sync(
            &upserts_sync_id,
            SyncRunRow {
                sync_type: SyncType::PartialUpserts,
                started_at,
                parent_sync_id: base_sync_id.to_string(),
                linked_sync_id: deletions_sync_id.clone(),
            },
        )?;
        Ok(DiffSyncs {
            base_sync_id: base_sync_id.to_string(),
            deletions_sync_id,
            upserts_sync_id,
            deletions: deleted.iter().sum(),
            upserts: upserted.iter().sum(),
        })
    }

    /// Commits, builds the indexes, drops the staging area and closes the database, whose path
    /// it returns.
    fn finish(self) -> Result<PathBuf> {
        self.conn
            .execute_batch("commit")
            .context("committing the c1z database")?;
        self.conn
            .execute_batch("detach database stage")
            .context("detaching the staging database")?;
        schema::migrate(&self.conn, schema::COMPLETE)?;
        self.conn
            .close()
            .map_err(|(_, e)| e)
            .context("closing the c1z database")?;
        Ok(self.path)
    }
}

struct SyncRunRow {
    sync_type: SyncType,
    started_at: String,
    parent_sync_id: String,
    linked_sync_id: String,
}
