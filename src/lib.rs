//! baton-azure-delta: reads a Microsoft Entra ID tenant and its Azure subscriptions once, then
//! follows their changes, and exports who-can-access-what as baton `.c1z` files.
//!
//! Data flows top to bottom through these modules (docs/DESIGN.md):
//! `azure` (talking to Microsoft) -> `feeds` (pages into changes) -> `store` (sled) ->
//! `model` (projection into baton records) -> `c1z` (snapshot and diff files), driven by `sync`;
//! `provision` writes grants and revokes back through `azure` and records them in `store`.

pub mod azure;
pub mod c1z;
pub mod cli;
pub mod config;
pub mod events;
pub mod feeds;
pub mod handoff;
pub mod item;
pub mod logging;
pub mod model;
pub mod provision;
pub mod service;
pub mod store;
pub mod sync;
