//! Prometheus metrics of the worker, served at `/metrics`: rounds, record changes, API calls,
//! throttling, drift found by reconciliation, cursor ages and the last successful export.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::engine::RoundReport;
use crate::azure::Counters;
use crate::store::StoreStatus;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabel {
    pub api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabel {
    pub feed: String,
}

pub struct Metrics {
    registry: Registry,
    rounds: Family<KindLabel, Counter>,
    round_failures: Family<FeedLabel, Counter>,
    records_changed: Counter,
    api_requests: Family<ApiLabel, Gauge<u64, AtomicU64>>,
    throttled: Family<ApiLabel, Gauge<u64, AtomicU64>>,
    graph_resource_units: Gauge<u64, AtomicU64>,
    drift_records: Gauge,
    cursor_age_seconds: Family<FeedLabel, Gauge>,
    last_export_timestamp: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("baton_azure_delta");
        let metrics = Metrics {
            rounds: Family::default(),
            round_failures: Family::default(),
            records_changed: Counter::default(),
            api_requests: Family::default(),
            throttled: Family::default(),
            graph_resource_units: Gauge::default(),
            drift_records: Gauge::default(),
            cursor_age_seconds: Family::default(),
            last_export_timestamp: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register("rounds", "Rounds finished, by kind", metrics.rounds.clone());
        registry.register(
            "feed_failures",
            "Feed rounds that failed (they resume next round)",
            metrics.round_failures.clone(),
        );
        registry.register(
            "records_changed",
            "Baton records created, changed or removed",
            metrics.records_changed.clone(),
        );
        registry.register(
            "api_requests",
            "HTTP requests sent to Microsoft since start",
            metrics.api_requests.clone(),
        );
        registry.register(
            "api_throttled",
            "429 answers from Microsoft since start",
            metrics.throttled.clone(),
        );
        registry.register(
            "graph_resource_units",
            "Graph resource units spent since start",
            metrics.graph_resource_units.clone(),
        );
        registry.register(
            "drift_records",
            "Records the last full reconciliation found different from the incremental state",
            metrics.drift_records.clone(),
        );
        registry.register(
            "cursor_age_seconds",
            "Age of each feed's cursor",
            metrics.cursor_age_seconds.clone(),
        );
        registry.register(
            "last_export_timestamp_seconds",
            "Unix time of the last successful export",
            metrics.last_export_timestamp.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    pub fn observe_round(&self, kind: &str, report: &RoundReport, counters: &Counters) {
        self.rounds
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
        self.records_changed
            .inc_by(report.records_changed.unwrap_or(0) as u64);
        for feed in report.failed.keys() {
            self.round_failures
                .get_or_create(&FeedLabel { feed: feed.clone() })
                .inc();
        }
        for (api, c) in [("graph", &counters.graph), ("arm", &counters.arm)] {
            let label = ApiLabel {
                api: api.to_string(),
            };
            self.api_requests.get_or_create(&label).set(c.requests);
            self.throttled.get_or_create(&label).set(c.throttled);
        }
        self.graph_resource_units.set(counters.graph.resource_units);
    }

    pub fn observe_store(&self, status: &StoreStatus) {
        let now = time::OffsetDateTime::now_utc();
        for (feed, state) in &status.feeds {
            if let Some(at) = state.cursor_written_at {
                self.cursor_age_seconds
                    .get_or_create(&FeedLabel { feed: feed.clone() })
                    .set((now - at).whole_seconds());
            }
        }
    }

    pub fn observe_drift(&self, records: usize) {
        self.drift_records.set(records as i64);
    }

    pub fn observe_export(&self) {
        self.last_export_timestamp
            .set(time::OffsetDateTime::now_utc().unix_timestamp());
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
