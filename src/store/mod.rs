//! The sled store: source items, feed cursors, and the change log of baton records.
//!
//! CONTRACT (the engine and the exporters are written against this surface):
//!
//! ```ignore
//! pub struct Store { .. }   // one per state dir; sled's own file lock refuses a second process
//! impl Store {
//!     /// Opens or creates the store. A store from an older schema is migrated; one that fails
//!     /// its integrity check is moved aside (warning) and a fresh one is created.
//!     pub fn open(dir: &Path, options: ProjectionOptions) -> anyhow::Result<Store>;
//!     /// Starts a round of `feed` and returns its generation: every item a page of this round
//!     /// writes is marked with it, so the round can sweep what it did not see.
//!     pub fn begin_round(&self, feed: &str) -> anyhow::Result<Generation>;
//!     /// Commits one page atomically: the item changes (marked with `generation`), then the
//!     /// sweeps (every item of each scope NOT marked with `generation` is removed: the scopes a
//!     /// round has now listed completely, e.g. a baseline's whole collections, or one service
//!     /// principal's assignments `(AppRoleAssignment, Some("<spId>/"))`), the records all that
//!     /// changes (projected and diffed, appended to the change log), and the feed's new cursor
//!     /// (opaque JSON owned by the engine). Idempotent: the same page twice changes nothing more.
//!     pub fn commit_page(&self, feed: &str, changes: &[Change], generation: Generation, sweep: &[(Collection, Option<String>)], cursor: Option<&serde_json::Value>) -> anyhow::Result<CommitOutcome>;
//!     pub fn cursor(&self, feed: &str) -> anyhow::Result<Option<FeedState>>;   // cursor + when it was written + last round outcome
//!     pub fn item(&self, key: &ItemKey) -> anyhow::Result<Option<serde_json::Value>>;
//!     pub fn item_ids(&self, collection: Collection, prefix: &str) -> anyhow::Result<Vec<String>>;
//!     /// Forgets every cursor: the next round baselines every feed. Items stay until swept.
//!     pub fn reset(&self) -> anyhow::Result<()>;
//!     /// Every record of the current access graph, projected from the items.
//!     pub fn for_each_record(&self, f: &mut dyn FnMut(Record) -> anyhow::Result<()>) -> anyhow::Result<()>;
//!     /// The change log: the newest sequence number, and the net change of every record since
//!     /// `seq` (None when the log no longer reaches back that far).
//!     pub fn head_seq(&self) -> u64;
//!     pub fn changes_since(&self, seq: u64) -> anyhow::Result<Option<Vec<RecordChange>>>;   // RecordChange { table, external_id, old: Option<Record>, new: Option<Record> }
//!     /// Remembers an export (its sync id and the sequence number it covers); trims the log.
//!     pub fn record_export(&self, sync_id: &str, seq: u64, kind: ExportKind) -> anyhow::Result<()>;
//!     pub fn export_seq(&self, sync_id: &str) -> anyhow::Result<Option<u64>>;
//!     pub fn status(&self) -> anyhow::Result<StoreStatus>;   // counts per collection and per record table, feed states, last export
//!     pub fn flush(&self) -> anyhow::Result<()>;
//! }
//! ```
