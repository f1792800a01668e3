//! ConductorOne service mode end to end: the worker (`run` with `--client-id` and
//! `--client-secret`) against a simulated tenant and a fake ConductorOne
//! (`service_support`), both on loopback with TLS.

mod cli_support;
mod service_support;
mod support;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use baton_azure_delta::model::connector::{EventKind, ListEventsResponse};
use baton_azure_delta::model::proto::{
    Entitlement, Grant, GrantAlreadyExists, GrantAlreadyRevoked, GrantManagerServiceGrantResponse,
    GrantManagerServiceRevokeResponse, Named, Resource, ResourceId, find_annotation,
};
use baton_azure_delta::service::proto::{
    EventFeedTask, FinalState, GrantTask, Opaque, RevokeTask, SyncFullTask, TaskType,
};
use baton_azure_delta::sync::worker;
use emulator::TenantSpec;
use prost::Message;
use service_support::{FakeConductorOne, client_secret, task, task_id};
use support::Harness;
use tonic::Code;

const SEED: [u8; 32] = [42; 32];
const LIMIT: Duration = Duration::from_secs(60);

/// The worker's arguments: the emulator, the fake ConductorOne, both CAs in one bundle.
fn service_args(h: &Harness, c1: &FakeConductorOne, state: &Path, extra: &[&str]) -> Vec<String> {
    let bundle = state.with_extension("ca.pem");
    std::fs::write(
        &bundle,
        format!("{}{}", h.emulator.ca_cert_pem(), c1.ca_pem),
    )
    .unwrap();
    let mut args: Vec<String> = h
        .args(state, &[])
        .into_iter()
        .filter(|a| !a.starts_with("--ca-cert"))
        .collect();
    args.extend([
        format!("--ca-cert={}", bundle.display()),
        format!("--client-id={}", service_support::CLIENT_ID),
        format!("--c1-api-host={}", c1.api_host()),
        "--host-id=test-host".to_string(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn config_of(args: Vec<String>, secret: &str) -> baton_azure_delta::config::Config {
    use baton_azure_delta::config::{Config, Needs, Settings};
    let argv = std::iter::once("baton-azure-delta".to_string())
        .chain(args)
        .chain([format!("--client-secret={secret}"), "run".to_string()]);
    let matches = baton_azure_delta::cli::command()
        .try_get_matches_from(argv)
        .expect("arguments parse");
    let settings = Settings::load(&matches, None).expect("settings load");
    Config::from_settings(&settings, Needs { credential: true }).expect("config validates")
}

/// Starts the worker in service mode; the task is aborted when the test ends.
fn start_worker(
    config: baton_azure_delta::config::Config,
) -> tokio::task::JoinHandle<anyhow::Result<()>> {
    tokio::spawn(async move { worker::run(&config).await })
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !condition() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn error_of(finished: &service_support::Finished) -> (i32, String, bool) {
    let status = finished.request.status.clone().unwrap_or_default();
    match &finished.request.final_state {
        Some(FinalState::Error(e)) => (status.code, status.message, e.non_retryable),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sync_task_is_answered_from_the_store_and_uploaded() {
    let h = Harness::start(TenantSpec::with_users(40)).await;
    let c1 = FakeConductorOne::start(SEED).await;
    let state = h.dir.path().join("state");
    let config = config_of(service_args(&h, &c1, &state, &[]), &client_secret(SEED));
    let worker = start_worker(config);

    // Hello: host id, build and OS info, the connector's metadata.
    wait_for("hello", || !c1.state.hellos.lock().unwrap().is_empty()).await;
    let hello = c1.state.hellos.lock().unwrap()[0].clone();
    assert_eq!(hello.host_id, "test-host");
    assert_eq!(hello.build_info.unwrap().package, "baton-azure-delta");
    assert!(!hello.os_info.unwrap().os.is_empty());
    let metadata = hello.connector_metadata.unwrap();
    assert!(!metadata.display_name.is_empty());
    assert!(
        !metadata
            .capabilities
            .unwrap()
            .resource_type_capabilities
            .is_empty()
    );

    // The first task waits for the baseline; the second is answered from the store.
    let microsoft_calls = || {
        let calls = h.control().request_counts();
        calls.by_api.get("graph").copied().unwrap_or(0)
            + calls.by_api.get("arm").copied().unwrap_or(0)
    };
    c1.state
        .push_task(task(1, TaskType::SyncFull(SyncFullTask::default())));
    let first = c1.state.wait_finished(&task_id(1), LIMIT).await;
    assert!(
        matches!(first.request.final_state, Some(FinalState::Success(_))),
        "{first:?}"
    );
    let baseline_calls = microsoft_calls();
    h.control().reset_counts();
    c1.state
        .push_task(task(2, TaskType::SyncFull(SyncFullTask::default())));
    let second = c1.state.wait_finished(&task_id(2), LIMIT).await;
    assert!(
        matches!(second.request.final_state, Some(FinalState::Success(_))),
        "{second:?}"
    );
    let task_calls = microsoft_calls();
    assert!(
        task_calls * 3 < baseline_calls,
        "a full-sync task on a followed tenant re-read it: {task_calls} calls, the baseline {baseline_calls}"
    );

    let upload = c1.state.uploads.lock().unwrap()[&task_id(2)].clone();
    assert_eq!(upload.host_id, "test-host");
    assert!(upload.checksum_ok, "sha256 of the whole file");
    assert_eq!(
        upload.chunks,
        upload
            .bytes
            .len()
            .div_ceil(baton_azure_delta::service::UPLOAD_CHUNK_BYTES)
    );
    // The uploaded file is the store's full snapshot: the same rows as the worker's own export
    // after its first round (the tenant has not changed since).
    let file = h.dir.path().join("uploaded.c1z");
    std::fs::write(&file, &upload.bytes).unwrap();
    let uploaded = support::c1z_sync_rows(&file, "full");
    let exported = support::c1z_sync_rows(&state.with_extension("c1z"), "full");
    assert!(uploaded.len() > 100, "{} rows", uploaded.len());
    assert!(
        uploaded == exported,
        "the upload differs from a full export"
    );
    assert!(
        !state
            .join("service")
            .join(format!("task-{}.c1z", task_id(2)))
            .exists()
    );
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_type_gets_its_answer() {
    let h = Harness::start(TenantSpec::with_users(20)).await;
    let c1 = FakeConductorOne::start(SEED).await;
    let state = h.dir.path().join("state");
    let config = config_of(service_args(&h, &c1, &state, &[]), &client_secret(SEED));
    let worker = start_worker(config);
    // A snapshot first, so that the change log runs; then changes for the event feed.
    c1.state
        .push_task(task(1, TaskType::SyncFull(SyncFullTask::default())));
    c1.state.wait_finished(&task_id(1), LIMIT).await;
    let churn = h.control().random_churn(7, 0.3);
    assert!(churn.total() > 0);
    c1.state
        .push_task(task(2, TaskType::SyncFull(SyncFullTask::default())));
    c1.state.wait_finished(&task_id(2), LIMIT).await;

    let tasks = [
        (3, TaskType::Grant(GrantTask::default())),
        (4, TaskType::Revoke(RevokeTask::default())),
        (5, TaskType::EventFeed(EventFeedTask::default())),
        (6, TaskType::Hello(Opaque {})),
        (7, TaskType::CreateAccount(Opaque {})),
        (8, TaskType::CompactSyncs(Opaque {})),
        (
            9,
            TaskType::SyncFull(SyncFullTask {
                targeted_sync_resources: vec![Default::default()],
                ..SyncFullTask::default()
            }),
        ),
    ];
    for (n, t) in tasks {
        c1.state.push_task(task(n, t));
    }
    // A task of a type newer than this connector (no known oneof field).
    let mut unknown = task(10, TaskType::None(Opaque {}));
    unknown.task_type = None;
    c1.state.push_task(unknown);

    for n in [3, 4] {
        let (code, message, non_retryable) =
            error_of(&c1.state.wait_finished(&task_id(n), LIMIT).await);
        assert_eq!(code, Code::FailedPrecondition as i32);
        assert!(message.contains("provisioning"), "{message}");
        assert!(non_retryable);
    }
    let feed = c1.state.wait_finished(&task_id(5), LIMIT).await;
    let Some(FinalState::Success(success)) = feed.request.final_state else {
        panic!("event feed failed: {feed:?}");
    };
    let response = success.response.expect("a response");
    assert_eq!(
        response.type_url,
        "type.googleapis.com/c1.connector.v2.ListEventsResponse"
    );
    let events = ListEventsResponse::decode(response.value.as_slice()).unwrap();
    assert!(!events.events.is_empty(), "the churn's changes are events");
    assert!(!events.cursor.is_empty());
    let mut ids: Vec<u64> = events
        .events
        .iter()
        .map(|e| e.id.parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    ids.dedup();
    assert!(events.events.iter().all(|e| e.occurred_at.is_some()));
    assert!(events.events.iter().any(|e| matches!(
        e.event,
        Some(EventKind::GrantEvent(_)) | Some(EventKind::RevokeEvent(_))
    )));

    let hello = c1.state.wait_finished(&task_id(6), LIMIT).await;
    assert!(matches!(
        hello.request.final_state,
        Some(FinalState::Success(_))
    ));
    assert!(
        c1.state
            .hellos
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.task_id == task_id(6))
    );
    for n in [7, 8, 9, 10] {
        let (code, message, non_retryable) =
            error_of(&c1.state.wait_finished(&task_id(n), LIMIT).await);
        assert_eq!(code, Code::Unimplemented as i32, "task {n}: {message}");
        assert!(non_retryable);
    }
    // The worker is still serving.
    c1.state
        .push_task(task(11, TaskType::EventFeed(EventFeedTask::default())));
    c1.state.wait_finished(&task_id(11), LIMIT).await;
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_task_stops_at_its_next_heartbeat() {
    let h = Harness::start(TenantSpec::with_users(20)).await;
    let c1 = FakeConductorOne::start(SEED).await;
    let state = h.dir.path().join("state");
    let config = config_of(service_args(&h, &c1, &state, &[]), &client_secret(SEED));
    let worker = start_worker(config);
    c1.state
        .push_task(task(1, TaskType::SyncFull(SyncFullTask::default())));
    c1.state.wait_finished(&task_id(1), LIMIT).await;
    // Every Microsoft answer now takes 2 s: the next snapshot's round outlasts a heartbeat.
    h.control().set_faults(emulator::FaultConfig {
        slow_rate: 1.0,
        slow_delay: Duration::from_secs(2),
        ..Default::default()
    });
    c1.state.cancel.lock().unwrap().push(task_id(2));
    c1.state
        .push_task(task(2, TaskType::SyncFull(SyncFullTask::default())));
    let finished = c1.state.wait_finished(&task_id(2), LIMIT).await;
    let (code, _, _) = error_of(&finished);
    assert_eq!(code, Code::Cancelled as i32);
    assert!(c1.state.heartbeats.lock().unwrap().contains(&task_id(2)));
    assert!(!c1.state.uploads.lock().unwrap().contains_key(&task_id(2)));
    h.control().set_faults(Default::default());
    // The worker goes on with the next task.
    c1.state
        .push_task(task(3, TaskType::SyncFull(SyncFullTask::default())));
    let next = c1.state.wait_finished(&task_id(3), LIMIT).await;
    assert!(matches!(
        next.request.final_state,
        Some(FinalState::Success(_))
    ));
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_upload_stream_is_sent_again_and_tokens_are_refreshed() {
    let h = Harness::start(TenantSpec::with_users(20)).await;
    let c1 = FakeConductorOne::start(SEED).await;
    // Tokens live 61 s: the worker refreshes them a minute early, so every second.
    c1.state.token_lifetime.store(61, Ordering::SeqCst);
    c1.state.drop_uploads.store(1, Ordering::SeqCst);
    let state = h.dir.path().join("state");
    let config = config_of(service_args(&h, &c1, &state, &[]), &client_secret(SEED));
    let worker = start_worker(config);
    c1.state
        .push_task(task(1, TaskType::SyncFull(SyncFullTask::default())));
    let finished = c1.state.wait_finished(&task_id(1), LIMIT).await;
    assert!(
        matches!(finished.request.final_state, Some(FinalState::Success(_))),
        "{finished:?}"
    );
    assert_eq!(c1.state.upload_attempts.load(Ordering::SeqCst), 2);
    assert!(c1.state.uploads.lock().unwrap()[&task_id(1)].checksum_ok);

    // A stream that drops on every attempt: the task reports the error, the worker goes on.
    c1.state.drop_uploads.store(
        baton_azure_delta::service::UPLOAD_ATTEMPTS,
        Ordering::SeqCst,
    );
    c1.state
        .push_task(task(2, TaskType::SyncFull(SyncFullTask::default())));
    let (code, message, non_retryable) =
        error_of(&c1.state.wait_finished(&task_id(2), LIMIT).await);
    assert_eq!(code, Code::Internal as i32);
    assert!(message.contains("uploading"), "{message}");
    assert!(!non_retryable, "a failed upload is worth retrying");
    c1.state
        .push_task(task(3, TaskType::SyncFull(SyncFullTask::default())));
    let third = c1.state.wait_finished(&task_id(3), LIMIT).await;
    assert!(matches!(
        third.request.final_state,
        Some(FinalState::Success(_))
    ));

    let issued = c1.state.tokens_issued.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    wait_for("a refreshed token", || {
        c1.state.tokens_issued.load(Ordering::SeqCst) > issued
    })
    .await;
    assert_eq!(c1.state.unauthenticated_calls.load(Ordering::SeqCst), 0);
    assert_eq!(c1.state.rejected_assertions.load(Ordering::SeqCst), 0);
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conductorone_going_away_and_coming_back() {
    let h = Harness::start(TenantSpec::with_users(20)).await;
    let mut c1 = FakeConductorOne::start(SEED).await;
    let state = h.dir.path().join("state");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut args = service_args(&h, &c1, &state, &[]);
    args.retain(|a| !a.starts_with("--listen"));
    args.push(format!("--listen=127.0.0.1:{port}"));
    let config = config_of(args, &client_secret(SEED));
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let status = || async {
        reqwest::get(&readyz)
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    // Away at start: the worker retries and is not ready.
    c1.stop().await;
    let worker = start_worker(config);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(status().await, 503);
    c1.restart().await;
    let start = std::time::Instant::now();
    while status().await != 200 {
        assert!(start.elapsed() < LIMIT, "never ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Away in the middle: not ready again, then back and answering tasks.
    c1.stop().await;
    let start = std::time::Instant::now();
    while status().await != 503 {
        assert!(
            start.elapsed() < LIMIT,
            "still ready while ConductorOne is away"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c1.restart().await;
    c1.state
        .push_task(task(1, TaskType::SyncFull(SyncFullTask::default())));
    let finished = c1.state.wait_finished(&task_id(1), LIMIT).await;
    assert!(matches!(
        finished.request.final_state,
        Some(FinalState::Success(_))
    ));
    assert!(!worker.is_finished());
    worker.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_secret_ends_the_worker_with_one_clear_error() {
    let h = Harness::start(TenantSpec::with_users(10)).await;
    let c1 = FakeConductorOne::start(SEED).await;
    let state = h.dir.path().join("state");
    // Well formed, but not the key ConductorOne knows.
    let wrong = client_secret([1; 32]);
    let config = config_of(service_args(&h, &c1, &state, &[]), &wrong);
    let result = tokio::time::timeout(LIMIT, worker::run(&config))
        .await
        .expect("the worker stops");
    let message = format!("{:#}", result.expect_err("a refused secret is an error"));
    assert!(
        message.contains("refused the connector's credentials"),
        "{message}"
    );
    assert!(
        !message.contains(wrong.rsplit(':').next().unwrap()),
        "{message}"
    );
    assert!(c1.state.rejected_assertions.load(Ordering::SeqCst) > 0);
}

#[test]
fn a_malformed_secret_exits_1_without_printing_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "not:a:secret:at-all-really";
    let out = cli_support::run(
        dir.path(),
        &[
            "run",
            "--azure-tenant-id=72f988bf-86f1-41af-91ab-2d7cd011db47",
            "--azure-client-id=5b3f6c1e-2f4d-4a8e-9c3b-1d2e3f4a5b6c",
            "--listen=off",
        ],
        &[
            ("BATON_AZURE_CLIENT_SECRET", "azure-secret-value"),
            ("BATON_CLIENT_ID", service_support::CLIENT_ID),
            ("BATON_CLIENT_SECRET", secret),
        ],
    );
    assert_eq!(out.code, Some(1), "{}", out.all_output());
    assert!(out.stderr.contains("--client-secret"), "{}", out.stderr);
    assert!(
        !out.all_output().contains("at-all-really"),
        "{}",
        out.all_output()
    );
    assert_eq!(
        out.stderr.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_feed_prints_protojson_lines_and_resumes_at_its_cursor() {
    use baton_azure_delta::sync::engine::RoundKind;
    let h = Harness::start(TenantSpec::with_users(20)).await;
    let state = h.dir.path().join("state");
    {
        let worker = h.worker(&state, &[]).await;
        worker.round(RoundKind::Poll).await;
        baton_azure_delta::sync::export::full(
            &worker.store,
            &h.dir.path().join("base.c1z"),
            Default::default(),
        )
        .unwrap();
        h.control().random_churn(3, 0.3);
        h.control().advance_clock(Duration::from_secs(120));
        worker.round(RoundKind::Changes).await;
        worker.store.flush().unwrap();
    }
    let state_arg = format!("--state-dir={}", state.display());
    let all = cli_support::run(
        h.dir.path(),
        &[
            "--event-feed",
            &state_arg,
            "--event-feed-start-at=2000-01-01T00:00:00Z",
        ],
        &[],
    );
    assert_eq!(all.code, Some(0), "{}", all.all_output());
    let lines: Vec<serde_json::Value> = all
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(!lines.is_empty(), "the churn's changes are printed");
    for line in &lines {
        assert!(
            line["id"].is_string() && line["occurredAt"].is_string(),
            "{line}"
        );
        let kinds = ["grantEvent", "revokeEvent", "resourceChangeEvent"];
        assert_eq!(
            kinds.iter().filter(|k| line.get(**k).is_some()).count(),
            1,
            "{line}"
        );
    }
    // Resuming after the third event prints the rest.
    let third = lines[2]["id"].as_str().unwrap().to_string();
    let cursor_arg = format!("--event-feed-cursor={third}");
    let rest = cli_support::run(
        h.dir.path(),
        &["--event-feed", &state_arg, &cursor_arg],
        &[],
    );
    assert_eq!(rest.code, Some(0), "{}", rest.all_output());
    let rest_ids: Vec<String> = rest
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let expected: Vec<String> = lines[3..]
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rest_ids, expected);
    // By default only the last 24 hours: the emulator's clock is not the wall clock, but the
    // commits were written now, so they are all within it.
    let recent = cli_support::run(h.dir.path(), &["--event-feed", &state_arg], &[]);
    assert_eq!(recent.stdout.lines().count(), lines.len());
}

/// A live user of the tenant in no group, and a cloud security group.
fn free_user_and_group(h: &Harness) -> (uuid::Uuid, uuid::Uuid) {
    h.control().with_tenant(|t| {
        let user = t
            .users
            .values()
            .filter(|u| u.deleted.is_none())
            .find(|u| {
                t.groups
                    .values()
                    .all(|g| !g.members.contains(&u.id) && !g.owners.contains(&u.id))
            })
            .expect("a user in no group")
            .id;
        let group = t
            .groups
            .values()
            .find(|g| g.deleted.is_none() && g.security_enabled && !g.on_premises_sync_enabled)
            .expect("a cloud security group")
            .id;
        (user, group)
    })
}

fn resource(resource_type: &str, id: uuid::Uuid) -> Resource {
    Resource {
        id: Some(ResourceId {
            resource_type: resource_type.to_string(),
            resource: id.to_string(),
        }),
        ..Resource::default()
    }
}

/// A grant task for `group`'s members entitlement to `user`, as ConductorOne sends it.
fn grant_task(group: uuid::Uuid, user: uuid::Uuid) -> TaskType {
    TaskType::Grant(GrantTask {
        entitlement: Some(Entitlement {
            id: format!("group:{group}:members"),
            resource: Some(resource("group", group)),
            ..Entitlement::default()
        }),
        principal: Some(resource("user", user)),
        ..GrantTask::default()
    })
}

fn revoke_task(grant_id: &str) -> TaskType {
    TaskType::Revoke(RevokeTask {
        grant: Some(Grant {
            id: grant_id.to_string(),
            ..Grant::default()
        }),
        ..RevokeTask::default()
    })
}

/// The response of a task that succeeded, decoded as `M` (whose type URL it must carry).
fn response_of<M: Named + Default>(finished: &service_support::Finished) -> M {
    let Some(FinalState::Success(success)) = &finished.request.final_state else {
        panic!("expected success, got {finished:?}");
    };
    let response = success.response.clone().expect("a response");
    assert_eq!(
        response.type_url,
        format!("type.googleapis.com/{}", M::FULL_NAME)
    );
    M::decode(response.value.as_slice()).expect("the response decodes")
}

fn is_member(h: &Harness, group: uuid::Uuid, user: uuid::Uuid) -> bool {
    h.control()
        .with_tenant(|t| t.groups[&group].members.contains(&user))
}

/// With `--provisioning`, grant and revoke tasks write the tenant through the provisioner and
/// answer baton's responses: a member added, the same grant again already there, the revoke
/// removing it, the same revoke again already gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_and_revoke_tasks_change_the_tenant() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let c1 = FakeConductorOne::start(SEED).await;
    let state = h.dir.path().join("state");
    let config = config_of(
        service_args(&h, &c1, &state, &["--provisioning"]),
        &client_secret(SEED),
    );
    let worker = start_worker(config);
    let (user, group) = free_user_and_group(&h);
    let grant_id = format!("group:{group}:members:user:{user}");
    assert!(!is_member(&h, group, user));

    // A full-sync task first: the baseline makes the group and the user known to the store.
    c1.state
        .push_task(task(10, TaskType::SyncFull(SyncFullTask::default())));
    let synced = c1.state.wait_finished(&task_id(10), LIMIT).await;
    assert!(
        matches!(synced.request.final_state, Some(FinalState::Success(_))),
        "{synced:?}"
    );
    c1.state.push_task(task(1, grant_task(group, user)));
    let granted: GrantManagerServiceGrantResponse =
        response_of(&c1.state.wait_finished(&task_id(1), LIMIT).await);
    assert!(granted.annotations.is_empty(), "{granted:?}");
    assert_eq!(granted.grants.len(), 1);
    assert_eq!(granted.grants[0].id, grant_id);
    assert_eq!(
        granted.grants[0]
            .principal
            .as_ref()
            .and_then(|p| p.id.clone()),
        resource("user", user).id
    );
    assert!(is_member(&h, group, user), "the grant task added no member");
    let counts = h.control().request_counts();
    assert!(
        counts.by_endpoint.keys().any(|k| k.contains("$ref")),
        "a member is added by POST .../members/$ref: {:?}",
        counts.by_endpoint.keys()
    );

    c1.state.push_task(task(2, grant_task(group, user)));
    let again: GrantManagerServiceGrantResponse =
        response_of(&c1.state.wait_finished(&task_id(2), LIMIT).await);
    assert!(
        find_annotation::<GrantAlreadyExists>(&again.annotations).is_some(),
        "{again:?}"
    );
    assert!(is_member(&h, group, user));

    c1.state.push_task(task(3, revoke_task(&grant_id)));
    let revoked: GrantManagerServiceRevokeResponse =
        response_of(&c1.state.wait_finished(&task_id(3), LIMIT).await);
    assert!(revoked.annotations.is_empty(), "{revoked:?}");
    assert!(
        !is_member(&h, group, user),
        "the revoke task left the member"
    );

    c1.state.push_task(task(4, revoke_task(&grant_id)));
    let gone: GrantManagerServiceRevokeResponse =
        response_of(&c1.state.wait_finished(&task_id(4), LIMIT).await);
    assert!(
        find_annotation::<GrantAlreadyRevoked>(&gone.annotations).is_some(),
        "{gone:?}"
    );

    // An id the store does not know is the request's fault: not retried.
    c1.state.push_task(task(
        5,
        TaskType::Grant(GrantTask {
            entitlement: Some(Entitlement {
                id: format!("group:{}:members", uuid::Uuid::nil()),
                ..Entitlement::default()
            }),
            principal: Some(resource("user", user)),
            ..GrantTask::default()
        }),
    ));
    let (code, message, non_retryable) =
        error_of(&c1.state.wait_finished(&task_id(5), LIMIT).await);
    assert_eq!(code, Code::InvalidArgument as i32, "{message}");
    assert!(
        message.contains(&uuid::Uuid::nil().to_string()),
        "{message}"
    );
    assert!(message.contains(&user.to_string()), "{message}");
    assert!(non_retryable);
    worker.abort();
}

/// Without `--provisioning`, grant and revoke tasks naming real access are refused before any
/// write: FAILED_PRECONDITION, not retried, and the tenant is unchanged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_and_revoke_tasks_are_refused_without_provisioning() {
    let h = Harness::start(TenantSpec::with_users(40)).await;
    let c1 = FakeConductorOne::start(SEED).await;
    let state = h.dir.path().join("state");
    let config = config_of(service_args(&h, &c1, &state, &[]), &client_secret(SEED));
    let worker = start_worker(config);
    let (user, group) = free_user_and_group(&h);
    let grant_id = format!("group:{group}:members:user:{user}");
    c1.state.push_task(task(1, grant_task(group, user)));
    c1.state.push_task(task(2, revoke_task(&grant_id)));
    for n in [1, 2] {
        let (code, message, non_retryable) =
            error_of(&c1.state.wait_finished(&task_id(n), LIMIT).await);
        assert_eq!(code, Code::FailedPrecondition as i32, "task {n}: {message}");
        assert!(message.contains("--provisioning"), "{message}");
        assert!(message.contains(&group.to_string()), "{message}");
        assert!(non_retryable);
    }
    assert!(!is_member(&h, group, user));
    let counts = h.control().request_counts();
    let writes: Vec<&String> = counts
        .by_endpoint
        .keys()
        .filter(|k| k.contains("$ref"))
        .collect();
    assert!(writes.is_empty(), "nothing is written: {writes:?}");
    worker.abort();
}
