//! A simulated tenant that speaks the Graph and ARM wire formats, for demo, tests and benchmarks.
//!
//! Two halves share one [`EmulatorState`]: the tenant side (`tenant` model and journal,
//! `generator`, `changes` with the Rust [`Control`] surface, `expected` access graph, `clock`)
//! and the HTTP side (TLS, token endpoint, Graph and ARM handlers, quotas, faults). Handlers
//! take the tenant's read lock; control changes take its write lock. The emulator shares no code
//! with the worker's client, feeds or projection, so comparing the two tests something.

// emu-core: the tenant, its changes and the expected access graph.
pub mod changes;
pub mod clock;
pub mod expected;
pub mod generator;
pub mod tenant;

// emu-server: HTTP side (TLS, token endpoint, Graph and ARM handlers, quotas, faults).
pub mod arm;
pub mod control_http;
pub mod faults;
pub mod graph;
pub mod quota;
pub mod server;
pub mod tls;
pub mod token;
pub mod wire;

use std::path::PathBuf;
use std::sync::RwLock;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub use changes::{ChurnSummary, Control, TenantChange};
pub use clock::Clock;
pub use expected::{
    ExpectedEntitlement, ExpectedGrant, ExpectedGraph, ExpectedOptions, ExpectedResource,
};
pub use faults::FaultConfig;
pub use generator::TenantSpec;
pub use quota::RequestCounts;
pub use server::{Emulator, run_standalone};
pub use tenant::Tenant;
pub use wire::WireBehaviours;

/// How to build and run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub tenant: TenantSpec,
    /// Lifetime of issued access tokens (`expires_in`).
    pub token_lifetime: Duration,
    /// Delta tokens older than this (on the emulator clock) get 400 `syncStateNotFound`.
    pub delta_token_max_age: Duration,
    /// Enforce Graph resource-unit budgets and ARM token buckets (429 when over).
    pub quotas: bool,
    pub faults: FaultConfig,
    /// Where the CA certificate PEM is written.
    pub state_dir_for_ca: PathBuf,
}

impl EmulatorConfig {
    /// A config for `tenant` with test-friendly defaults: one-hour tokens, seven-day delta
    /// tokens, no quotas, no faults, CA written under `state_dir_for_ca`.
    pub fn new(tenant: TenantSpec, state_dir_for_ca: PathBuf) -> Self {
        EmulatorConfig {
            tenant,
            token_lifetime: Duration::from_secs(3600),
            delta_token_max_age: Duration::from_secs(7 * 24 * 3600),
            quotas: false,
            faults: FaultConfig::default(),
            state_dir_for_ca,
        }
    }
}

/// Everything a running emulator shares between its HTTP handlers and [`Control`].
/// Built once by `Emulator::start` and held in an `Arc`.
pub struct EmulatorState {
    pub tenant: RwLock<Tenant>,
    pub clock: Clock,
    pub token_lifetime: Duration,
    pub delta_token_max_age: Duration,
    /// While set, delta requests with a token answer 410 Gone with a `Location` to resync.
    pub force_delta_resync: AtomicBool,
    pub faults: faults::FaultInjector,
    pub meter: quota::Meter,
    /// Documented answers switched on by tests (`wire::WireBehaviours`).
    pub wire: RwLock<WireBehaviours>,
}

impl EmulatorState {
    /// State for an already generated `tenant`, its clock starting now. Also how tests drive
    /// the tenant side without a server.
    pub fn new(tenant: Tenant, config: &EmulatorConfig) -> Self {
        let meter = quota::Meter::new(
            config.quotas,
            quota::graph_budget_per_10s(tenant.users.len()),
            tenant.client_app_id.to_string(),
            tenant.tenant_id().to_string(),
        );
        EmulatorState {
            tenant: RwLock::new(tenant),
            clock: Clock::new(),
            token_lifetime: config.token_lifetime,
            delta_token_max_age: config.delta_token_max_age,
            force_delta_resync: AtomicBool::new(false),
            faults: faults::FaultInjector::new(config.faults.clone()),
            meter,
            wire: RwLock::new(WireBehaviours::default()),
        }
    }

    /// The tenant for reading. A handler that panicked mid-read leaves nothing half-done, so a
    /// poisoned lock is still safe to use.
    pub fn read_tenant(&self) -> std::sync::RwLockReadGuard<'_, Tenant> {
        self.tenant
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The wire behaviours switched on now.
    pub fn wire(&self) -> WireBehaviours {
        self.wire
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The tenant for changing; mutations go through `Tenant` methods so the journal sees them.
    pub fn write_tenant(&self) -> std::sync::RwLockWriteGuard<'_, Tenant> {
        self.tenant
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
