//! The `.c1z` writer (full snapshots and diffs) and a reader for tests.
