//! The sync engine and the commands built on it: a feed's round as a pure state machine
//! (`round`), rounds of feeds into the store (`engine`),
//! exports (`export`), the long-running worker with its schedules and health endpoints
//! (`worker`, `metrics`), the one-shot commands (`commands`) and the demo (`demo`).

pub mod adapters;
pub mod commands;
#[cfg(feature = "emulator")]
pub mod demo;
pub mod engine;
pub mod export;
pub mod history;
pub mod metrics;
pub mod round;
pub mod setup;
pub mod worker;
