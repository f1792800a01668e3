//! Turning a validated [`Config`] into the running parts: the store, the Azure client, the
//! engine. Every command that syncs starts here, so they all fail the same clear way.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::engine::{ApiTotals, Engine};
use crate::azure::{AzureClient, ClientConfig};
use crate::config::Config;
use crate::feeds::{self, FeedOptions};
use crate::model::projection::ProjectionOptions;
use crate::store::{Store, StoreInUse, StoreUse};

/// What lands in the `.c1z`, from the configuration.
pub fn projection_options(config: &Config) -> ProjectionOptions {
    let o = &config.options;
    ProjectionOptions {
        mailbox_settings: o.mailbox_settings,
        skip_ad_groups: o.skip_ad_groups,
        skip_unused_roles: o.skip_unused_roles,
        skip_storage_containers: o.skip_storage_containers,
        skip_p2: o.skip_p2,
        external_principals: o.external_resource_c1z.is_some(),
        graph_domain: config
            .endpoints
            .graph
            .host_str()
            .unwrap_or("graph.microsoft.com")
            .to_string(),
    }
}

/// What the feeds fetch, from the configuration.
pub fn feed_options(config: &Config) -> FeedOptions {
    FeedOptions {
        mailbox: config.options.mailbox_settings,
        skip_p2: config.options.skip_p2,
        skip_storage_containers: config.options.skip_storage_containers,
        pim_for_groups: !crate::config::is_national_cloud(&config.endpoints),
        ..FeedOptions::default()
    }
}

/// Opens the state dir's store for `usage`. sled locks its files, so a second process on the
/// same state dir is refused with [`StoreInUse`], which says so.
pub fn open_store(
    state_dir: &Path,
    options: ProjectionOptions,
    usage: StoreUse,
) -> anyhow::Result<Store> {
    std::fs::create_dir_all(state_dir)
        .with_context(|| format!("creating the state dir {}", state_dir.display()))?;
    Store::open_for(state_dir, options, usage).map_err(|error| {
        if error.is::<StoreInUse>() {
            error
        } else {
            error.context(format!("opening the store in {}", state_dir.display()))
        }
    })
}

/// Builds the Azure client and proves the credential works before any sync work.
pub async fn connect(config: &Config) -> anyhow::Result<AzureClient> {
    let credential = config.require_credential()?.clone();
    let mut client_config = ClientConfig::new(config.endpoints.clone(), credential);
    client_config.extra_ca_pem = config.ca_cert.as_ref().map(|ca| ca.pem.clone());
    client_config.graph_requests_per_minute = config.budget.graph_requests_per_minute;
    client_config.arm_requests_per_minute = config.budget.arm_requests_per_minute;
    client_config.max_concurrency = config.budget.max_concurrency;
    let client = AzureClient::new(client_config)
        .await
        .context("setting up the Azure client")?;
    client
        .check_credentials()
        .await
        .context("signing in to Microsoft Entra ID")?;
    Ok(client)
}

/// The engine over `store`, talking to Microsoft through `client`, on the system clock.
pub fn engine(store: Arc<Store>, client: AzureClient, options: FeedOptions) -> Engine {
    engine_with_clock(store, client, options, feeds::system_clock())
}

/// The engine on another clock (the demo runs on the emulator's, which it moves forward).
pub fn engine_with_clock(
    store: Arc<Store>,
    client: AzureClient,
    options: FeedOptions,
    clock: feeds::Clock,
) -> Engine {
    let counted = client.clone();
    let totals = Arc::new(move || {
        let c = counted.counters();
        ApiTotals {
            graph_requests: c.graph.requests,
            graph_resource_units: c.graph.resource_units,
            arm_requests: c.arm.requests,
        }
    });
    Engine::new(store, Arc::new(client), options, totals, clock)
}
