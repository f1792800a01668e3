//! Service mode's full-sync task, end to end, on a tenant the worker already follows.
//!
//! `cargo bench --bench service -- [--users 100000]`: starts the emulator (quota model on) and
//! the fake ConductorOne of the tests (`tests/service_support`), runs the worker in service
//! mode until a first full-sync task has made its baseline, then times a second full-sync task
//! from the moment it is queued to its `FinishTask`, and prints: seconds, API calls to
//! Microsoft, bytes uploaded, and the process's peak resident memory during the task (the
//! emulator and the fake run in this process too, so the worker's own peak is lower).
//! Numbers are printed, never asserted.

#[path = "../tests/service_support/mod.rs"]
mod service_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use baton_azure_delta::cli;
use baton_azure_delta::config::{Config, Needs, Settings};
use baton_azure_delta::service::proto::{FinalState, SyncFullTask, TaskType};
use emulator::{Emulator, EmulatorConfig, TenantSpec};
use service_support::{FakeConductorOne, client_secret, task, task_id};

const SEED: [u8; 32] = [5; 32];

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let users = args
        .iter()
        .position(|a| a == "--users")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse())
        .transpose()
        .context("--users N")?
        .unwrap_or(100_000);
    let dir = tempfile::tempdir()?;
    let mut emulator_config =
        EmulatorConfig::new(TenantSpec::with_users(users), dir.path().join("emulator"));
    emulator_config.quotas = true;
    let emulator = Emulator::start(emulator_config).await?;
    let c1 = FakeConductorOne::start(SEED).await;
    let config = config_for(&emulator, &c1, dir.path())?;
    let worker = tokio::spawn(async move { baton_azure_delta::sync::worker::run(&config).await });

    let started = Instant::now();
    c1.state
        .push_task(task(1, TaskType::SyncFull(SyncFullTask::default())));
    let first = c1
        .state
        .wait_finished(&task_id(1), Duration::from_secs(3600))
        .await;
    anyhow::ensure!(
        matches!(first.request.final_state, Some(FinalState::Success(_))),
        "the first full-sync task failed: {first:?}"
    );
    let baseline_s = started.elapsed().as_secs_f64();

    let control = emulator.control();
    control.reset_counts();
    let attempts_before = c1.state.upload_attempts.load(Ordering::SeqCst);
    reset_peak();
    let queued = Instant::now();
    c1.state
        .push_task(task(2, TaskType::SyncFull(SyncFullTask::default())));
    let second = c1
        .state
        .wait_finished(&task_id(2), Duration::from_secs(3600))
        .await;
    let seconds = second.at.duration_since(queued).as_secs_f64();
    anyhow::ensure!(
        matches!(second.request.final_state, Some(FinalState::Success(_))),
        "the second full-sync task failed: {second:?}"
    );
    let counts = control.request_counts();
    let api = |name: &str| counts.by_api.get(name).copied().unwrap_or(0);
    let uploaded = c1
        .state
        .uploads
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .get(&task_id(2))
        .map(|u| u.bytes.len())
        .unwrap_or(0);
    println!("### Service mode: a full-sync task on a followed tenant ({users} users)\n");
    println!("First task (the baseline, then the same export): {baseline_s:.1} s.\n");
    println!(
        "| GetTask to FinishTask s | calls to Microsoft (Graph + ARM) | token calls | bytes uploaded | upload attempts | peak MB (whole process) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {seconds:.1} | {} ({} + {}) | {} | {uploaded} | {} | {} |",
        api("graph") + api("arm"),
        api("graph"),
        api("arm"),
        api("token"),
        c1.state.upload_attempts.load(Ordering::SeqCst) - attempts_before,
        peak_mb()
    );
    worker.abort();
    Ok(())
}

fn config_for(emulator: &Emulator, c1: &FakeConductorOne, dir: &std::path::Path) -> Result<Config> {
    let bundle = dir.join("ca.pem");
    std::fs::write(&bundle, format!("{}{}", emulator.ca_cert_pem(), c1.ca_pem))?;
    let mut argv = vec!["baton-azure-delta".to_string()];
    argv.extend(
        emulator
            .worker_args()
            .into_iter()
            .filter(|a| !a.starts_with("--ca-cert")),
    );
    argv.extend([
        format!("--ca-cert={}", bundle.display()),
        format!("--state-dir={}", dir.join("state").display()),
        format!("--file={}", dir.join("sync.c1z").display()),
        "--listen=off".to_string(),
        format!("--client-id={}", service_support::CLIENT_ID),
        format!("--client-secret={}", client_secret(SEED)),
        format!("--c1-api-host={}", c1.api_host()),
        // The schedules stay out of the measurement.
        "--delta-schedule=0 0 0 1 1 * 2099".to_string(),
        "--poll-schedule=0 0 0 1 1 * 2099".to_string(),
        "--reconcile-schedule=0 0 0 1 1 * 2099".to_string(),
        "run".to_string(),
    ]);
    let matches = cli::command().try_get_matches_from(argv)?;
    let settings = Settings::load(&matches, None)?;
    Ok(Config::from_settings(
        &settings,
        Needs { credential: true },
    )?)
}

fn peak_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

/// Resets the peak resident size (VmHWM) to the current one (Linux 4.0+).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
