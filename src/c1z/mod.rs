//! The `.c1z` exporter: full snapshots and diff pairs in baton's classic v1 format (`C1ZF\0` + one
//! zstd frame holding an SQLite database, as baton-sdk's `pkg/dotc1z` reads it), and a reader for
//! tests and for `--diff-since FILE`.
//!
//! What goes in a file:
//! - A **full snapshot** is one finished `full` sync holding every record of the store. Unless
//!   [`ExportOptions::skip_expand_grants`] is set, group-held grants are expanded as a normal baton
//!   run would ([`expand`]): expanded grants carry `GrantImmutable` and `sources`.
//! - A **diff** is baton's pair: a `partial_deletions` sync (the old rows of records that are
//!   gone), then a `partial_upserts` sync (the new rows of records that appeared or changed), both
//!   with `parent_sync_id` = the earlier export's sync id and linked to each other. It is computed
//!   from the store's change log, never by re-reading two snapshots. The pair holds the DIRECT
//!   records that changed: grants keep `GrantExpandable` (in the `expansion` column, with
//!   `needs_expansion = 1`), exactly as a baton run with `skip_expand_grants` writes them; the
//!   reader (ConductorOne) expands. So "old snapshot minus deletions plus upserts" equals the new
//!   snapshot written with `skip_expand_grants`, record for record.
//! - With `with_full`, the new full snapshot goes into the same file, written after the pair so
//!   that it stays the newest finished sync (old readers show the newest sync of any type).
//!
//! Grants use the "native" profile (reference section 2.6): `GrantExpandable` is moved out of the
//! grant blob into `v1_grants.expansion`, and every sync has `supports_diff = 1`,
//! `grants_backfilled = 1`.
//!
//! Every file is written atomically ([`container`]): the SQLite database is built in a scratch
//! file next to the target, compressed into a temporary file in the target directory, fsynced and
//! renamed over the target. On any error the scratch files are removed and the target is
//! untouched.

pub mod container;
pub mod expand;
pub mod reader;
mod rows;
mod schema;
pub mod writer;

pub use reader::{C1zReader, StoredRow, SyncRun, diff_base};
pub use writer::{
    DiffSyncs, ExportOptions, ExportRequest, ExportSource, ExportSummary, RecordFeed, export,
    write_diff, write_full,
};

/// baton's sync types (`v1_sync_runs.sync_type`) that this crate writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncType {
    Full,
    PartialDeletions,
    PartialUpserts,
}

impl SyncType {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncType::Full => "full",
            SyncType::PartialDeletions => "partial_deletions",
            SyncType::PartialUpserts => "partial_upserts",
        }
    }
}

/// A new sync id: a KSUID (27 base62 characters), which baton's Pebble codec parses.
pub fn new_sync_id() -> String {
    use svix_ksuid::KsuidLike;
    svix_ksuid::Ksuid::now(None).to_string()
}

/// The current UTC wall clock in baton's `datetime` text layout, `YYYY-MM-DD HH:MM:SS.fffffffff`:
/// no `T` and no zone, so values compare correctly as text (`ORDER BY ended_at`).
pub fn sqlite_now() -> String {
    const LAYOUT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:9]"
    );
    time::OffsetDateTime::now_utc()
        .format(LAYOUT)
        .unwrap_or_else(|_| unreachable!("a fixed layout of numeric fields always formats"))
}
