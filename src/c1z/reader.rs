//! Reading a classic `.c1z`: its syncs and their records. Used by tests and by
//! `--diff-since FILE`, which needs the sync id of the state a file brought its reader to.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags, params};

use super::container;
use super::rows::record_from_row;
use crate::model::{Record, Table};

/// One row of `v1_sync_runs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncRun {
    pub sync_id: String,
    pub sync_type: String,
    pub started_at: String,
    /// `None` while unfinished.
    pub ended_at: Option<String>,
    pub parent_sync_id: String,
    pub linked_sync_id: String,
    pub supports_diff: bool,
    pub grants_backfilled: bool,
}

/// One row of a record table as stored, for checks the decoded [`Record`] cannot express.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRow {
    pub id: i64,
    pub external_id: String,
    pub data: Vec<u8>,
    /// Grants only: the `expansion` column.
    pub expansion: Option<Vec<u8>>,
    /// Grants only: the `needs_expansion` column.
    pub needs_expansion: bool,
}

/// An opened `.c1z`: its database, decompressed into a temporary file removed on drop.
pub struct C1zReader {
    // Declared before `_database` so the connection closes before the file goes.
    conn: Connection,
    _database: TempDatabase,
}

/// The decompressed database file, removed on drop.
struct TempDatabase(PathBuf);

impl Drop for TempDatabase {
    fn drop(&mut self) {
        // A leftover temp file is harmless; the reader's own result is what matters.
        let _ = fs::remove_file(&self.0);
    }
}

impl C1zReader {
    pub fn open(path: &Path) -> Result<C1zReader> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let database = TempDatabase(std::env::temp_dir().join(format!("c1z-reader-{nonce}.db")));
        container::decompress(path, &database.0)?;
        let not_sqlite = || format!("{} does not hold an SQLite database", path.display());
        let conn = Connection::open_with_flags(&database.0, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(not_sqlite)?;
        let tables: i64 = conn
            .query_row(
                "select count(*) from sqlite_master where type = 'table' and name = 'v1_sync_runs'",
                [],
                |r| r.get(0),
            )
            .with_context(not_sqlite)?;
        if tables == 0 {
            bail!(
                "{} has no v1_sync_runs table: not a baton c1z",
                path.display()
            );
        }
        Ok(C1zReader {
            conn,
            _database: database,
        })
    }

    /// Every sync of the file, oldest row first.
    pub fn syncs(&self) -> Result<Vec<SyncRun>> {
        let mut stmt = self.conn.prepare(
            "select sync_id, sync_type, started_at, ended_at, parent_sync_id, linked_sync_id,
                 supports_diff, grants_backfilled from v1_sync_runs order by id",
        )?;
        let runs = stmt
            .query_map([], |r| {
                Ok(SyncRun {
                    sync_id: r.get(0)?,
                    sync_type: r.get(1)?,
                    started_at: r.get(2)?,
                    ended_at: r.get(3)?,
                    parent_sync_id: r.get(4)?,
                    linked_sync_id: r.get(5)?,
                    supports_diff: r.get(6)?,
                    grants_backfilled: r.get(7)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .context("reading v1_sync_runs")?;
        Ok(runs)
    }

    /// The newest finished sync of `sync_type`, as baton picks it (`ended_at`, then `sync_id`).
    pub fn latest_finished_sync_id(&self, sync_type: &str) -> Result<Option<String>> {
        let mut stmt = self.conn.prepare(
            "select sync_id from v1_sync_runs where ended_at is not null and sync_type = ?1
             order by ended_at desc, sync_id desc limit 1",
        )?;
        let mut rows = stmt.query([sync_type])?;
        Ok(match rows.next()? {
            Some(row) => Some(row.get(0)?),
            None => None,
        })
    }

    /// The newest finished full sync: what baton readers show by default.
    pub fn latest_full_sync_id(&self) -> Result<Option<String>> {
        self.latest_finished_sync_id("full")
    }

    /// The sync id naming the state this file brings its reader to: its newest full sync, or
    /// for a diff-only file its newest upserts sync.
    pub fn state_sync_id(&self) -> Result<Option<String>> {
        match self.latest_full_sync_id()? {
            Some(id) => Ok(Some(id)),
            None => self.latest_finished_sync_id("partial_upserts"),
        }
    }

    /// The rows of `table` in sync `sync_id`, in row order.
    pub fn rows(&self, sync_id: &str, table: Table) -> Result<Vec<StoredRow>> {
        let sql = match table {
            Table::Grants => {
                "select id, external_id, data, expansion, needs_expansion from v1_grants
                 where sync_id = ?1 order by id"
            }
            Table::ResourceTypes => {
                "select id, external_id, data, null, 0 from v1_resource_types
                 where sync_id = ?1 order by id"
            }
            Table::Resources => {
                "select id, external_id, data, null, 0 from v1_resources
                 where sync_id = ?1 order by id"
            }
            Table::Entitlements => {
                "select id, external_id, data, null, 0 from v1_entitlements
                 where sync_id = ?1 order by id"
            }
        };
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt
            .query_map(params![sync_id], |r| {
                Ok(StoredRow {
                    id: r.get(0)?,
                    external_id: r.get(1)?,
                    data: r.get(2)?,
                    expansion: r.get(3)?,
                    needs_expansion: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
            .with_context(|| format!("reading {table:?} of sync {sync_id}"))?;
        Ok(rows)
    }

    /// The records of `table` in sync `sync_id`, in row order; a grant's `expansion` column
    /// comes back as its last annotation.
    pub fn records(&self, sync_id: &str, table: Table) -> Result<Vec<Record>> {
        self.rows(sync_id, table)?
            .into_iter()
            .map(|row| {
                record_from_row(table, &row.data, row.expansion)
                    .with_context(|| format!("row {} ({:?})", row.id, row.external_id))
            })
            .collect()
    }
}

/// Resolves a `--diff-since` argument: an existing `.c1z` gives the sync id of the state it
/// holds ([`C1zReader::state_sync_id`]); anything else must be a KSUID sync id.
pub fn diff_base(arg: &str) -> Result<String> {
    let path = Path::new(arg);
    if path.is_file() {
        let reader = C1zReader::open(path)?;
        return reader.state_sync_id()?.with_context(|| {
            format!("{arg} holds no finished full or upserts sync to diff against")
        });
    }
    let is_ksuid = arg.len() == 27 && arg.bytes().all(|b| b.is_ascii_alphanumeric());
    if !is_ksuid {
        bail!(
            "--diff-since {arg:?} is neither an existing .c1z file nor a sync id (a 27-character KSUID)"
        );
    }
    Ok(arg.to_string())
}
