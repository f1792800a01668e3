//! The task loop: `Hello` until ConductorOne answers, then `GetTask` at the pace it returns
//! (`next_poll`, clamped to 0-5 min), each task run while `Heartbeat` is sent every
//! `next_heartbeat` (1 s-5 min, 30 s when unset) and ended with `FinishTask`. Intervals and
//! limits are baton-sdk's (`pkg/tasks/c1api/manager.go`).
//!
//! ConductorOne away (network, 5xx, `UNAVAILABLE`): the call is retried with exponential
//! backoff (1 s doubling to 1 min) and `/readyz` says not ready until it answers again. The
//! credentials refused: [`serve`] returns the error, which ends the process.

use std::sync::atomic::Ordering;
use std::time::Duration;

use prost_types::Duration as ProtoDuration;
use tonic::Code;

use super::client::CallError;
use super::proto::{self, FinalState, Task, TaskType};
use super::tasks::{self, Outcome};
use super::{Service, WorkerHandles};

const MIN_HEARTBEAT: Duration = Duration::from_secs(1);
const MAX_HEARTBEAT: Duration = Duration::from_secs(300);
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(30);
const MAX_POLL: Duration = Duration::from_secs(300);
/// After a poll without a task that named no pace, so the loop never spins.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// baton-sdk's `taskMaximumHeartbeatFailures`.
const MAX_HEARTBEAT_FAILURES: u32 = 10;
const FINISH_ATTEMPTS: u32 = 5;

struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    fn next(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(Self::MAX);
        wait
    }

    fn reset(&mut self) {
        self.0 = Self::FIRST;
    }
}

pub async fn serve(service: Service, worker: WorkerHandles) -> anyhow::Result<()> {
    let mut backoff = Backoff(Backoff::FIRST);
    loop {
        match service.client.hello(hello_request("")).await {
            Ok(()) => break,
            Err(error) => retry_or_fail(&worker, &mut backoff, "Hello", error).await?,
        }
    }
    tracing::info!(
        host_id = service.client.host_id(),
        "connected to ConductorOne"
    );
    worker.connected.store(true, Ordering::SeqCst);
    backoff.reset();
    loop {
        let response = match service.client.get_task().await {
            Ok(response) => response,
            Err(error) => {
                retry_or_fail(&worker, &mut backoff, "GetTask", error).await?;
                continue;
            }
        };
        if !worker.connected.swap(true, Ordering::SeqCst) {
            tracing::info!("ConductorOne answers again");
        }
        backoff.reset();
        let next_poll = duration(response.next_poll.as_ref()).min(MAX_POLL);
        match response.task {
            Some(task) if !matches!(task.task_type, Some(TaskType::None(_))) => {
                let heartbeat = heartbeat_interval(response.next_heartbeat.as_ref());
                run_task(&service, &worker, task, heartbeat).await;
                tokio::time::sleep(next_poll).await;
            }
            _ => {
                let wait = if next_poll.is_zero() {
                    IDLE_POLL
                } else {
                    next_poll
                };
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn retry_or_fail(
    worker: &WorkerHandles,
    backoff: &mut Backoff,
    call: &str,
    error: CallError,
) -> anyhow::Result<()> {
    if error.is_rejected() {
        return Err(anyhow::Error::new(error).context(format!("ConductorOne {call}")));
    }
    worker.connected.store(false, Ordering::SeqCst);
    let wait = backoff.next();
    tracing::warn!(error = %error, retry_in_s = wait.as_secs(), "ConductorOne {call} failed");
    tokio::time::sleep(wait).await;
    Ok(())
}

/// Runs `task` to its end, heartbeating meanwhile, and reports how it ended.
async fn run_task(service: &Service, worker: &WorkerHandles, task: Task, every: Duration) {
    let kind = task.task_type.as_ref().map_or("unknown", TaskType::name);
    tracing::info!(task = %task.id, kind, "task started");
    let handler = tasks::handle(service, worker, &task);
    tokio::pin!(handler);
    let mut every = every;
    let mut failures = 0;
    let outcome = loop {
        tokio::select! {
            outcome = &mut handler => break outcome,
            _ = tokio::time::sleep(every) => {
                match service.client.heartbeat(&task.id).await {
                    Ok(answer) if answer.cancelled => {
                        tracing::warn!(task = %task.id, "ConductorOne cancelled the task; stopping it");
                        break Outcome::Failure {
                            code: Code::Cancelled,
                            message: "the task was cancelled by ConductorOne".into(),
                            non_retryable: true,
                        };
                    }
                    Ok(answer) => {
                        failures = 0;
                        every = heartbeat_interval(answer.next_heartbeat.as_ref());
                    }
                    Err(error) => {
                        failures += 1;
                        tracing::warn!(task = %task.id, %error, failures, "heartbeat failed");
                        if failures >= MAX_HEARTBEAT_FAILURES {
                            break Outcome::Failure {
                                code: Code::Unavailable,
                                message: "the task lost contact with ConductorOne (heartbeats failed)".into(),
                                non_retryable: false,
                            };
                        }
                    }
                }
            }
        }
    };
    finish(service, &task.id, kind, outcome).await;
}

async fn finish(service: &Service, task_id: &str, kind: &str, outcome: Outcome) {
    let (status, state) = match outcome {
        Outcome::Success { response } => {
            tracing::info!(task = task_id, kind, "task finished");
            (
                None,
                FinalState::Success(proto::FinishSuccess {
                    annotations: Vec::new(),
                    response,
                }),
            )
        }
        Outcome::Failure {
            code,
            message,
            non_retryable,
        } => {
            tracing::warn!(task = task_id, kind, ?code, %message, "task failed");
            (
                Some(proto::RpcStatus {
                    code: code as i32,
                    message,
                    details: Vec::new(),
                }),
                FinalState::Error(proto::FinishError {
                    non_retryable,
                    annotations: Vec::new(),
                    response: None,
                }),
            )
        }
    };
    let mut backoff = Backoff(Backoff::FIRST);
    for attempt in 1..=FINISH_ATTEMPTS {
        match service
            .client
            .finish_task(task_id, status.clone(), state.clone())
            .await
        {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(task = task_id, attempt, %error, "FinishTask failed");
                tokio::time::sleep(backoff.next()).await;
            }
        }
    }
    tracing::error!(
        task = task_id,
        "could not report the task's end to ConductorOne; it will time out there"
    );
}

fn duration(d: Option<&ProtoDuration>) -> Duration {
    match d {
        Some(d) if d.seconds > 0 || (d.seconds == 0 && d.nanos > 0) => {
            Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32)
        }
        _ => Duration::ZERO,
    }
}

fn heartbeat_interval(d: Option<&ProtoDuration>) -> Duration {
    match duration(d) {
        Duration::ZERO => DEFAULT_HEARTBEAT,
        d => d.clamp(MIN_HEARTBEAT, MAX_HEARTBEAT),
    }
}

/// `Hello`: who we are, where we run, what we can do. `task_id` is set when answering a hello task.
pub fn hello_request(task_id: &str) -> proto::HelloRequest {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let os_release = read("/etc/os-release").unwrap_or_default();
    let release_field = |key: &str| {
        os_release.lines().find_map(|line| {
            line.strip_prefix(key)
                .and_then(|v| v.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_string())
        })
    };
    let unknown = || "unknown".to_string();
    proto::HelloRequest {
        host_id: String::new(),
        task_id: task_id.to_string(),
        build_info: Some(proto::BuildInfo {
            lang_version: "rust".to_string(),
            package: env!("CARGO_PKG_NAME").to_string(),
            package_version: env!("CARGO_PKG_VERSION").to_string(),
        }),
        os_info: Some(proto::OsInfo {
            hostname: read("/proc/sys/kernel/hostname").unwrap_or_else(unknown),
            os: std::env::consts::OS.to_string(),
            platform: release_field("ID").unwrap_or_else(unknown),
            platform_version: release_field("VERSION_ID").unwrap_or_else(unknown),
            platform_family: release_field("ID_LIKE")
                .or_else(|| release_field("ID"))
                .unwrap_or_else(unknown),
            kernel_version: read("/proc/sys/kernel/osrelease").unwrap_or_else(unknown),
            kernel_arch: std::env::consts::ARCH.to_string(),
            virtualization_system: unknown(),
        }),
        connector_metadata: Some(crate::cli::capabilities::connector_metadata()),
        annotations: Vec::new(),
    }
}
