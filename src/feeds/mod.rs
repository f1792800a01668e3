//! Feeds: one per collection of the data model, each turning API pages into [`Change`]s and a
//! cursor. A feed never writes the store itself; the sync engine commits each page's changes
//! together with the feed's next cursor.

pub mod change;

pub use change::{Change, Collection, ItemKey};

// CONTRACT (the engine in `src/sync/` drives feeds through exactly this):
//
// ```ignore
// /// One collection's reader. A feed knows how to fetch; it never writes the store.
// pub trait Feed: Send + Sync {
//     /// Stable name: the key of its cursor in the store ("users", "groups", "arm_role_assignments:<sub>").
//     fn name(&self) -> String;
//     /// The scopes a full (baseline) round lists completely, swept at its end.
//     fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)>;
//     /// Fetches ONE page. `position` says where: the start of a baseline, the start of a delta
//     /// round from a stored cursor, or the middle of a round (a nextLink it returned before).
//     fn next_page<'a>(&'a self, ctx: &'a FeedContext, position: &'a Position) -> BoxFuture<'a, Result<Page, FeedError>>;
// }
// pub enum Position { Baseline, Delta(serde_json::Value), Continue(serde_json::Value) }
// pub struct Page {
//     pub changes: Vec<Change>,
//     /// Scopes this round has now listed completely (polled feeds: every page that ends a scope).
//     pub completed: Vec<(Collection, Option<String>)>,
//     pub next: Next,
// }
// pub enum Next { Continue(serde_json::Value), RoundDone(serde_json::Value /* cursor for the next round */) }
// pub struct FeedContext { pub client: AzureClient, pub store: Arc<Store> /* read-only use: item(), item_ids() */, pub options: FeedOptions, pub hints: Hints }
// /// DeltaTokenExpired => the engine re-baselines this feed; LicenseRequired => the engine turns the P2 feeds off with one warning.
// pub enum FeedError { DeltaTokenExpired, LicenseRequired(String), Api(ApiError), Malformed(String) }
// ```
