//! The engine: runs rounds of feeds against the store.
//!
//! A feed's round is the state machine of [`round`]: this module is the thin async loop around
//! its pure `step` (fetch a page, commit what `step` says, persist the cursor, repeat), plus
//! what spans feeds: the order of a round, hints between feeds, subscriptions that come and go.
//! Each page's item changes, the scopes it completed (swept: what the round did not mark is
//! gone) and the feed's next cursor are committed together by [`Store::commit_page`], so `kill
//! -9` at any point resumes where the last commit left off.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use super::round::{self, FeedCursor, RoundState, Step};
use crate::feeds::{self, Api, Collection, Feed, FeedContext, FeedOptions, Hints, ItemReader};
use crate::store::{Generation, RoundOutcome, Store};

/// What one round of every feed did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RoundReport {
    /// Feeds that ran a baseline (first round, reset, or an expired delta token).
    pub baselines: Vec<String>,
    /// Feeds whose delta cursor was refused and that were re-read from scratch.
    pub expired: Vec<String>,
    /// Feeds that failed; they resume from their last committed page next round.
    pub failed: BTreeMap<String, String>,
    pub pages: usize,
    pub items_written: usize,
    pub items_removed: usize,
    /// Baton records created, changed or removed; None when the store did not track them (no
    /// export yet that a diff could start from, so nothing to compute a change log for).
    pub records_changed: Option<usize>,
    /// Requests made this round (both APIs), and their split.
    pub api_requests: u64,
    pub graph_requests: u64,
    pub graph_resource_units: u64,
    pub arm_requests: u64,
    pub elapsed: Duration,
}

impl RoundReport {
    /// A round that ran nothing changed nothing; any page whose records were not tracked makes
    /// the round's count unknown.
    fn add_records_changed(&mut self, page: Option<usize>) {
        self.records_changed = match (self.records_changed, page) {
            (Some(total), Some(page)) => Some(total + page),
            _ => None,
        };
    }

    /// Whether the round may have changed the access graph (unknown counts as yes).
    pub fn changed_records(&self) -> bool {
        self.records_changed != Some(0)
    }
}

/// Totals of the client's request counters, read before and after a round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApiTotals {
    pub graph_requests: u64,
    pub graph_resource_units: u64,
    pub arm_requests: u64,
}

/// Reads the client's counters.
pub type ApiTotalsFn = Arc<dyn Fn() -> ApiTotals + Send + Sync>;

/// Which feeds a round reads in full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundKind {
    /// Follow change signals only (delta links, hints, Activity Log); feeds that can only be
    /// polled wait for a `Poll` round (unless they have never run).
    Changes,
    /// Also re-list the feeds that have no change signal.
    Poll,
}

/// Runs feed rounds. One engine per store; rounds never overlap (the caller awaits them).
pub struct Engine {
    store: Arc<Store>,
    api: Arc<dyn Api>,
    options: Mutex<FeedOptions>,
    /// Hints gathered for each consumer feed since its last finished round.
    pending_hints: Mutex<BTreeMap<String, Hints>>,
    /// The API requests made so far (the client's counters).
    totals: ApiTotalsFn,
    clock: feeds::Clock,
    /// Told about every committed page (progress bars, tests).
    observer: Mutex<Option<PageObserver>>,
    /// Set by a shutdown request: the round stops after the page being committed.
    stopping: AtomicBool,
}

impl Engine {
    pub fn new(
        store: Arc<Store>,
        api: Arc<dyn Api>,
        options: FeedOptions,
        totals: ApiTotalsFn,
        clock: feeds::Clock,
    ) -> Engine {
        Engine {
            store,
            api,
            options: Mutex::new(options),
            pending_hints: Mutex::new(BTreeMap::new()),
            totals,
            clock,
            stopping: AtomicBool::new(false),
            observer: Mutex::new(None),
        }
    }

    /// Calls `observer` after every committed page.
    pub fn observe_pages(&self, observer: PageObserver) {
        if let Ok(mut slot) = self.observer.lock() {
            *slot = Some(observer);
        }
    }

    /// Asks the running round to stop after the page it is committing; the next round (in this
    /// process or the next) resumes from there.
    pub fn request_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// One round of every feed: the tenant-wide feeds, then one feed per subscription the
    /// store knows. Feeds without a cursor run a baseline. A failing feed does not stop the
    /// others; it is reported and resumes next round.
    pub async fn round(&self, kind: RoundKind) -> anyhow::Result<RoundReport> {
        let started = Instant::now();
        let before = (self.totals)();
        let mut report = RoundReport {
            records_changed: Some(0),
            ..RoundReport::default()
        };
        for feed in feeds::tenant_feeds() {
            if self.is_stopping() {
                break;
            }
            self.run_feed(feed.as_ref(), kind, &mut report).await?;
        }
        if !self.is_stopping() {
            self.subscription_round(kind, &mut report).await?;
        }
        self.store.blocking(|store| store.flush()).await?;
        let after = (self.totals)();
        report.graph_requests = after.graph_requests.saturating_sub(before.graph_requests);
        report.graph_resource_units = after
            .graph_resource_units
            .saturating_sub(before.graph_resource_units);
        report.arm_requests = after.arm_requests.saturating_sub(before.arm_requests);
        report.api_requests = report.graph_requests + report.arm_requests;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Runs the feed of every stored subscription, and forgets subscriptions that are gone.
    async fn subscription_round(
        &self,
        kind: RoundKind,
        report: &mut RoundReport,
    ) -> anyhow::Result<()> {
        let subscriptions: BTreeSet<String> = self
            .store
            .blocking(|store| store.item_ids(Collection::Subscription, ""))
            .await?
            .into_iter()
            .collect();
        for subscription in &subscriptions {
            if self.is_stopping() {
                return Ok(());
            }
            let feed = feeds::subscription_feed(subscription);
            self.run_feed(feed.as_ref(), kind, report).await?;
        }
        let status = self.store.blocking(|store| store.status()).await?;
        for name in status.feeds.keys() {
            let Some(subscription) = name.strip_prefix(SUBSCRIPTION_FEED_PREFIX) else {
                continue;
            };
            if subscriptions.contains(subscription) {
                continue;
            }
            tracing::info!(subscription, "subscription is gone: forgetting its items");
            let (name, subscription) = (name.clone(), subscription.to_string());
            let outcome = self
                .store
                .blocking(move |store| {
                    let generation = store.begin_round(&name)?;
                    let outcome = store.commit_page(
                        &name,
                        &feeds::subscription_removed(&subscription),
                        generation,
                        &[],
                        None,
                    )?;
                    store.forget_feed(&name)?;
                    Ok(outcome)
                })
                .await?;
            report.items_removed += outcome.items_removed;
            report.add_records_changed(outcome.records_changed);
        }
        Ok(())
    }

    /// Drives one feed through one round: fetch a page, let [`round::step`] say what to commit
    /// and where to go next, commit it, repeat.
    async fn run_feed(
        &self,
        feed: &dyn Feed,
        kind: RoundKind,
        report: &mut RoundReport,
    ) -> anyhow::Result<()> {
        let name = feed.name();
        let stored = self
            .store
            .blocking({
                let name = name.clone();
                move |store| store.cursor(&name)
            })
            .await?;
        let cursor = match stored.as_ref().and_then(|s| s.cursor.clone()) {
            Some(value) => Some(
                serde_json::from_value::<FeedCursor>(value)
                    .with_context(|| format!("feed {name}: unreadable stored cursor"))?,
            ),
            None => None,
        };
        let resumable_round = stored.as_ref().and_then(|s| s.round);
        let (mut state, mut generation) = match (cursor, resumable_round) {
            (Some(FeedCursor::InRound { baseline, next }), Some(generation)) => {
                tracing::info!(feed = %name, "resuming an interrupted round");
                (RoundState::resume(baseline, next), generation)
            }
            (Some(FeedCursor::Idle { .. }), _) if kind == RoundKind::Changes && feed.polled() => {
                return Ok(());
            }
            (Some(FeedCursor::Idle { cursor }), _) => {
                (RoundState::delta(cursor), self.begin_round(&name).await?)
            }
            // No cursor (first run or reset), or a round whose generation was lost.
            _ => (RoundState::baseline(), self.begin_round(&name).await?),
        };
        if state.baseline {
            report.baselines.push(name.clone());
        }
        let context = self.context_for(&name, kind);
        let baseline_scopes = feed.baseline_scopes();
        loop {
            if self.is_stopping() {
                tracing::info!(feed = %name, "stopping: the round resumes from the last committed page");
                return Ok(());
            }
            let outcome = feed.next_page(&context, &state.position).await;
            let (page, sweep, cursor, next) = match round::step(&state, outcome, &baseline_scopes) {
                Step::Commit {
                    page,
                    sweep,
                    cursor,
                    next,
                } => (page, sweep, cursor, next),
                Step::Rebaseline(baseline) => {
                    tracing::warn!(feed = %name, "delta cursor or continuation link refused by Microsoft: re-reading this feed from scratch");
                    report.expired.push(name.clone());
                    report.baselines.push(name.clone());
                    generation = self.begin_round(&name).await?;
                    state = baseline;
                    continue;
                }
                Step::LicenseRequired(message) => {
                    self.turn_off_p2(&message);
                    self.end_round(&name, RoundOutcome::Completed).await?;
                    return Ok(());
                }
                Step::Failed(error) => {
                    tracing::warn!(feed = %name, error = %error, retryable = error.is_retryable(), "feed round failed; it resumes from its last committed page");
                    self.end_round(
                        &name,
                        RoundOutcome::Failed {
                            error: error.to_string(),
                        },
                    )
                    .await?;
                    report.failed.insert(name.clone(), error.to_string());
                    return Ok(());
                }
            };
            self.spread_hints(&name, page.hints);
            let cursor_value = serde_json::to_value(&cursor)?;
            let change_count = page.changes.len();
            let changes = page.changes;
            let outcome = self
                .store
                .blocking({
                    let name = name.clone();
                    move |store| {
                        store.commit_page(&name, &changes, generation, &sweep, Some(&cursor_value))
                    }
                })
                .await?;
            report.pages += 1;
            if let Ok(slot) = self.observer.lock()
                && let Some(observer) = slot.as_ref()
            {
                observer(&PageEvent {
                    feed: &name,
                    baseline: state.baseline,
                    changes: change_count,
                    records_changed: outcome.records_changed,
                });
            }
            report.items_written += outcome.items_written;
            report.items_removed += outcome.items_removed;
            report.add_records_changed(outcome.records_changed);
            match next {
                Some(next) => state = next,
                None => {
                    self.end_round(&name, RoundOutcome::Completed).await?;
                    if let Ok(mut pending) = self.pending_hints.lock() {
                        pending.remove(&name);
                    }
                    return Ok(());
                }
            }
        }
    }

    // Every store call goes through `Store::blocking`: the runtime's workers never wait on the
    // store's writer lock, which an export holds for tens of seconds.
    async fn begin_round(&self, feed: &str) -> anyhow::Result<Generation> {
        let feed = feed.to_string();
        self.store
            .blocking(move |store| store.begin_round(&feed))
            .await
    }

    async fn end_round(&self, feed: &str, outcome: RoundOutcome) -> anyhow::Result<()> {
        let feed = feed.to_string();
        self.store
            .blocking(move |store| store.end_round(&feed, outcome))
            .await
    }

    fn context_for(&self, feed: &str, kind: RoundKind) -> FeedContext {
        let mut options = self.options.lock().map(|o| o.clone()).unwrap_or_default();
        options.poll_every = match kind {
            RoundKind::Poll => Duration::ZERO,
            // Feeds without a change signal skip a round sooner than this after their last
            // poll, so a `Changes` round leaves them to the poll schedule.
            RoundKind::Changes => Duration::from_secs(100 * 365 * 24 * 3600),
        };
        let hints = self
            .pending_hints
            .lock()
            .ok()
            .and_then(|pending| pending.get(feed).cloned())
            .unwrap_or_default();
        FeedContext {
            api: self.api.clone(),
            items: self.store.clone() as Arc<dyn ItemReader>,
            options,
            hints,
            clock: self.clock.clone(),
        }
    }

    /// Hints a page found are for every other feed; each consumer takes its share when its
    /// round starts and forgets them when that round finishes.
    fn spread_hints(&self, producer: &str, hints: Hints) {
        if hints.is_empty() {
            return;
        }
        if let Ok(mut pending) = self.pending_hints.lock() {
            for feed in feeds::tenant_feeds() {
                let name = feed.name();
                if name != producer {
                    pending.entry(name).or_default().extend(hints.clone());
                }
            }
        }
    }

    fn turn_off_p2(&self, message: &str) {
        if let Ok(mut options) = self.options.lock()
            && !options.skip_p2
        {
            tracing::warn!(
                "the tenant has no Entra ID P2 licence ({message}): PIM eligibility feeds are turned off for this process; set skip-entra-id-p2-license-features to silence this"
            );
            options.skip_p2 = true;
        }
    }
}

/// What the engine tells an observer after each committed page.
pub struct PageEvent<'a> {
    pub feed: &'a str,
    pub baseline: bool,
    pub changes: usize,
    pub records_changed: Option<usize>,
}

pub type PageObserver = Box<dyn Fn(&PageEvent<'_>) + Send + Sync>;

/// Subscription feeds are named `<prefix><subscription id>`.
pub const SUBSCRIPTION_FEED_PREFIX: &str = "arm_subscription:";
