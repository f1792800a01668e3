//! The long-running worker (`run`): a first round at once (a baseline on a fresh or reset
//! store), then rounds on the configured cron schedules, an export after every round that
//! changed something, `/healthz`, `/readyz` and `/metrics`, and a graceful stop on SIGTERM or
//! SIGINT that lets the page being committed finish.
//!
//! In ConductorOne service mode (`crate::service`) the task loop runs beside the rounds. What
//! its tasks need of the store (the snapshots of full-sync tasks, the writes of grant and
//! revoke tasks) is run by this loop, between rounds ([`BetweenRounds`]), so a task that
//! arrives during a round waits for it and never overlaps one. `/readyz` then also needs
//! ConductorOne to answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};

use super::commands::{export_after_round, log_round};
use super::engine::{Engine, RoundKind};
use super::metrics::Metrics;
use super::{export, history, setup};
use crate::azure::AzureClient;
use crate::config::Config;
use crate::provision::Provisioner;
use crate::service::{BetweenRounds, Service, Snapshot, SnapshotRequest, WorkerHandles};
use crate::store::{Store, StoreUse};

/// What a schedule asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tick {
    Round(RoundKind),
    /// A full re-read of every feed; what it changes is drift the incremental rounds missed.
    Reconcile,
}

#[derive(Clone)]
struct Health {
    ready: Arc<AtomicBool>,
    /// In service mode: ConductorOne answers.
    connected: Option<Arc<AtomicBool>>,
    metrics: Arc<Metrics>,
}

pub async fn run(config: &Config) -> anyhow::Result<()> {
    // Bad service-mode credentials end the process before any work starts.
    let service = match &config.service {
        Some(settings) => Some(Service::new(config, settings)?),
        None => None,
    };
    let client = setup::connect(config).await?;
    let store = Arc::new(setup::open_store(
        &config.state_dir,
        setup::projection_options(config),
        StoreUse::Rounds,
    )?);
    if config.reset {
        store.reset()?;
        tracing::info!("reset: every feed re-reads Microsoft from scratch in the first round");
    }
    let engine = Arc::new(setup::engine(
        store.clone(),
        client.clone(),
        setup::feed_options(config),
    ));
    let health = Health {
        ready: Arc::new(AtomicBool::new(false)),
        connected: service.as_ref().map(|_| Arc::new(AtomicBool::new(false))),
        metrics: Arc::new(Metrics::new()),
    };
    if let Some(address) = config.listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address} for /healthz, /readyz, /metrics"))?;
        tracing::info!(%address, "serving /healthz, /readyz and /metrics");
        let app = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(health.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "the health and metrics server stopped");
            }
        });
    }

    let (ticks, mut next_tick) = mpsc::channel::<Tick>(4);
    let mut scheduler = JobScheduler::new()
        .await
        .context("starting the scheduler")?;
    for (schedule, tick) in [
        (&config.schedules.delta, Tick::Round(RoundKind::Changes)),
        (&config.schedules.poll, Tick::Round(RoundKind::Poll)),
        (&config.schedules.reconcile, Tick::Reconcile),
    ] {
        let sender = ticks.clone();
        let job = Job::new_async(schedule.as_str(), move |_, _| {
            let sender = sender.clone();
            // A tick that finds the queue full is dropped: a round is already due.
            Box::pin(async move {
                let _ = sender.try_send(tick);
            })
        })
        .with_context(|| format!("scheduling '{}'", schedule.as_str()))?;
        scheduler.add(job).await.context("adding a scheduled job")?;
    }
    scheduler.start().await.context("starting the scheduler")?;
    // The first round runs at once: a baseline on a new store, or a catch-up after downtime.
    let _ = ticks.try_send(Tick::Round(RoundKind::Poll));

    let (between_rounds, mut next_between) = mpsc::channel::<BetweenRounds>(1);
    let (service_failed, failure) = tokio::sync::watch::channel(None::<String>);
    if let (Some(service), Some(connected)) = (service, &health.connected) {
        let handles = WorkerHandles {
            store: store.clone(),
            between_rounds,
            provisioner: Provisioner::new(
                client.clone(),
                store.clone(),
                config.options.provisioning,
            ),
            connected: connected.clone(),
        };
        tokio::spawn(async move {
            if let Err(error) = service.serve(handles).await {
                let _ = service_failed.send(Some(format!("{error:#}")));
            }
        });
    }
    let stop = stop_signal(failure.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(work) = next_between.recv() => match work {
                BetweenRounds::Snapshot(request) => {
                    answer_snapshot(config, &engine, &store, &client, &health, request).await;
                }
                BetweenRounds::Run(work) => work.await,
            },
            Some(tick) = next_tick.recv() => {
                let round = run_tick(config, &engine, &store, &client, &health, tick);
                tokio::pin!(round);
                tokio::select! {
                    result = &mut round => {
                        if let Err(error) = result {
                            tracing::error!(error = %format!("{error:#}"), "round failed; the next scheduled round retries");
                        }
                    }
                    _ = &mut stop => {
                        tracing::info!("stopping: finishing the page being committed");
                        engine.request_stop();
                        if let Err(error) = round.await {
                            tracing::error!(error = %format!("{error:#}"), "round failed while stopping");
                        }
                        break;
                    }
                }
            }
        }
    }
    let _ = scheduler.shutdown().await;
    store.flush()?;
    if let Some(message) = failure.borrow().clone() {
        anyhow::bail!("{message}");
    }
    tracing::info!("stopped");
    Ok(())
}

/// A service-mode snapshot: a round of changes (a baseline if the store is empty or reset),
/// then a full export to the task's file. A request whose task was cancelled meanwhile is
/// dropped unanswered.
async fn answer_snapshot(
    config: &Config,
    engine: &Engine,
    store: &Store,
    client: &AzureClient,
    health: &Health,
    request: SnapshotRequest,
) {
    if request.reply.is_closed() {
        return;
    }
    let result = async {
        let round = engine.round(RoundKind::Changes).await?;
        log_round(&round);
        history::record_round(&config.state_dir, &round)?;
        health
            .metrics
            .observe_round("task", &round, &client.counters());
        if request.reply.is_closed() {
            anyhow::bail!("the task was cancelled during the round");
        }
        let export = export::full(store, &request.path, request.options)?;
        health.metrics.observe_export();
        if round.failed.is_empty() {
            health.ready.store(true, Ordering::SeqCst);
        }
        Ok(Snapshot { round, export })
    }
    .await;
    let _ = request.reply.send(result);
}

async fn run_tick(
    config: &Config,
    engine: &Engine,
    store: &Arc<Store>,
    client: &AzureClient,
    health: &Health,
    tick: Tick,
) -> anyhow::Result<()> {
    let (kind, label) = match tick {
        Tick::Round(RoundKind::Changes) => (RoundKind::Changes, "changes"),
        Tick::Round(RoundKind::Poll) => (RoundKind::Poll, "poll"),
        Tick::Reconcile => {
            store.blocking(|store| store.reset()).await?;
            (RoundKind::Poll, "reconcile")
        }
    };
    let report = engine.round(kind).await?;
    log_round(&report);
    history::record_round(&config.state_dir, &report)?;
    health
        .metrics
        .observe_round(label, &report, &client.counters());
    let status = store.blocking(|store| store.status()).await?;
    health.metrics.observe_store(&status);
    if tick == Tick::Reconcile {
        // The worker exports after its first round, so a reconciliation's changes are tracked.
        let drift = report.records_changed.unwrap_or(0);
        health.metrics.observe_drift(drift);
        if drift > 0 {
            tracing::warn!(
                records = drift,
                "reconciliation found drift: the full re-read changed records the incremental rounds had not; it is repaired"
            );
        }
    }
    // Off the runtime's workers: an export takes tens of seconds at 100,000 users, and
    // `/healthz`, `/readyz` and the scheduler must keep answering meanwhile.
    if report.changed_records() || !health.ready.load(Ordering::SeqCst) {
        let config = config.clone();
        store
            .blocking(move |store| export_after_round(&config, store, false))
            .await?;
        health.metrics.observe_export();
    }
    if report.failed.is_empty() && !engine.is_stopping() {
        health.ready.store(true, Ordering::SeqCst);
    }
    Ok(())
}

async fn readyz(State(health): State<Health>) -> (StatusCode, &'static str) {
    if !health.ready.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the first round has not finished",
        );
    }
    match &health.connected {
        Some(connected) if !connected.load(Ordering::SeqCst) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "ConductorOne does not answer (service mode retries with backoff)",
        ),
        _ => (StatusCode::OK, "ready"),
    }
}

/// Resolves on a shutdown signal, or when service mode failed for good.
async fn stop_signal(mut failure: tokio::sync::watch::Receiver<Option<String>>) {
    let failed = async {
        // Without service mode the sender is gone at once: that is no failure.
        if failure.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = failed => {}
    }
}

async fn metrics(State(health): State<Health>) -> String {
    health.metrics.encode()
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what Kubernetes sends).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the worker");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
