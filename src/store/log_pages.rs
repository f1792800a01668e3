//! Reading the change log entry by entry, oldest first, with each entry's sequence number and
//! the time its commit was written: what the event feed serves. Diffs fold the log instead
//! (`Store::changes_since`).

use anyhow::Context;
use time::OffsetDateTime;

use super::log::LogEntry;
use super::{Store, keys, meta};

/// One logged record change.
#[derive(Clone, Debug)]
pub struct LoggedChange {
    pub seq: u64,
    /// When its commit was written; None for entries logged before the store kept times.
    pub written_at: Option<OffsetDateTime>,
    pub entry: LogEntry,
}

/// Up to `limit` entries after a sequence number.
#[derive(Clone, Debug)]
pub struct LogPage {
    pub changes: Vec<LoggedChange>,
    /// Entries at or below the floor are gone (trimmed, or never logged).
    pub floor: u64,
    pub head: u64,
}

impl Store {
    /// The entries after `after` (after the floor, if `after` is below it), oldest first.
    pub fn log_after(&self, after: u64, limit: usize) -> anyhow::Result<LogPage> {
        // Under the writer lock: no trim moves the floor while the page is read.
        let _writer = self.lock()?;
        let floor = self.meta_u64(meta::FLOOR)?;
        let head = self.meta_u64(meta::HEAD)?;
        let start = after.max(floor);
        let mut changes = Vec::new();
        for item in self.log.range(keys::log_key(start + 1)..).take(limit) {
            let (key, value) = item.context("reading the change log")?;
            let seq = keys::parse_log_key(&key)?;
            let entry =
                LogEntry::decode(&value).with_context(|| format!("change-log entry {seq}"))?;
            changes.push(LoggedChange {
                seq,
                written_at: self.commit_time(seq)?,
                entry,
            });
        }
        Ok(LogPage {
            changes,
            floor,
            head,
        })
    }

    /// The sequence number of the last entry written before `at`: reading after it gives
    /// the changes from `at` on.
    pub fn log_seq_before(&self, at: OffsetDateTime) -> anyhow::Result<u64> {
        let wanted = at.unix_timestamp_nanos();
        let mut before = self.meta_u64(meta::FLOOR)?;
        for item in self.meta.scan_prefix(meta::log_time_prefix()) {
            let (key, value) = item.context("reading the change log's times")?;
            if read_nanos(&value)? >= wanted {
                break;
            }
            if let Some(head) = meta::log_time_head(&key) {
                before = before.max(head);
            }
        }
        Ok(before)
    }

    /// The time of the commit that wrote `seq`: the first commit ending at or after it.
    fn commit_time(&self, seq: u64) -> anyhow::Result<Option<OffsetDateTime>> {
        let first = self
            .meta
            .range(meta::log_time_key(seq).as_str()..)
            .next()
            .transpose()
            .context("reading the change log's times")?;
        match first {
            Some((key, value)) if meta::log_time_head(&key).is_some() => {
                let nanos = read_nanos(&value)?;
                Ok(OffsetDateTime::from_unix_timestamp_nanos(nanos).ok())
            }
            _ => Ok(None),
        }
    }
}

fn read_nanos(value: &[u8]) -> anyhow::Result<i128> {
    let bytes: [u8; 16] = value
        .try_into()
        .map_err(|_| anyhow::anyhow!("a change-log time is {} bytes, not 16", value.len()))?;
    Ok(i128::from_be_bytes(bytes))
}
