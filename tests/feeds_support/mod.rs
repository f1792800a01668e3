//! Test support for the feed tests: a scripted fake of the Microsoft API (answers are queued
//! per exact URL, every call is logged), an in-memory item store with the store's mark-and-sweep
//! semantics, and a driver that runs one round of a feed page by page like the engine does.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_azure_delta::azure::{ApiError, BatchRequest, BatchResponse};
use baton_azure_delta::feeds::{
    Api, Change, Collection, Feed, FeedContext, FeedError, FeedOptions, Hints, ItemKey, ItemReader,
    Page, Position,
};
use baton_azure_delta::sync::round::{self, FeedCursor, RoundState, Step};
use futures::future::BoxFuture;
use serde_json::Value;
use time::OffsetDateTime;

/// A JSON file of fixtures/feeds/.
pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/feeds")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {path:?}: {e}"))
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// "graph", "batch" or "arm".
    pub api: &'static str,
    /// The URL (for a batch: its inner URLs joined with " | ").
    pub url: String,
    pub headers: Vec<(String, String)>,
}

type Queue = Mutex<HashMap<String, VecDeque<Result<Value, ApiError>>>>;
/// A scripted answer inside a `$batch`: status, body, Retry-After.
type BatchAnswer = (u16, Value, Option<Duration>);

#[derive(Default)]
pub struct FakeApi {
    graph: Queue,
    arm: Queue,
    batch: Mutex<HashMap<String, VecDeque<BatchAnswer>>>,
    pub log: Mutex<Vec<Call>>,
}

fn unscripted(what: &str, url: &str) -> ApiError {
    ApiError::Other {
        status: None,
        code: "unscripted".into(),
        message: format!("no scripted answer for {what} {url}"),
    }
}

impl FakeApi {
    pub fn graph(&self, url: &str, body: Value) -> &Self {
        self.graph
            .lock()
            .unwrap()
            .entry(url.into())
            .or_default()
            .push_back(Ok(body));
        self
    }
    pub fn graph_err(&self, url: &str, error: ApiError) -> &Self {
        self.graph
            .lock()
            .unwrap()
            .entry(url.into())
            .or_default()
            .push_back(Err(error));
        self
    }
    pub fn arm(&self, url: &str, body: Value) -> &Self {
        self.arm
            .lock()
            .unwrap()
            .entry(url.into())
            .or_default()
            .push_back(Ok(body));
        self
    }
    pub fn arm_err(&self, url: &str, error: ApiError) -> &Self {
        self.arm
            .lock()
            .unwrap()
            .entry(url.into())
            .or_default()
            .push_back(Err(error));
        self
    }
    /// One answer for a request inside a `$batch` (matched by its relative URL).
    pub fn batch(&self, url: &str, status: u16, body: Value) -> &Self {
        self.batch
            .lock()
            .unwrap()
            .entry(url.into())
            .or_default()
            .push_back((status, body, None));
        self
    }
    pub fn batch_throttled(&self, url: &str, retry_after: Duration) -> &Self {
        let body =
            serde_json::json!({"error": {"code": "TooManyRequests", "message": "throttled"}});
        self.batch
            .lock()
            .unwrap()
            .entry(url.into())
            .or_default()
            .push_back((429, body, Some(retry_after)));
        self
    }
    pub fn calls(&self) -> Vec<Call> {
        self.log.lock().unwrap().clone()
    }
    /// Whether any call so far went to a URL containing `part`.
    pub fn called(&self, part: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.url.contains(part))
    }
    pub fn count(&self, api: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.api == api)
            .count()
    }
    /// Whether every scripted answer was used (a feed that skips a page would leave one).
    pub fn all_used(&self) -> bool {
        let empty = |q: &Queue| q.lock().unwrap().values().all(VecDeque::is_empty);
        empty(&self.graph)
            && empty(&self.arm)
            && self.batch.lock().unwrap().values().all(VecDeque::is_empty)
    }
    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Api for FakeApi {
    fn graph_get<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            self.log.lock().unwrap().push(Call {
                api: "graph",
                url: url.into(),
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            });
            let answer = self
                .graph
                .lock()
                .unwrap()
                .get_mut(url)
                .and_then(VecDeque::pop_front);
            answer.unwrap_or_else(|| Err(unscripted("GET", url)))
        })
    }

    fn graph_batch<'a>(
        &'a self,
        requests: Vec<BatchRequest>,
    ) -> BoxFuture<'a, Result<Vec<BatchResponse>, ApiError>> {
        Box::pin(async move {
            self.log.lock().unwrap().push(Call {
                api: "batch",
                url: requests
                    .iter()
                    .map(|r| r.url.as_str())
                    .collect::<Vec<_>>()
                    .join(" | "),
                headers: Vec::new(),
            });
            if requests.len() > 20 {
                return Err(ApiError::Other {
                    status: Some(400),
                    code: "BadRequest".into(),
                    message: "more than 20 requests in a batch".into(),
                });
            }
            let mut batch = self.batch.lock().unwrap();
            Ok(requests
                .into_iter()
                .map(|request| {
                    let (status, body, retry_after) = batch
                        .get_mut(&request.url)
                        .and_then(VecDeque::pop_front)
                        .unwrap_or_else(|| (500, serde_json::json!({"error": {"code": "unscripted", "message": request.url}}), None));
                    BatchResponse { id: request.id, status, body, retry_after }
                })
                .collect())
        })
    }

    fn arm_get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Value, ApiError>> {
        self.arm_get_with_headers(url, &[])
    }

    fn arm_get_with_headers<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        Box::pin(async move {
            self.log.lock().unwrap().push(Call {
                api: "arm",
                url: url.into(),
                headers: headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            });
            let answer = self
                .arm
                .lock()
                .unwrap()
                .get_mut(url)
                .and_then(VecDeque::pop_front);
            answer.unwrap_or_else(|| Err(unscripted("ARM GET", url)))
        })
    }
}

/// Items with the store's semantics: every change marks its item with the round's generation;
/// a completed scope removes the items in it that this round did not mark.
#[derive(Default)]
pub struct MemStore {
    items: Mutex<BTreeMap<ItemKey, (Value, u64)>>,
}

impl MemStore {
    pub fn apply(&self, page: &Page, generation: u64) {
        let mut items = self.items.lock().unwrap();
        for change in &page.changes {
            match change {
                Change::Upsert { key, value } => {
                    items.insert(key.clone(), (value.clone(), generation));
                }
                Change::Merge { key, value } => {
                    let entry = items
                        .entry(key.clone())
                        .or_insert((Value::Object(Default::default()), generation));
                    if let (Value::Object(stored), Value::Object(new)) = (&mut entry.0, value) {
                        for (k, v) in new {
                            stored.insert(k.clone(), v.clone());
                        }
                    }
                    entry.1 = generation;
                }
                Change::Remove { key } => {
                    items.remove(key);
                }
                Change::RemovePrefix { collection, prefix } => {
                    items.retain(|k, _| {
                        !(k.collection == *collection && k.id.starts_with(prefix.as_str()))
                    });
                }
            }
        }
        for scope in &page.completed {
            sweep(&mut items, scope, generation);
        }
    }

    pub fn sweep(&self, scope: &(Collection, Option<String>), generation: u64) {
        sweep(&mut self.items.lock().unwrap(), scope, generation);
    }

    pub fn get(&self, collection: Collection, id: &str) -> Option<Value> {
        self.items
            .lock()
            .unwrap()
            .get(&ItemKey::new(collection, id))
            .map(|(v, _)| v.clone())
    }

    pub fn ids(&self, collection: Collection) -> Vec<String> {
        self.item_ids(collection, "").unwrap()
    }

    pub fn put(&self, collection: Collection, id: &str, value: Value) {
        self.items
            .lock()
            .unwrap()
            .insert(ItemKey::new(collection, id), (value, 0));
    }
}

fn sweep(
    items: &mut BTreeMap<ItemKey, (Value, u64)>,
    (collection, prefix): &(Collection, Option<String>),
    generation: u64,
) {
    items.retain(|k, (_, mark)| {
        let in_scope =
            k.collection == *collection && prefix.as_deref().is_none_or(|p| k.id.starts_with(p));
        !in_scope || *mark == generation
    });
}

impl ItemReader for MemStore {
    fn item(&self, key: &ItemKey) -> anyhow::Result<Option<Value>> {
        Ok(self.items.lock().unwrap().get(key).map(|(v, _)| v.clone()))
    }
    fn item_ids(&self, collection: Collection, prefix: &str) -> anyhow::Result<Vec<String>> {
        Ok(self
            .items
            .lock()
            .unwrap()
            .keys()
            .filter(|k| k.collection == collection && k.id.starts_with(prefix))
            .map(|k| k.id.clone())
            .collect())
    }
    fn item_ids_after(
        &self,
        collection: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<String>> {
        let mut ids = self.item_ids(collection, "")?;
        ids.sort();
        ids.retain(|id| after.is_none_or(|after| id.as_str() > after));
        ids.truncate(limit);
        Ok(ids)
    }
}

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicI64>);

impl TestClock {
    pub fn at(t: OffsetDateTime) -> TestClock {
        TestClock(Arc::new(AtomicI64::new(t.unix_timestamp())))
    }
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_secs() as i64, Ordering::SeqCst);
    }
    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst)).unwrap()
    }
}

pub struct Harness {
    pub api: Arc<FakeApi>,
    pub store: Arc<MemStore>,
    pub options: FeedOptions,
    pub clock: TestClock,
    generation: u64,
}

/// What one round produced.
pub struct Round {
    pub pages: Vec<Page>,
    pub cursor: Value,
    pub hints: Hints,
}

impl Round {
    pub fn changes(&self) -> Vec<Change> {
        self.pages.iter().flat_map(|p| p.changes.clone()).collect()
    }
    pub fn completed(&self) -> Vec<(Collection, Option<String>)> {
        self.pages
            .iter()
            .flat_map(|p| p.completed.clone())
            .collect()
    }
    /// Whether the round declared any scope of `collection` listed completely (swept).
    pub fn completes_any(&self, collection: Collection) -> bool {
        self.completed().iter().any(|(c, _)| *c == collection)
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            api: Arc::new(FakeApi::default()),
            store: Arc::new(MemStore::default()),
            options: FeedOptions::default(),
            clock: TestClock::at(time::macros::datetime!(2026-11-26 04:00 UTC)),
            generation: 0,
        }
    }

    pub fn context(&self, hints: Hints) -> FeedContext {
        let clock = self.clock.clone();
        FeedContext {
            api: self.api.clone(),
            items: self.store.clone(),
            options: self.options.clone(),
            hints,
            clock: Arc::new(move || clock.now()),
        }
    }

    /// Runs one whole round through the engine's own state machine (`round::step`): each page
    /// applied with the round's generation and its sweeps, a baseline's scopes swept at its end.
    /// What would make the engine re-baseline or stop comes back as the feed's error.
    pub async fn round(
        &mut self,
        feed: &dyn Feed,
        start: Position,
        hints: Hints,
    ) -> Result<Round, FeedError> {
        self.generation += 1;
        let ctx = self.context(hints);
        let mut state = match start {
            Position::Baseline => RoundState::baseline(),
            Position::Delta(cursor) => RoundState::delta(cursor),
            Position::Continue(next) => RoundState::resume(false, next),
        };
        let baseline_scopes = feed.baseline_scopes();
        let mut pages = Vec::new();
        let mut found = Hints::default();
        for _ in 0..100_000 {
            let outcome = feed.next_page(&ctx, &state.position).await;
            let (page, sweep, cursor, next) = match round::step(&state, outcome, &baseline_scopes) {
                Step::Commit {
                    page,
                    sweep,
                    cursor,
                    next,
                } => (page, sweep, cursor, next),
                Step::Rebaseline(_) => return Err(FeedError::DeltaTokenExpired),
                Step::LicenseRequired(message) => return Err(FeedError::LicenseRequired(message)),
                Step::Failed(error) => return Err(error),
            };
            self.store.apply(&page, self.generation);
            for scope in &sweep {
                self.store.sweep(scope, self.generation);
            }
            found.extend(page.hints.clone());
            pages.push(page);
            match (next, cursor) {
                (Some(next), _) => state = next,
                (None, FeedCursor::Idle { cursor }) => {
                    return Ok(Round {
                        pages,
                        cursor,
                        hints: found,
                    });
                }
                (None, other) => panic!("{}: a round ended with {other:?}", feed.name()),
            }
        }
        panic!("{}: the round never ended", feed.name());
    }
}

impl MemStore {
    /// The ids of `collection` items under `<parent>/`.
    pub fn item_ids_of(&self, collection: Collection, parent: &str) -> Vec<String> {
        self.item_ids(collection, &format!("{parent}/")).unwrap()
    }
}
