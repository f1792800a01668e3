//! The sled store: source items, cursors, change log.
