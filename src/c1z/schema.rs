//! The c1z SQLite schema: the versioned SQL files in `migrations/`, applied in order.
//!
//! `PRAGMA user_version` records the last migration applied (baton's readers ignore it, reference
//! section 1.1). The writer applies the tables before loading rows and the indexes after, because
//! building an index over sorted, loaded rows is far cheaper than maintaining it row by row.

use anyhow::{Context, Result};
use rusqlite::Connection;

/// One migration: its version (the `user_version` after it) and its SQL.
struct Migration {
    version: u32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_tables.sql",
        sql: include_str!("../../migrations/0001_tables.sql"),
    },
    Migration {
        version: 2,
        name: "0002_indexes.sql",
        sql: include_str!("../../migrations/0002_indexes.sql"),
    },
];

/// The schema version with every table but no index.
pub const TABLES: u32 = 1;
/// The complete schema.
pub const COMPLETE: u32 = 2;

/// Applies every migration above the database's current version, up to `target`.
pub fn migrate(conn: &Connection, target: u32) -> Result<()> {
    let current: u32 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .context("reading the c1z schema version")?;
    for migration in MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        conn.execute_batch(migration.sql)
            .with_context(|| format!("applying c1z migration {}", migration.name))?;
        conn.pragma_update(None, "user_version", migration.version)
            .with_context(|| format!("recording c1z migration {}", migration.name))?;
    }
    Ok(())
}
