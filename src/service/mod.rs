//! ConductorOne service mode: with `--client-id` and `--client-secret` the worker also runs as
//! a self-hosted ConductorOne connector, as baton-sdk connectors do (`pkg/tasks/c1api` in
//! conductorone/baton-sdk). It says `Hello`, polls `GetTask` at the pace the server returns,
//! heartbeats while a task runs (and stops it when the server cancels it), and ends every task
//! with `FinishTask`.
//!
//! A full-sync task is answered from the store: the worker runs a round of changes (a baseline
//! only when the store is empty or reset) and writes a full `.c1z`, between its scheduled
//! rounds and never during one ([`SnapshotRequest`]); the file is uploaded with `UploadAsset`.
//! Grant and revoke tasks call the same `crate::provision::Provisioner` as the one-shots; the
//! store write that follows a granted or revoked access also runs between rounds. Both go
//! through the one queue the worker takes work from between rounds, [`BetweenRounds`].
//!
//! | file | job |
//! |---|---|
//! | `credentials.rs` | the client id and secret, the signed client assertion |
//! | `token.rs` | access tokens from ConductorOne's token endpoint, cached and refreshed |
//! | `client.rs` | the gRPC `BatonService` client, the chunked upload |
//! | `proto.rs` | the `c1.connectorapi.baton.v1` messages |
//! | `tasks.rs` | what each task type is answered with |
//! | `session.rs` | the loop: hello, poll, heartbeat, finish; backoff when ConductorOne is away |

mod client;
mod credentials;
pub mod proto;
mod session;
mod tasks;
mod token;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};

pub use client::{BatonClient, UPLOAD_ATTEMPTS, UPLOAD_CHUNK_BYTES};
pub use credentials::{ClientCredentials, CredentialError};

use crate::c1z::writer::{ExportOptions, ExportSummary};
use crate::config::{Config, ServiceSettings};
use crate::provision::Provisioner;
use crate::store::Store;
use crate::sync::engine::RoundReport;

/// A full snapshot the task loop asks the worker for. The worker answers it between rounds:
/// a round of changes, then a full export to `path`.
pub struct SnapshotRequest {
    pub path: PathBuf,
    pub options: ExportOptions,
    pub reply: oneshot::Sender<anyhow::Result<Snapshot>>,
}

/// Work the task loop hands the worker. The worker takes it from one queue beside its
/// scheduled ticks, one item at a time, so it runs between rounds and never during one: work
/// that arrives during a round waits for the round's end.
pub enum BetweenRounds {
    /// A round of changes, then a full export.
    Snapshot(SnapshotRequest),
    /// Work that needs nothing of the worker but its turn (a grant or a revoke, which write the
    /// store): awaited as it is. It answers its task through a channel of its own, and should
    /// do nothing when that channel's receiver is gone (the task was cancelled meanwhile).
    Run(Pin<Box<dyn Future<Output = ()> + Send>>),
}

/// What answering a [`SnapshotRequest`] did.
pub struct Snapshot {
    pub round: RoundReport,
    pub export: ExportSummary,
}

/// The parts the task loop works with.
pub struct Service {
    client: BatonClient,
    state_dir: PathBuf,
    skip_expand_grants: bool,
}

/// What the worker gives the task loop.
pub struct WorkerHandles {
    pub store: Arc<Store>,
    /// Work the worker runs between its rounds.
    pub between_rounds: mpsc::Sender<BetweenRounds>,
    /// Built from the worker's own client and store; enabled by the `provisioning` setting.
    pub provisioner: Provisioner,
    /// True while ConductorOne answers; `/readyz` reports it.
    pub connected: Arc<AtomicBool>,
}

impl Service {
    /// Parses the credentials and builds the client; makes no network call.
    pub fn new(config: &Config, settings: &ServiceSettings) -> anyhow::Result<Service> {
        let credentials = ClientCredentials::parse(&settings.client_id, &settings.client_secret)?;
        let api_host = settings
            .api_host
            .clone()
            .unwrap_or_else(|| credentials.host().to_string());
        let extra_ca = config.ca_cert.as_ref().map(|c| c.pem.as_slice());
        let mut http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30));
        if let Some(pem) = extra_ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .context("--ca-cert holds no usable PEM certificate")?;
            http = http.tls_certs_merge(certs);
        }
        let http = http
            .build()
            .context("building the HTTP client for ConductorOne")?;
        let tokens = Arc::new(token::TokenSource::new(credentials, &api_host, http));
        let client = BatonClient::new(&api_host, extra_ca, tokens, host_id(settings))?;
        Ok(Service {
            client,
            state_dir: config.state_dir.clone(),
            skip_expand_grants: config.options.skip_expand_grants,
        })
    }

    /// Runs until the process stops; returns only when ConductorOne refuses the credentials.
    pub async fn serve(self, worker: WorkerHandles) -> anyhow::Result<()> {
        session::serve(self, worker).await
    }
}

/// `host-id` (BATON_HOST_ID), else the host name, as baton-sdk's `getHostID`.
fn host_id(settings: &ServiceSettings) -> String {
    settings
        .host_id
        .clone()
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| env!("CARGO_PKG_NAME").to_string())
}
