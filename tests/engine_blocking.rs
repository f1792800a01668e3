//! The engine never blocks the runtime on the store: every store call waits on tokio's blocking
//! threads, so while an export holds the store's writer lock (35 s at 100,000 users) the health
//! endpoints and the scheduler, tasks on the same runtime, keep running.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use baton_azure_delta::azure::{ApiError, BatchRequest, BatchResponse};
use baton_azure_delta::feeds::{self, Api, FeedOptions};
use baton_azure_delta::model::projection::ProjectionOptions;
use baton_azure_delta::store::Store;
use baton_azure_delta::sync::engine::{ApiTotals, Engine, RoundKind};
use futures::future::BoxFuture;
use serde_json::Value;

/// Microsoft is unreachable: every feed fails its first page (after beginning its round).
struct Unreachable;

fn unreachable() -> ApiError {
    ApiError::Unavailable {
        message: "no network in this test".into(),
    }
}

impl Api for Unreachable {
    fn graph_get<'a>(
        &'a self,
        _url: &'a str,
        _headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async { Err(unreachable()) })
    }

    fn graph_batch<'a>(
        &'a self,
        _requests: Vec<BatchRequest>,
    ) -> BoxFuture<'a, Result<Vec<BatchResponse>, ApiError>> {
        Box::pin(async { Err(unreachable()) })
    }

    fn arm_get<'a>(&'a self, _url: &'a str) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async { Err(unreachable()) })
    }
}

/// One runtime thread, as on a busy worker: a round whose store call blocked that thread would
/// stop every other task until the export released the lock.
#[tokio::test(flavor = "current_thread")]
async fn a_round_waiting_for_the_store_lets_other_tasks_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), ProjectionOptions::default()).unwrap());

    // An export in progress on its own thread: it holds the writer lock until another task of
    // the runtime answers (or, if none can run, until it gives up).
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (answer_tx, answer_rx) = mpsc::channel::<()>();
    let exporting = store.clone();
    let export = std::thread::spawn(move || {
        let mut locked = Some(locked_tx);
        let mut answered = None;
        exporting
            .for_each_record(&mut |_| {
                if let Some(locked) = locked.take() {
                    let _ = locked.send(());
                    answered = Some(answer_rx.recv_timeout(Duration::from_secs(20)).is_ok());
                }
                Ok(())
            })
            .unwrap();
        answered
    });
    locked_rx.await.unwrap();

    let engine = Arc::new(Engine::new(
        store,
        Arc::new(Unreachable),
        FeedOptions::default(),
        Arc::new(ApiTotals::default),
        feeds::system_clock(),
    ));
    let round = tokio::spawn({
        let engine = engine.clone();
        async move { engine.round(RoundKind::Poll).await }
    });
    // Another task of the runtime (a health check): it runs only if the round yields while it
    // waits for the store.
    let health = tokio::spawn(async move {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        answer_tx.send(()).unwrap();
    });

    health.await.unwrap();
    let report = round.await.unwrap().unwrap();
    assert_eq!(
        export.join().unwrap(),
        Some(true),
        "the export never heard from the other task: the round blocked the runtime"
    );
    assert!(
        !report.failed.is_empty(),
        "every feed fails without a network"
    );
}
