//! The sync engine: baseline, delta rounds, reconcile, reset, scheduler.

pub mod commands;
