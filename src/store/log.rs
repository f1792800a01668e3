//! The change log's entries and how a run of them folds into the net change of each record.
//!
//! An entry is one record's change in one commit: `(table, external_id, old bytes?, new
//! bytes?)`, the bytes being the record's deterministic protobuf encoding. Entries never hold a
//! decoded record, so folding compares bytes and decodes only what survives.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

use crate::model::record::{Record, RecordChange, Table};

/// One logged change of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    pub table: Table,
    pub external_id: String,
    pub old: Option<Vec<u8>>,
    pub new: Option<Vec<u8>>,
}

const HAS_OLD: u8 = 1;
const HAS_NEW: u8 = 2;

impl LogEntry {
    /// `[table tag][flags][u32 BE id length][id][u32 BE old length][old][new]`: old and new are
    /// present as the flags say; new runs to the end.
    pub fn encode(&self) -> anyhow::Result<Vec<u8>> {
        let old_len = self.old.as_ref().map_or(0, Vec::len);
        let new_len = self.new.as_ref().map_or(0, Vec::len);
        let mut bytes = Vec::with_capacity(10 + self.external_id.len() + old_len + new_len);
        bytes.push(self.table.tag());
        let flags = if self.old.is_some() { HAS_OLD } else { 0 }
            | if self.new.is_some() { HAS_NEW } else { 0 };
        bytes.push(flags);
        push_len(&mut bytes, self.external_id.len())?;
        bytes.extend_from_slice(self.external_id.as_bytes());
        if let Some(old) = &self.old {
            push_len(&mut bytes, old.len())?;
            bytes.extend_from_slice(old);
        }
        if let Some(new) = &self.new {
            bytes.extend_from_slice(new);
        }
        Ok(bytes)
    }

    pub fn decode(bytes: &[u8]) -> anyhow::Result<LogEntry> {
        let mut reader = Reader(bytes);
        let tag = reader.take(1)?[0];
        let table =
            Table::from_tag(tag).with_context(|| format!("log entry with table tag {tag:#04x}"))?;
        let flags = reader.take(1)?[0];
        if flags & !(HAS_OLD | HAS_NEW) != 0 {
            bail!("log entry with unknown flags {flags:#04x}");
        }
        let id_len = reader.len()?;
        let external_id = std::str::from_utf8(reader.take(id_len)?)
            .context("log entry external id is not UTF-8")?
            .to_string();
        let old = if flags & HAS_OLD != 0 {
            let len = reader.len()?;
            Some(reader.take(len)?.to_vec())
        } else {
            None
        };
        let new = (flags & HAS_NEW != 0).then(|| reader.0.to_vec());
        if new.is_none() && !reader.0.is_empty() {
            bail!("log entry has {} trailing bytes", reader.0.len());
        }
        Ok(LogEntry {
            table,
            external_id,
            old,
            new,
        })
    }
}

fn push_len(bytes: &mut Vec<u8>, len: usize) -> anyhow::Result<()> {
    let len = u32::try_from(len).with_context(|| format!("{len} bytes do not fit a log entry"))?;
    bytes.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> anyhow::Result<&'a [u8]> {
        if self.0.len() < n {
            bail!(
                "log entry truncated: wanted {n} more bytes, {} left",
                self.0.len()
            );
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn len(&mut self) -> anyhow::Result<usize> {
        let bytes: [u8; 4] = self.take(4)?.try_into()?;
        Ok(u32::from_be_bytes(bytes) as usize)
    }
}

/// A record's encoding at the start and at the end of a run of changes (None: absent).
pub type Versions = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Folds consecutive log entries into one net change per record: the first entry's `old` and
/// the last entry's `new`. A record that ends as it began is no change at all.
#[derive(Default)]
pub struct ChangeFold {
    net: BTreeMap<(Table, String), Versions>,
}

impl ChangeFold {
    pub fn push(&mut self, entry: LogEntry) {
        match self.net.entry((entry.table, entry.external_id)) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert((entry.old, entry.new));
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => slot.get_mut().1 = entry.new,
        }
    }

    /// The net changes, ordered by table (snapshot order) then external id.
    pub fn finish(self) -> anyhow::Result<Vec<RecordChange>> {
        let mut changes = Vec::new();
        for ((table, external_id), (old, new)) in self.net {
            if old == new {
                continue;
            }
            let decode = |bytes: Option<Vec<u8>>| -> anyhow::Result<Option<Record>> {
                bytes
                    .map(|b| Record::decode(table, &b))
                    .transpose()
                    .with_context(|| format!("decoding logged {table:?} record {external_id:?}"))
            };
            let old = decode(old)?;
            let new = decode(new)?;
            changes.push(RecordChange {
                table,
                external_id,
                old,
                new,
            });
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::proto;

    fn entitlement(id: &str, name: &str) -> Vec<u8> {
        Record::Entitlement(proto::Entitlement {
            id: id.to_string(),
            display_name: name.to_string(),
            ..Default::default()
        })
        .encode()
    }

    fn entry(id: &str, old: Option<Vec<u8>>, new: Option<Vec<u8>>) -> LogEntry {
        LogEntry {
            table: Table::Entitlements,
            external_id: id.to_string(),
            old,
            new,
        }
    }

    #[test]
    fn entries_round_trip_in_every_shape() {
        let bytes = entitlement("group:g:members", "Members");
        for (old, new) in [
            (None, None),
            (Some(bytes.clone()), None),
            (None, Some(bytes.clone())),
            (Some(Vec::new()), Some(bytes.clone())),
            (Some(bytes.clone()), Some(Vec::new())),
        ] {
            let e = entry("group:g:members", old, new);
            assert_eq!(LogEntry::decode(&e.encode().unwrap()).unwrap(), e);
        }
    }

    #[test]
    fn damaged_entries_are_errors() {
        let encoded = entry("x", Some(vec![1, 2, 3]), None).encode().unwrap();
        assert!(LogEntry::decode(&encoded[..encoded.len() - 1]).is_err());
        let mut extra = encoded.clone();
        extra.push(9);
        assert!(LogEntry::decode(&extra).is_err());
        let mut bad_table = encoded;
        bad_table[0] = b'?';
        assert!(LogEntry::decode(&bad_table).is_err());
    }

    #[test]
    fn fold_keeps_first_old_and_last_new_and_drops_no_ops() {
        let a = entitlement("e1", "A");
        let b = entitlement("e1", "B");
        let c = entitlement("e1", "C");
        let mut fold = ChangeFold::default();
        // e1: A -> B -> C nets to A -> C.
        fold.push(entry("e1", Some(a.clone()), Some(b.clone())));
        fold.push(entry("e1", Some(b.clone()), Some(c.clone())));
        // e2: added then removed: no change.
        fold.push(entry("e2", None, Some(a.clone())));
        fold.push(entry("e2", Some(a.clone()), None));
        // e3: removed then restored unchanged: no change.
        fold.push(entry("e3", Some(b.clone()), None));
        fold.push(entry("e3", None, Some(b.clone())));
        // e4: removed.
        fold.push(entry("e4", Some(c.clone()), None));
        let changes = fold.finish().unwrap();
        let ids: Vec<&str> = changes.iter().map(|c| c.external_id.as_str()).collect();
        assert_eq!(ids, ["e1", "e4"]);
        assert_eq!(changes[0].old.as_ref().map(Record::encode), Some(a));
        assert_eq!(changes[0].new.as_ref().map(Record::encode), Some(c.clone()));
        assert_eq!(changes[1].old.as_ref().map(Record::encode), Some(c));
        assert_eq!(changes[1].new, None);
    }
}
