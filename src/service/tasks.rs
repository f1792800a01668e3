//! What each task type is answered with: an [`Outcome`] that `FinishTask` reports.
//!
//! - `sync_full`: a full `.c1z` from the store ([`super::SnapshotRequest`]), uploaded.
//!   `skip_expand_grants` is honoured; targeted resources and `skip_entitlements_and_grants`
//!   are answered `UNIMPLEMENTED`, since the store exports whole snapshots.
//! - `event_feed`: one page of the store's change log as baton events (`crate::events`),
//!   in a `c1.connector.v2.ListEventsResponse`.
//! - `grant`, `revoke`: [`provision_task`].
//! - `hello`: a `Hello` naming the task.
//! - anything else: `UNIMPLEMENTED`, not retryable.

use std::sync::Arc;

use prost::Message;
use prost_types::Any;
use tokio::sync::oneshot;
use tonic::Code;

use super::proto::{EventFeedTask, SyncFullTask, Task, TaskType};
use super::{Service, SnapshotRequest, WorkerHandles};
use crate::c1z::writer::ExportOptions;
use crate::events::{self, StartAt};
use crate::store::Store;

/// How a task ended.
#[derive(Debug)]
pub enum Outcome {
    Success {
        response: Option<Any>,
    },
    Failure {
        code: Code,
        message: String,
        non_retryable: bool,
    },
}

impl Outcome {
    fn failed(code: Code, message: impl Into<String>, non_retryable: bool) -> Outcome {
        Outcome::Failure {
            code,
            message: message.into(),
            non_retryable,
        }
    }

    /// An error of our own (store, file, upload): worth retrying.
    fn from_error(context: &str, error: anyhow::Error) -> Outcome {
        Outcome::failed(Code::Internal, format!("{context}: {error:#}"), false)
    }
}

pub async fn handle(service: &Service, worker: &WorkerHandles, task: &Task) -> Outcome {
    match &task.task_type {
        Some(TaskType::SyncFull(options)) => full_sync(service, worker, &task.id, options).await,
        Some(TaskType::EventFeed(request)) => event_feed(worker.store.clone(), request).await,
        Some(TaskType::Grant(_)) => provision_task("grant"),
        Some(TaskType::Revoke(_)) => provision_task("revoke"),
        Some(TaskType::Hello(_)) => {
            let hello = super::session::hello_request(&task.id);
            match service.client.hello(hello).await {
                Ok(()) => Outcome::Success { response: None },
                Err(error) => Outcome::failed(Code::Unavailable, error.to_string(), false),
            }
        }
        Some(other) => unimplemented(other.name()),
        None => unimplemented("of a type this connector does not know"),
    }
}

/// Grant and revoke tasks. Provisioning lives in `src/provision/` (issue #13); until it is
/// wired in here, they are refused with a clear, non-retryable status.
pub fn provision_task(kind: &str) -> Outcome {
    Outcome::failed(
        Code::FailedPrecondition,
        format!(
            "{kind} tasks need provisioning, which this build of baton-azure-delta does not provide yet"
        ),
        true,
    )
}

fn unimplemented(kind: &str) -> Outcome {
    Outcome::failed(
        Code::Unimplemented,
        format!("task {kind} is not implemented by baton-azure-delta"),
        true,
    )
}

async fn full_sync(
    service: &Service,
    worker: &WorkerHandles,
    task_id: &str,
    options: &SyncFullTask,
) -> Outcome {
    if !options.targeted_sync_resources.is_empty() {
        return Outcome::failed(
            Code::Unimplemented,
            "targeted sync (targeted_sync_resources) is not implemented: this connector exports \
             whole snapshots from its store; send a full sync",
            true,
        );
    }
    if options.skip_entitlements_and_grants {
        return Outcome::failed(
            Code::Unimplemented,
            "skip_entitlements_and_grants is not implemented: this connector exports whole \
             snapshots from its store; send a full sync without it",
            true,
        );
    }
    let dir = service.state_dir.join("service");
    if let Err(error) = tokio::fs::create_dir_all(&dir).await {
        return Outcome::from_error(&format!("creating {}", dir.display()), error.into());
    }
    // Task ids are 27 alphanumerics (baton.proto); anything else never reaches the path.
    let name: String = task_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let path = dir.join(format!("task-{name}.c1z"));
    let (reply, answer) = oneshot::channel();
    let request = SnapshotRequest {
        path: path.clone(),
        options: ExportOptions {
            skip_expand_grants: service.skip_expand_grants || options.skip_expand_grants,
        },
        reply,
    };
    if worker.snapshots.send(request).await.is_err() {
        return Outcome::failed(Code::Unavailable, "the worker is stopping", false);
    }
    let snapshot = match answer.await {
        Ok(Ok(snapshot)) => snapshot,
        Ok(Err(error)) => return Outcome::from_error("writing the snapshot", error),
        Err(_) => return Outcome::failed(Code::Unavailable, "the worker is stopping", false),
    };
    tracing::info!(
        task = task_id,
        api_requests = snapshot.round.api_requests,
        bytes = snapshot.export.file_size,
        "full-sync task: snapshot written; uploading"
    );
    let uploaded = service.client.upload(task_id, &path).await;
    if let Err(error) = tokio::fs::remove_file(&path).await {
        tracing::warn!(path = %path.display(), %error, "cannot remove the uploaded snapshot");
    }
    match uploaded {
        Ok(bytes) => {
            tracing::info!(task = task_id, bytes, "full-sync task: uploaded");
            Outcome::Success { response: None }
        }
        Err(error) => Outcome::from_error("uploading the snapshot", error),
    }
}

async fn event_feed(store: Arc<Store>, request: &EventFeedTask) -> Outcome {
    let start = match &request.start_at {
        Some(at) => match time::OffsetDateTime::from_unix_timestamp(at.seconds) {
            Ok(t) => StartAt::Time(t + time::Duration::nanoseconds(at.nanos.into())),
            Err(_) => {
                return Outcome::failed(
                    Code::InvalidArgument,
                    format!("start_at {}s is not a time", at.seconds),
                    true,
                );
            }
        },
        None => StartAt::Oldest,
    };
    let page = tokio::task::spawn_blocking(move || {
        events::list_events(&store, &start, events::DEFAULT_PAGE_SIZE)
    })
    .await;
    match page {
        Ok(Ok(page)) => Outcome::Success {
            response: Some(Any {
                type_url: "type.googleapis.com/c1.connector.v2.ListEventsResponse".to_string(),
                value: page.encode_to_vec(),
            }),
        },
        Ok(Err(error)) => Outcome::from_error("reading the change log", error),
        Err(error) => Outcome::from_error("reading the change log", error.into()),
    }
}
