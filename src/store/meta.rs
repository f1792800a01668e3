//! The `meta` tree: schema version, projection options, counters, feed states and the exports
//! the change log must still serve. Small values, read and written whole.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use time::OffsetDateTime;

use super::keys::Generation;
use crate::item::Collection;
use crate::model::record::Table;

/// The layout this code reads and writes. Bump it with a migration when `keys` changes.
pub const SCHEMA_VERSION: u64 = 1;

pub const SCHEMA: &str = "schema";
pub const OPTIONS: &str = "options";
/// The last generation `begin_round` handed out.
pub const GENERATION: &str = "generation";
/// The newest change-log sequence number.
pub const HEAD: &str = "head";
/// The change log answers `changes_since(seq)` only for `seq >= floor`: entries up to the floor
/// were trimmed or never written.
pub const FLOOR: &str = "floor";
pub const COUNTS: &str = "counts";
pub const EXPORTS: &str = "exports";
const FEED_PREFIX: &str = "feed:";
/// `log-time:<head, 20 digits>` -> unix nanoseconds (i128 BE): when the commit that ended at
/// that head was written, which dates the change log's entries for the event feed.
const LOG_TIME_PREFIX: &str = "log-time:";

pub fn log_time_key(head: u64) -> String {
    format!("{LOG_TIME_PREFIX}{head:020}")
}

pub fn log_time_prefix() -> &'static str {
    LOG_TIME_PREFIX
}

/// The head a `log-time:` key names.
pub fn log_time_head(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key)
        .ok()?
        .strip_prefix(LOG_TIME_PREFIX)?
        .parse()
        .ok()
}

pub fn feed_key(feed: &str) -> String {
    format!("{FEED_PREFIX}{feed}")
}

pub fn feed_name(key: &[u8]) -> Option<&str> {
    std::str::from_utf8(key).ok()?.strip_prefix(FEED_PREFIX)
}

pub fn feed_prefix() -> &'static str {
    FEED_PREFIX
}

pub fn read_u64(meta: &sled::Tree, key: &str) -> anyhow::Result<Option<u64>> {
    let Some(bytes) = meta
        .get(key)
        .with_context(|| format!("reading meta {key}"))?
    else {
        return Ok(None);
    };
    let bytes: [u8; 8] = bytes
        .as_ref()
        .try_into()
        .map_err(|_| anyhow::anyhow!("meta {key} is {} bytes, not 8", bytes.len()))?;
    Ok(Some(u64::from_be_bytes(bytes)))
}

pub fn read_json<T: DeserializeOwned>(meta: &sled::Tree, key: &str) -> anyhow::Result<Option<T>> {
    meta.get(key)
        .with_context(|| format!("reading meta {key}"))?
        .map(|bytes| serde_json::from_slice(&bytes).with_context(|| format!("decoding meta {key}")))
        .transpose()
}

pub fn json_bytes<T: Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    serde_json::to_vec(value).context("encoding a meta value")
}

/// Where a feed stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedState {
    /// The cursor of the last committed page (opaque, owned by the engine); None after a reset
    /// or before the first page: the next round is a baseline.
    pub cursor: Option<Value>,
    /// When that cursor was written.
    #[serde(with = "rfc3339_option")]
    pub cursor_written_at: Option<OffsetDateTime>,
    /// The round in progress (from `begin_round` to `end_round`). A process that restarts in
    /// the middle of a round may resume it with this generation, so that its final sweep keeps
    /// the items the earlier pages wrote.
    pub round: Option<Generation>,
    /// How the last finished round ended.
    pub last_round: Option<RoundRecord>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    pub generation: Generation,
    #[serde(with = "time_rfc3339")]
    pub ended_at: OffsetDateTime,
    pub outcome: RoundOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoundOutcome {
    Completed,
    Failed { error: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportKind {
    /// A full snapshot.
    Full,
    /// A diff pair against an earlier export.
    Diff,
}

/// An export the change log can still compute diffs from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportRecord {
    pub sync_id: String,
    /// The change-log sequence number the export covers.
    pub seq: u64,
    pub kind: ExportKind,
    #[serde(with = "time_rfc3339")]
    pub at: OffsetDateTime,
}

/// Items per collection and records per table, kept up to date by every commit so that
/// `status` never has to walk the store. Record counts are unknown (None) after commits that
/// did not project (no export retained) until the next snapshot counts them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub items: BTreeMap<Collection, u64>,
    /// Records per table, in `Table::ALL` order.
    pub records: Option<[u64; 4]>,
}

impl Counts {
    pub fn add_items(&mut self, collection: Collection, delta: i64) {
        let count = self.items.entry(collection).or_default();
        *count = count.saturating_add_signed(delta);
        if *count == 0 {
            self.items.remove(&collection);
        }
    }

    /// Counts one record more (+1) or less (-1), if records are being counted.
    pub fn add_record(&mut self, table: Table, delta: i64) {
        if let Some(records) = &mut self.records {
            let slot = &mut records[table_index(table)];
            *slot = slot.saturating_add_signed(delta);
        }
    }

    pub fn records(&self) -> Option<BTreeMap<Table, u64>> {
        let records = self.records?;
        Some(
            Table::ALL
                .into_iter()
                .map(|t| (t, records[table_index(t)]))
                .collect(),
        )
    }
}

fn table_index(table: Table) -> usize {
    match table {
        Table::ResourceTypes => 0,
        Table::Resources => 1,
        Table::Entitlements => 2,
        Table::Grants => 3,
    }
}

/// RFC 3339 timestamps in meta values (the `time` crate's serde feature is not enabled).
mod time_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    pub fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.format(&Rfc3339).map_err(S::Error::custom)?)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(D::Error::custom)
    }
}

mod rfc3339_option {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(at: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => super::time_rfc3339::serialize(at, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::time_rfc3339")] OffsetDateTime);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(at)| at))
    }
}
