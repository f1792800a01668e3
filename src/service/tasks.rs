//! What each task type is answered with: an [`Outcome`] that `FinishTask` reports.
//!
//! - `sync_full`: a full `.c1z` from the store ([`super::SnapshotRequest`]), uploaded.
//!   `skip_expand_grants` is honoured; targeted resources and `skip_entitlements_and_grants`
//!   are answered `UNIMPLEMENTED`, since the store exports whole snapshots.
//! - `event_feed`: one page of the store's change log as baton events (`crate::events`),
//!   in a `c1.connector.v2.ListEventsResponse`.
//! - `grant`, `revoke`: `crate::provision::Provisioner`'s `grant` and `revoke`, the code the
//!   one-shots call, run on the worker between rounds ([`BetweenRounds::Run`]) since a write
//!   is recorded in the store at once. A grant task's entitlement id and principal (resource
//!   type and id of its `Resource`) name the access; a revoke task's grant id does. Success
//!   answers baton-sdk's own responses (`c1.connector.v2.GrantManagerServiceGrantResponse`,
//!   with the grant made and the annotations, and `GrantManagerServiceRevokeResponse`; the
//!   SDK sends them in `pkg/tasks/c1api/grant.go` and `revoke.go`); errors map to a status
//!   ([`provision_failure`]).
//! - `hello`: a `Hello` naming the task.
//! - anything else: `UNIMPLEMENTED`, not retryable.

use std::future::Future;
use std::sync::Arc;

use prost::Message;
use prost_types::Any;
use tokio::sync::oneshot;
use tonic::Code;

use super::proto::{EventFeedTask, GrantTask, RevokeTask, SyncFullTask, Task, TaskType};
use super::{BetweenRounds, Service, SnapshotRequest, WorkerHandles};
use crate::c1z::writer::ExportOptions;
use crate::events::{self, StartAt};
use crate::model::proto::{
    self as model, GrantManagerServiceGrantResponse, GrantManagerServiceRevokeResponse,
};
use crate::provision::{PrincipalRef, ProvisionError};
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
        Some(TaskType::Grant(request)) => grant(worker, request).await,
        Some(TaskType::Revoke(request)) => revoke(worker, request).await,
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

/// Runs `work` on the worker between rounds and waits for its answer; `None` when the worker
/// is stopping.
async fn between_rounds<T: Send + 'static>(
    worker: &WorkerHandles,
    work: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    let job = async move {
        // A task cancelled while it waited for a round writes nothing.
        if reply.is_closed() {
            return;
        }
        let _ = reply.send(work.await);
    };
    worker
        .between_rounds
        .send(BetweenRounds::Run(Box::pin(job)))
        .await
        .ok()?;
    answer.await.ok()
}

fn stopping() -> Outcome {
    Outcome::failed(Code::Unavailable, "the worker is stopping", false)
}

/// The entitlement id and principal a grant task names. Missing parts stay empty: the
/// provisioner refuses them (after refusing everything when provisioning is off).
fn grant_request(request: &GrantTask) -> (String, PrincipalRef) {
    let entitlement_id = request
        .entitlement
        .as_ref()
        .map(|e| e.id.clone())
        .unwrap_or_default();
    let id = request.principal.as_ref().and_then(|p| p.id.as_ref());
    let principal = PrincipalRef {
        resource_type: id.map(|id| id.resource_type.clone()).unwrap_or_default(),
        id: id.map(|id| id.resource.clone()).unwrap_or_default(),
    };
    (entitlement_id, principal)
}

async fn grant(worker: &WorkerHandles, request: &GrantTask) -> Outcome {
    let (entitlement_id, principal) = grant_request(request);
    let grant_id = format!(
        "{entitlement_id}:{}:{}",
        principal.resource_type, principal.id
    );
    let what = format!(
        "grant of {entitlement_id:?} to {:?}",
        format!("{}:{}", principal.resource_type, principal.id)
    );
    let provisioner = worker.provisioner.clone();
    let done = between_rounds(worker, async move {
        provisioner.grant(&entitlement_id, &principal).await
    })
    .await;
    match done {
        None => stopping(),
        Some(Err(error)) => provision_failure(&what, &error),
        Some(Ok(outcome)) => {
            tracing::info!(grant = %grant_id, ?outcome, "grant task done");
            let grant = model::Grant {
                id: grant_id,
                entitlement: request.entitlement.clone(),
                principal: request.principal.clone(),
                ..model::Grant::default()
            };
            let response = GrantManagerServiceGrantResponse {
                annotations: outcome.annotations(),
                grants: vec![grant],
            };
            Outcome::Success {
                response: Some(model::any(&response)),
            }
        }
    }
}

/// The grant id a revoke task names: the grant's id, else `<entitlement id>:<principal type>:
/// <principal id>` from its parts (what baton ids grants by, DATA_MODEL.md).
fn revoke_request(request: &RevokeTask) -> String {
    let Some(grant) = &request.grant else {
        return String::new();
    };
    if !grant.id.is_empty() {
        return grant.id.clone();
    }
    match (
        grant.entitlement.as_ref().map(|e| e.id.as_str()),
        grant.principal.as_ref().and_then(|p| p.id.as_ref()),
    ) {
        (Some(entitlement), Some(principal)) => format!(
            "{entitlement}:{}:{}",
            principal.resource_type, principal.resource
        ),
        _ => String::new(),
    }
}

async fn revoke(worker: &WorkerHandles, request: &RevokeTask) -> Outcome {
    let grant_id = revoke_request(request);
    let what = format!("revoke of grant {grant_id:?}");
    let provisioner = worker.provisioner.clone();
    let id = grant_id.clone();
    let done = between_rounds(worker, async move { provisioner.revoke(&id).await }).await;
    match done {
        None => stopping(),
        Some(Err(error)) => provision_failure(&what, &error),
        Some(Ok(outcome)) => {
            tracing::info!(grant = %grant_id, ?outcome, "revoke task done");
            let response = GrantManagerServiceRevokeResponse {
                annotations: outcome.annotations(),
            };
            Outcome::Success {
                response: Some(model::any(&response)),
            }
        }
    }
}

/// A provisioning error as a task status. What the request itself got wrong, and what the
/// tenant or the configuration refuses, is not retried; what may pass later is. `what` names
/// the entitlement and principal; the errors carry ids and Microsoft's answers, never a secret.
fn provision_failure(what: &str, error: &ProvisionError) -> Outcome {
    let (code, non_retryable) = match error {
        ProvisionError::Disabled => (Code::FailedPrecondition, true),
        ProvisionError::UnknownId(_) => (Code::InvalidArgument, true),
        ProvisionError::NotProvisionable { .. } | ProvisionError::Refused(_) => {
            (Code::FailedPrecondition, true)
        }
        ProvisionError::Forbidden(_) => (Code::PermissionDenied, true),
        ProvisionError::LicenseRequired(_) => (Code::FailedPrecondition, true),
        ProvisionError::Failed(_) => (Code::Unavailable, false),
        ProvisionError::NotRecorded { .. } | ProvisionError::Store(_) => (Code::Internal, false),
    };
    Outcome::failed(code, format!("{what}: {error}"), non_retryable)
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
    if worker
        .between_rounds
        .send(BetweenRounds::Snapshot(request))
        .await
        .is_err()
    {
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
