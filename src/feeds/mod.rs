//! Feeds: one per collection of the data model, each turning API pages into [`Change`]s and a
//! cursor. A feed never writes the store itself; the sync engine commits each page's changes
//! together with the feed's next cursor.

pub mod change;

pub use change::{Change, Collection, ItemKey};
