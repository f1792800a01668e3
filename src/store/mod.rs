//! The sled store: source items, feed cursors, and the change log of baton records.
//!
//! Items in, records out, change log derived. The store keeps the items as Microsoft sent them
//! (each stamped with the generation of the round that last wrote it, for mark and sweep), never
//! the records: a record is computed by `projection::project` from its one origin. Committing a
//! page projects every origin the page can affect before and after, and appends each record
//! whose bytes differ to the change log, in the same sled transaction as the items, the reverse
//! references and the feed's cursor. That makes a commit crash-safe and idempotent: the same page
//! again leaves the items as they are, so no record changes and nothing is logged.
//!
//! Every method blocks on sled I/O (and a commit on projection work): async callers use
//! `tokio::task::spawn_blocking`. Writes, snapshots and diffs take one lock in turn; item reads
//! never wait.
//!
//! Trees of the one `sled::Db`:
//! - `items`: `<collection tag><id>` -> `<generation u64 BE><JSON>`
//! - `refs`: `<target> 0x00 <collection tag><id>` -> `()` (which items name a principal, a scope)
//! - `log`: `<seq u64 BE>` -> one record's change ([`log::LogEntry`])
//! - `meta`: schema version, options, counters, feed states, retained exports
//!
//! The change log only needs to reach back to the oldest export a diff may be asked against.
//! The store retains the last [`RETAINED_EXPORTS`] exports recorded with
//! [`Store::record_export`]; entries at or below the oldest retained export's sequence number
//! are deleted. While no export is retained (a new store's baseline) commits neither project
//! nor log: no diff can be asked for, so the log floor moves up with the head, and the record
//! counts are unknown until the next snapshot counts them.
//!
//! The engine writes through [`Store::begin_round`], [`Store::commit_page`] (a page's changes,
//! sweeps and cursor in one transaction; `cursor: None` keeps the stored one) and
//! [`Store::end_round`]; the exporters read through [`Store::snapshot`] (every record and the
//! change-log position they reflect) and [`Store::changes_since`], and remember what they wrote
//! with [`Store::record_export`].

mod integrity;
pub use integrity::{StoreInUse, open_waiting_for_lock};
mod keys;
mod log;
mod log_pages;
mod meta;
mod page;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, anyhow, bail};
use serde_json::Value;
use sled::Transactional;
use sled::transaction::TransactionError;
use time::OffsetDateTime;

use crate::item::{Change, Collection, ItemKey};
use crate::model::projection::{self, ItemLookup, Origin, ProjectionOptions};
use crate::model::record::{Record, RecordChange, Table};

pub use keys::Generation;
pub use log::LogEntry;
pub use log_pages::{LogPage, LoggedChange};
pub use meta::{ExportKind, ExportRecord, FeedState, RoundOutcome, RoundRecord};

use log::{ChangeFold, Versions};
use view::{PageView, StoredItems};

/// How many recorded exports the change log keeps serving diffs against.
pub const RETAINED_EXPORTS: usize = 4;

/// Origins re-projected per transaction when the projection options change.
const REPROJECT_CHUNK: usize = 5_000;

/// What one `commit_page` did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Items created, changed, or re-marked with the round's generation.
    pub items_written: usize,
    pub items_removed: usize,
    /// Records created, changed or removed by the page; None when the commit did not project
    /// (no export retained, so no diff can be asked for).
    pub records_changed: Option<usize>,
    /// The change log's head after the commit.
    pub head_seq: u64,
}

/// What the store holds, for the `status` command and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct StoreStatus {
    pub items: BTreeMap<Collection, u64>,
    /// Records per table; None until a snapshot has counted them (see [`meta::Counts`]).
    pub records: Option<BTreeMap<Table, u64>>,
    pub feeds: BTreeMap<String, FeedState>,
    /// Retained exports, oldest first.
    pub exports: Vec<ExportRecord>,
    pub head_seq: u64,
    /// `changes_since(seq)` answers for `seq >= log_floor`.
    pub log_floor: u64,
    pub log_entries: usize,
    pub disk_bytes: u64,
}

/// One state directory's store. All writes go through one lock, so each commit projects
/// against a stable "before"; reads of items need no lock.
pub struct Store {
    db: sled::Db,
    items: sled::Tree,
    refs: sled::Tree,
    log: sled::Tree,
    meta: sled::Tree,
    options: ProjectionOptions,
    head: AtomicU64,
    writer: Mutex<()>,
}

/// The writes of one atomic step, one batch per tree.
#[derive(Default)]
struct Writes {
    items: sled::Batch,
    refs: sled::Batch,
    log: sled::Batch,
    meta: sled::Batch,
}

/// How a process uses its store, which sizes sled's page cache (sled keeps about one and a half
/// times its nominal size in memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreUse {
    /// Rounds of commits (`run`, `sync`, `demo`): 64 MiB keeps the pages that commits read and
    /// rewrite; 16 MiB made the store benchmark's commits 15-30% slower.
    Rounds,
    /// One pass over the items (`export`, `status`, `reset`): a snapshot reads each page once,
    /// so 8 MiB costs it no time (measured against 16 and 64) and keeps a full export of a
    /// million grants under 300 MB.
    OnePass,
}

impl StoreUse {
    fn cache_bytes(self) -> u64 {
        match self {
            StoreUse::Rounds => 64 << 20,
            StoreUse::OnePass => 8 << 20,
        }
    }
}

impl Store {
    /// Opens the store for rounds of commits ([`StoreUse::Rounds`]).
    pub fn open(dir: &Path, options: ProjectionOptions) -> anyhow::Result<Store> {
        Store::open_for(dir, options, StoreUse::Rounds)
    }

    pub fn open_for(
        dir: &Path,
        options: ProjectionOptions,
        usage: StoreUse,
    ) -> anyhow::Result<Store> {
        let opened = integrity::open(dir, usage)?;
        let db = opened.db;
        let tree = |name: &str| {
            db.open_tree(name)
                .with_context(|| format!("opening the {name} tree"))
        };
        let (items, refs, log, meta_tree) = (
            tree(integrity::ITEMS)?,
            tree(integrity::REFS)?,
            tree(integrity::LOG)?,
            tree(integrity::META)?,
        );
        if opened.fresh {
            // The static records exist before any item does; no commit ever projects them.
            let mut counts = meta::Counts {
                records: Some([0; 4]),
                ..meta::Counts::default()
            };
            let empty = StoredItems::new(&items, &refs);
            for record in projection::project(&Origin::ResourceTypes, &empty, &options) {
                counts.add_record(record.table(), 1);
            }
            let mut init = sled::Batch::default();
            init.insert(meta::SCHEMA, &meta::SCHEMA_VERSION.to_be_bytes());
            init.insert(meta::OPTIONS, meta::json_bytes(&options)?);
            init.insert(meta::COUNTS, meta::json_bytes(&counts)?);
            init.insert(
                meta::EXPORTS,
                meta::json_bytes(&Vec::<ExportRecord>::new())?,
            );
            for counter in [meta::GENERATION, meta::HEAD, meta::FLOOR] {
                init.insert(counter, &0u64.to_be_bytes());
            }
            meta_tree
                .apply_batch(init)
                .context("initialising a new store")?;
        }
        let head = meta::read_u64(&meta_tree, meta::HEAD)?.unwrap_or(0);
        let stored_options: ProjectionOptions =
            meta::read_json(&meta_tree, meta::OPTIONS)?.context("the store has no options")?;
        let store = Store {
            db,
            items,
            refs,
            log,
            meta: meta_tree,
            options,
            head: AtomicU64::new(head),
            writer: Mutex::new(()),
        };
        if stored_options != store.options {
            store.reproject(&stored_options)?;
        }
        Ok(store)
    }

    pub fn options(&self) -> &ProjectionOptions {
        &self.options
    }

    pub fn begin_round(&self, feed: &str) -> anyhow::Result<Generation> {
        let _writer = self.lock()?;
        let generation = Generation(self.meta_u64(meta::GENERATION)? + 1);
        let mut state = self.cursor(feed)?.unwrap_or_default();
        state.round = Some(generation);
        let mut writes = Writes::default();
        writes
            .meta
            .insert(meta::GENERATION, &generation.0.to_be_bytes());
        writes
            .meta
            .insert(meta::feed_key(feed).as_str(), meta::json_bytes(&state)?);
        self.write(&writes)?;
        Ok(generation)
    }

    /// Records how a round ended; the round is no longer in progress.
    pub fn end_round(&self, feed: &str, outcome: RoundOutcome) -> anyhow::Result<()> {
        let _writer = self.lock()?;
        let mut state = self
            .cursor(feed)?
            .with_context(|| format!("ending a round of feed {feed:?}, which never began one"))?;
        let generation = state
            .round
            .take()
            .with_context(|| format!("ending a round of feed {feed:?}: no round in progress"))?;
        state.last_round = Some(RoundRecord {
            generation,
            ended_at: OffsetDateTime::now_utc(),
            outcome,
        });
        self.meta
            .insert(meta::feed_key(feed), meta::json_bytes(&state)?)
            .context("writing the feed state")?;
        Ok(())
    }

    pub fn commit_page(
        &self,
        feed: &str,
        changes: &[Change],
        generation: Generation,
        sweep: &[(Collection, Option<String>)],
        cursor: Option<&Value>,
    ) -> anyhow::Result<CommitOutcome> {
        let _writer = self.lock()?;
        let issued = self.meta_u64(meta::GENERATION)?;
        if generation.0 == 0 || generation.0 > issued {
            bail!(
                "generation {} was never handed out by begin_round (last: {issued})",
                generation.0
            );
        }
        let stored = StoredItems::new(&self.items, &self.refs);
        let effect = page::apply(&stored, changes, generation, sweep)
            .with_context(|| format!("applying a page of feed {feed:?}"))?;
        let mut counts = self.counts()?;
        for (collection, delta) in &effect.item_counts {
            counts.add_items(*collection, *delta);
        }
        let mut writes = Writes {
            items: effect.item_writes,
            refs: effect.ref_writes,
            ..Writes::default()
        };
        let entries = if self.exports()?.is_empty() {
            None
        } else {
            Some(self.diff_page(&stored, &effect.pending)?)
        };
        let records_changed = entries.as_ref().map(Vec::len);
        let head = match entries {
            Some(entries) => self.log_entries(&mut writes, entries, &mut counts)?,
            None if effect.pending.values.is_empty() => self.head_seq(),
            None => {
                counts.records = None;
                self.skip_log(&mut writes)?
            }
        };
        writes.meta.insert(meta::COUNTS, meta::json_bytes(&counts)?);
        if let Some(cursor) = cursor {
            let mut state = self.cursor(feed)?.unwrap_or_default();
            state.cursor = Some(cursor.clone());
            state.cursor_written_at = Some(OffsetDateTime::now_utc());
            writes
                .meta
                .insert(meta::feed_key(feed).as_str(), meta::json_bytes(&state)?);
        }
        self.write(&writes)?;
        self.head.store(head, Ordering::SeqCst);
        Ok(CommitOutcome {
            items_written: effect.written,
            items_removed: effect.removed,
            records_changed,
            head_seq: head,
        })
    }

    /// The records a page changes: every origin of a changed item or depending on one (before
    /// or after the change, and only if the change can matter to dependents), projected before
    /// and after.
    fn diff_page(
        &self,
        stored: &StoredItems<'_>,
        pending: &view::PendingItems,
    ) -> anyhow::Result<Vec<LogEntry>> {
        let after = PageView {
            base: stored,
            pending,
        };
        let mut origins = BTreeSet::new();
        for (key, new) in &pending.values {
            origins.insert(Origin::Item(key.clone()));
            let old = stored.value(key)?;
            if projection::affects_dependents(key, old.as_ref(), new.as_ref()) {
                origins.extend(projection::dependents(key, stored));
                origins.extend(projection::dependents(key, &after));
            }
        }
        stored.check()?;
        let entries = diff_records(&origins, stored, &self.options, &after, &self.options);
        stored.check()?;
        Ok(entries)
    }

    pub fn cursor(&self, feed: &str) -> anyhow::Result<Option<FeedState>> {
        meta::read_json(&self.meta, &meta::feed_key(feed))
    }

    pub fn item(&self, key: &ItemKey) -> anyhow::Result<Option<Value>> {
        StoredItems::new(&self.items, &self.refs).value(key)
    }

    /// The ids of the items of `collection` whose id starts with `prefix`, ascending.
    pub fn item_ids(&self, collection: Collection, prefix: &str) -> anyhow::Result<Vec<String>> {
        StoredItems::new(&self.items, &self.refs).ids(collection, prefix)
    }

    /// Up to `limit` ids of `collection` greater than `after`, ascending (a range scan).
    pub fn item_ids_after(
        &self,
        collection: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<String>> {
        StoredItems::new(&self.items, &self.refs).ids_after(collection, after, limit)
    }

    /// Forgets a feed that no longer exists (a deleted subscription's), once its items are gone.
    pub fn forget_feed(&self, feed: &str) -> anyhow::Result<()> {
        let _writer = self.lock()?;
        self.meta
            .remove(meta::feed_key(feed))
            .with_context(|| format!("forgetting feed {feed:?}"))?;
        Ok(())
    }

    pub fn reset(&self) -> anyhow::Result<()> {
        let _writer = self.lock()?;
        let mut writes = Writes::default();
        for (feed, mut state) in self.feed_states()? {
            state.cursor = None;
            state.cursor_written_at = None;
            state.round = None;
            writes
                .meta
                .insert(meta::feed_key(&feed).as_str(), meta::json_bytes(&state)?);
        }
        self.write(&writes)
    }

    /// The records of one origin as the items stand now: what a snapshot would write for it.
    /// Lets a caller look up one record by its origin without a whole snapshot (provisioning
    /// resolves an entitlement or a principal this way).
    pub fn project(&self, origin: &Origin) -> anyhow::Result<Vec<Record>> {
        let stored = StoredItems::new(&self.items, &self.refs);
        let records = projection::project(origin, &stored, &self.options);
        stored.check()?;
        Ok(records)
    }

    pub fn for_each_record(
        &self,
        f: &mut dyn FnMut(Record) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.snapshot(f).map(|_| ())
    }

    /// Streams every record (as `for_each_record`) and returns the change-log sequence number
    /// they reflect. Commits wait until it returns, so the records are one consistent state;
    /// `f` must therefore not call back into the store.
    pub fn snapshot(&self, f: &mut dyn FnMut(Record) -> anyhow::Result<()>) -> anyhow::Result<u64> {
        let _writer = self.lock()?;
        let mut stored = StoredItems::new(&self.items, &self.refs);
        stored.remember_ids(Collection::User)?;
        stored.remember_ids(Collection::Group)?;
        let mut counted = meta::Counts {
            records: Some([0; 4]),
            ..meta::Counts::default()
        };
        projection::project_all(&stored, &self.options, &mut |record| {
            counted.add_record(record.table(), 1);
            f(record)
        })?;
        // A look-up that met a storage error answered "absent": the records are not to be
        // trusted then, and the error fails the snapshot (the exporter keeps the old file).
        stored.check()?;
        // The snapshot has counted every record: that is the count from now on.
        let mut counts = self.counts()?;
        if counts.records != counted.records {
            counts.records = counted.records;
            self.meta
                .insert(meta::COUNTS, meta::json_bytes(&counts)?)
                .context("writing the record counts")?;
        }
        Ok(self.head_seq())
    }

    pub fn head_seq(&self) -> u64 {
        self.head.load(Ordering::SeqCst)
    }

    /// The net change of every record after `seq`, ordered by table then external id; None
    /// when the log does not reach back to `seq` (trimmed, never logged, or from another store).
    pub fn changes_since(&self, seq: u64) -> anyhow::Result<Option<Vec<RecordChange>>> {
        // Under the writer lock: no commit or trim moves the head or the floor meanwhile.
        let _writer = self.lock()?;
        let floor = self.meta_u64(meta::FLOOR)?;
        let head = self.meta_u64(meta::HEAD)?;
        if seq < floor || seq > head {
            return Ok(None);
        }
        let mut fold = ChangeFold::default();
        for entry in self.log.range(keys::log_key(seq + 1)..=keys::log_key(head)) {
            let (key, value) = entry.context("reading the change log")?;
            let entry = LogEntry::decode(&value).with_context(|| {
                format!(
                    "change-log entry {}",
                    keys::parse_log_key(&key).unwrap_or_default()
                )
            })?;
            fold.push(entry);
        }
        fold.finish().map(Some)
    }

    /// Remembers an export covering the log up to `seq`, keeps the newest
    /// [`RETAINED_EXPORTS`] exports, and deletes the log entries none of them needs.
    pub fn record_export(&self, sync_id: &str, seq: u64, kind: ExportKind) -> anyhow::Result<()> {
        let _writer = self.lock()?;
        let head = self.meta_u64(meta::HEAD)?;
        if seq > head {
            bail!("export {sync_id:?} claims sequence number {seq}, beyond the log head {head}");
        }
        let mut exports = self.exports()?;
        exports.retain(|e| e.sync_id != sync_id);
        exports.push(ExportRecord {
            sync_id: sync_id.to_string(),
            seq,
            kind,
            at: OffsetDateTime::now_utc(),
        });
        let excess = exports.len().saturating_sub(RETAINED_EXPORTS);
        exports.drain(..excess);
        let oldest_needed = exports.iter().map(|e| e.seq).min().unwrap_or(seq);
        let floor = self.meta_u64(meta::FLOOR)?;

        let mut writes = Writes::default();
        if oldest_needed > floor {
            for key in self.log.range(..=keys::log_key(oldest_needed)).keys() {
                writes.log.remove(key.context("reading the change log")?);
            }
            for key in self
                .meta
                .range(meta::log_time_prefix()..meta::log_time_key(oldest_needed).as_str())
                .keys()
            {
                writes
                    .meta
                    .remove(key.context("reading the change log's times")?);
            }
            writes
                .meta
                .insert(meta::FLOOR, &oldest_needed.to_be_bytes());
        }
        writes
            .meta
            .insert(meta::EXPORTS, meta::json_bytes(&exports)?);
        self.write(&writes)
    }

    pub fn export_seq(&self, sync_id: &str) -> anyhow::Result<Option<u64>> {
        Ok(self
            .exports()?
            .into_iter()
            .find(|e| e.sync_id == sync_id)
            .map(|e| e.seq))
    }

    pub fn status(&self) -> anyhow::Result<StoreStatus> {
        let counts = self.counts()?;
        Ok(StoreStatus {
            items: counts.items.clone(),
            records: counts.records(),
            feeds: self.feed_states()?,
            exports: self.exports()?,
            head_seq: self.head_seq(),
            log_floor: self.meta_u64(meta::FLOOR)?,
            log_entries: self.log.len(),
            disk_bytes: self.db.size_on_disk().context("measuring the store")?,
        })
    }

    /// Runs `job` on tokio's blocking threads, for async callers: store calls wait on sled
    /// I/O, on the writer lock (held through a whole export) and, for a commit, on projection
    /// work, none of which may stall the runtime's workers.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        job: impl FnOnce(&Store) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let store = Arc::clone(self);
        tokio::task::spawn_blocking(move || job(&store))
            .await
            .context("a store task panicked")?
    }

    pub fn flush(&self) -> anyhow::Result<()> {
        self.db.flush().context("flushing the store")?;
        Ok(())
    }

    /// Re-projects every origin under the old and the new options and logs what differs, so
    /// that diffs across the options change stay right. Done in chunks: a crash in between
    /// repeats the work on the next open (the options are stored last), and repeated log
    /// entries fold to the same net change. Without a retained export there is nothing to log:
    /// only the options and the (now unknown) record counts change.
    fn reproject(&self, old: &ProjectionOptions) -> anyhow::Result<()> {
        let _writer = self.lock()?;
        let mut counts = self.counts()?;
        let mut writes = Writes::default();
        if self.exports()?.is_empty() {
            counts.records = None;
            self.skip_log(&mut writes)?;
        } else {
            tracing::info!("projection options changed; re-projecting every record");
            let stored = StoredItems::new(&self.items, &self.refs);
            let origins = projection::all_origins(&stored);
            stored.check()?;
            counts.records = Some([0; 4]);
            for chunk in origins.chunks(REPROJECT_CHUNK) {
                let chunk: BTreeSet<Origin> = chunk.iter().cloned().collect();
                let entries = diff_records(&chunk, &stored, old, &stored, &self.options);
                stored.check()?;
                for origin in &chunk {
                    for record in projection::project(origin, &stored, &self.options) {
                        counts.add_record(record.table(), 1);
                    }
                }
                stored.check()?;
                let mut chunk_writes = Writes::default();
                let head =
                    self.log_entries(&mut chunk_writes, entries, &mut meta::Counts::default())?;
                self.write(&chunk_writes)?;
                self.head.store(head, Ordering::SeqCst);
            }
        }
        writes
            .meta
            .insert(meta::OPTIONS, meta::json_bytes(&self.options)?);
        writes.meta.insert(meta::COUNTS, meta::json_bytes(&counts)?);
        self.write(&writes)?;
        self.head
            .store(self.meta_u64(meta::HEAD)?, Ordering::SeqCst);
        Ok(())
    }

    /// Moves the head past a change that is not logged, and the floor with it: no diff can
    /// reach across it.
    fn skip_log(&self, writes: &mut Writes) -> anyhow::Result<u64> {
        let head = self.meta_u64(meta::HEAD)? + 1;
        writes.meta.insert(meta::HEAD, &head.to_be_bytes());
        writes.meta.insert(meta::FLOOR, &head.to_be_bytes());
        Ok(head)
    }

    /// Appends `entries` to the log writes, counts them, and returns the new head.
    fn log_entries(
        &self,
        writes: &mut Writes,
        entries: Vec<LogEntry>,
        counts: &mut meta::Counts,
    ) -> anyhow::Result<u64> {
        let mut head = self.meta_u64(meta::HEAD)?;
        if entries.is_empty() {
            return Ok(head);
        }
        for entry in &entries {
            if entry.old.is_some() {
                counts.add_record(entry.table, -1);
            }
            if entry.new.is_some() {
                counts.add_record(entry.table, 1);
            }
            head += 1;
            writes.log.insert(&keys::log_key(head), entry.encode()?);
        }
        writes.meta.insert(meta::HEAD, &head.to_be_bytes());
        let written_at = OffsetDateTime::now_utc().unix_timestamp_nanos();
        writes
            .meta
            .insert(meta::log_time_key(head).as_str(), &written_at.to_be_bytes());
        Ok(head)
    }

    /// Applies one step's writes to all four trees atomically.
    fn write(&self, writes: &Writes) -> anyhow::Result<()> {
        (&self.items, &self.refs, &self.log, &self.meta)
            .transaction(|(items, refs, log, meta)| {
                items.apply_batch(&writes.items)?;
                refs.apply_batch(&writes.refs)?;
                log.apply_batch(&writes.log)?;
                meta.apply_batch(&writes.meta)?;
                Ok::<(), sled::transaction::ConflictableTransactionError<Infallible>>(())
            })
            .map_err(|error: TransactionError<Infallible>| anyhow!("writing to the store: {error}"))
    }

    fn lock(&self) -> anyhow::Result<MutexGuard<'_, ()>> {
        self.writer
            .lock()
            .map_err(|_| anyhow!("the store's writer lock is poisoned (a commit panicked)"))
    }

    fn meta_u64(&self, key: &str) -> anyhow::Result<u64> {
        meta::read_u64(&self.meta, key)?.with_context(|| format!("the store has no {key}"))
    }

    fn counts(&self) -> anyhow::Result<meta::Counts> {
        meta::read_json(&self.meta, meta::COUNTS)?.context("the store has no counts")
    }

    fn exports(&self) -> anyhow::Result<Vec<ExportRecord>> {
        Ok(meta::read_json(&self.meta, meta::EXPORTS)?.unwrap_or_default())
    }

    fn feed_states(&self) -> anyhow::Result<BTreeMap<String, FeedState>> {
        let mut feeds = BTreeMap::new();
        for entry in self.meta.scan_prefix(meta::feed_prefix()) {
            let (key, value) = entry.context("reading feed states")?;
            let Some(feed) = meta::feed_name(&key) else {
                continue;
            };
            let state = serde_json::from_slice(&value)
                .with_context(|| format!("decoding the state of feed {feed:?}"))?;
            feeds.insert(feed.to_string(), state);
        }
        Ok(feeds)
    }
}

/// The records of `origins` before and after, as log entries for those whose bytes differ,
/// ordered by table and external id. Records are gathered across all origins first, so a
/// record that moves from one origin to another nets to one change.
fn diff_records(
    origins: &BTreeSet<Origin>,
    before: &dyn ItemLookup,
    before_options: &ProjectionOptions,
    after: &dyn ItemLookup,
    after_options: &ProjectionOptions,
) -> Vec<LogEntry> {
    let mut records: BTreeMap<(Table, String), Versions> = BTreeMap::new();
    for origin in origins {
        for record in projection::project(origin, before, before_options) {
            let slot = records
                .entry((record.table(), record.external_id()))
                .or_default();
            slot.0 = Some(record.encode());
        }
        for record in projection::project(origin, after, after_options) {
            let slot = records
                .entry((record.table(), record.external_id()))
                .or_default();
            slot.1 = Some(record.encode());
        }
    }
    records
        .into_iter()
        .filter(|(_, (old, new))| old != new)
        .map(|((table, external_id), (old, new))| LogEntry {
            table,
            external_id,
            old,
            new,
        })
        .collect()
}
