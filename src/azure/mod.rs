//! Talking to Microsoft: the token provider (`azure_identity`), one HTTP pipeline for Graph and
//! ARM (bounded concurrency, retries with jittered backoff, `Retry-After`, a per-API request
//! budget, request and resource-unit counters), Graph paging, delta and `$batch`, and ARM paging.
//!
//! [`AzureClient`] is the whole surface the feeds and the engine use. Submodules:
//! `config` (endpoints, credential, limits), `auth` (tokens), `pipeline` (send + retry),
//! `budget` (token bucket and throttle gate), `response` (status and error-body classification),
//! `counters`, `graph`, `arm`, `write` (provisioning writes), `secret`, `error`.

mod arm;
mod auth;
mod budget;
mod config;
mod counters;
pub mod error;
mod graph;
mod pipeline;
mod response;
mod secret;
mod write;

use std::fmt;
use std::sync::Arc;

pub use config::{ClientConfig, Credential, Endpoints, RetryPolicy};
pub use counters::{Api, ApiCounters, Counters};
pub use error::{ApiError, BatchRequest, BatchResponse};
pub use graph::MAX_BATCH_REQUESTS;
pub use secret::Secret;
pub use write::{WriteError, Written};

/// The client for Graph and ARM. Cheap to clone: clones share the pipeline, tokens, budgets
/// and counters.
#[derive(Clone)]
pub struct AzureClient {
    pipeline: Arc<pipeline::Pipeline>,
}

impl AzureClient {
    /// Builds the HTTP client (with `extra_ca_pem`), the credential and the per-API budgets.
    /// Makes no network call; see [`AzureClient::check_credentials`].
    pub async fn new(config: ClientConfig) -> Result<AzureClient, ApiError> {
        Ok(AzureClient {
            pipeline: Arc::new(pipeline::Pipeline::new(&config)?),
        })
    }

    /// Fetches a token for Graph and ARM once: a wrong secret or tenant fails here, clearly,
    /// before any sync work starts.
    pub async fn check_credentials(&self) -> Result<(), ApiError> {
        self.pipeline.check_credentials().await
    }

    /// The root URL of `api` (Graph or ARM) this client talks to.
    pub fn endpoint(&self, api: Api) -> &url::Url {
        self.pipeline.base(api)
    }

    /// Requests, statuses, retries, throttling and Graph resource units so far.
    pub fn counters(&self) -> Counters {
        self.pipeline.counters()
    }

    /// Writes the counters to the log at info level (e.g. after each sync round).
    pub fn log_counters(&self) {
        let counters = self.counters();
        tracing::info!(graph_requests = counters.graph.requests, graph_resource_units = counters.graph.resource_units,
            arm_requests = counters.arm.requests, summary = %counters, "azure request counters");
    }
}

/// Shows where the client points; never tokens or secrets.
impl fmt::Debug for AzureClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureClient")
            .field("graph", &self.pipeline.base(Api::Graph).as_str())
            .field("arm", &self.pipeline.base(Api::Arm).as_str())
            .finish_non_exhaustive()
    }
}
