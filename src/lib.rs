//! baton-azure-delta: reads a Microsoft Entra ID tenant and its Azure subscriptions once, then
//! follows their changes, and exports who-can-access-what as baton `.c1z` files.
//!
//! Data flows top to bottom through these modules (../shared/DESIGN.md):
//! `azure` (talking to Microsoft) -> `feeds` (pages into changes) -> `store` (sled) ->
//! `model` (projection into baton records) -> `c1z` (snapshot and diff files), driven by `sync`.

pub mod azure;
pub mod c1z;
pub mod cli;
pub mod config;
pub mod emulator;
pub mod events;
pub mod feeds;
pub mod handoff;
pub mod logging;
pub mod model;
pub mod service;
pub mod store;
pub mod sync;

/// mimalloc instead of the system allocator, for every binary that links this crate (the
/// program, its tests and its benchmarks alike). sled and the projection allocate and free
/// small blocks at a high rate; with glibc's malloc over half the CPU of a full store snapshot
/// went to `_int_malloc`, `malloc_consolidate` and `free` (perf, benches/store_apply.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
