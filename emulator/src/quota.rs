//! Metering and budgets: what each request costs, how many were made, and whether the caller is
//! over Microsoft's documented limits.
//!
//! Graph (identity and access): resource units (RU) per app per tenant per 10 seconds, 3,500 /
//! 5,000 / 8,000 for tenants under 50 / 50 to 500 / over 500 users, with the documented per-request
//! costs and modifiers, reported in `x-ms-resource-unit` on every response
//! (https://learn.microsoft.com/en-us/graph/throttling-limits). ARM: token buckets per
//! subscription (or tenant) and operation type, reads 250 refilling 25/s, writes and deletes 200
//! refilling 10/s, reported in `x-ms-ratelimit-remaining-*` headers
//! (https://learn.microsoft.com/en-us/azure/azure-resource-manager/management/request-limits-and-throttling).
//! Metering always runs; refusing with 429 happens only when quotas are switched on.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::Method;

/// Request counters, as read through the control surface.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RequestCounts {
    /// Requests per endpoint class ("GET /v1.0/groups/{id}/members"), ids replaced by `{id}`.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Requests per HTTP status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Requests per API ("graph", "arm", "token").
    pub by_api: BTreeMap<String, u64>,
    /// Graph resource units charged (throttled requests included, as Graph does).
    pub graph_resource_units: u64,
    /// Responses that were 429.
    pub throttled: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.by_api.values().sum()
    }
}

/// Which documented tier a tenant's Graph budget falls in, by its number of users.
pub fn graph_budget_per_10s(user_count: usize) -> u32 {
    match user_count {
        0..50 => 3_500,
        50..=500 => 5_000,
        _ => 8_000,
    }
}

/// The documented RU cost of one Graph request. `path` starts after the version segment
/// (`users/delta`, `groups/{id}/members`); `query` holds the decoded query parameters.
pub fn graph_cost(method: &Method, path: &str, query: &HashMap<String, String>) -> u32 {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let base: i32 = if *method == Method::GET {
        match segments.as_slice() {
            ["users", "delta"] => 1,
            ["users"] | ["users", _] => 2,
            ["applications", ..] => 2,
            ["groups", _, "members", ..] => 3,
            ["groups", _, "transitiveMembers", ..] => 5,
            ["oauth2PermissionGrants", ..] => 2,
            ["servicePrincipals", _, "appRoleAssignments", ..] => 2,
            ["subscribedSkus", ..] => 3,
            _ => 1,
        }
    } else if *method == Method::POST && segments.as_slice() == ["directoryObjects", "getByIds"] {
        5
    } else {
        1
    };
    let mut cost = base;
    if query.contains_key("$select") {
        cost -= 1;
    }
    if query.contains_key("$expand") {
        cost += 1;
    }
    if query
        .get("$top")
        .and_then(|t| t.parse::<u32>().ok())
        .is_some_and(|t| t < 20)
    {
        cost -= 1;
    }
    u32::try_from(cost.max(1)).unwrap_or(1)
}

/// A token bucket: `capacity` tokens, refilled continuously at `per_second`.
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(capacity: f64, per_second: f64) -> Bucket {
        Bucket {
            capacity,
            per_second,
            tokens: capacity,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.at = now;
    }

    /// Takes `cost` tokens, or says how long until they are there.
    fn take(&mut self, cost: f64, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            let missing = cost - self.tokens;
            Err(Duration::from_secs_f64(missing / self.per_second))
        }
    }

    fn used_fraction(&self) -> f64 {
        1.0 - self.tokens / self.capacity
    }
}

/// The answer to "may this request run?".
#[derive(Clone, Debug, PartialEq)]
pub enum Admission {
    Allowed {
        /// Response headers that report the caller's budget.
        headers: Vec<(&'static str, String)>,
    },
    Throttled {
        retry_after_secs: u64,
        headers: Vec<(&'static str, String)>,
        /// Error code and message in the API's own words.
        code: &'static str,
        message: String,
    },
}

/// Kind of ARM operation, each with its own bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArmOperation {
    Read,
    Write,
    Delete,
}

impl ArmOperation {
    pub fn of(method: &Method) -> ArmOperation {
        match *method {
            Method::GET | Method::HEAD => ArmOperation::Read,
            Method::DELETE => ArmOperation::Delete,
            _ => ArmOperation::Write,
        }
    }

    fn word(self) -> &'static str {
        match self {
            ArmOperation::Read => "reads",
            ArmOperation::Write => "writes",
            ArmOperation::Delete => "deletes",
        }
    }

    fn bucket(self) -> Bucket {
        match self {
            ArmOperation::Read => Bucket::new(250.0, 25.0),
            ArmOperation::Write | ArmOperation::Delete => Bucket::new(200.0, 10.0),
        }
    }
}

/// All budgets and counters of one emulator.
pub struct Meter {
    enforce: AtomicBool,
    app_id: String,
    tenant_id: String,
    graph: Mutex<Bucket>,
    /// Keyed by (subscription id, or None for tenant-level calls) and operation.
    arm: Mutex<HashMap<(Option<String>, ArmOperation), Bucket>>,
    counts: Mutex<RequestCounts>,
}

impl Meter {
    pub fn new(
        enforce: bool,
        graph_budget_per_10s: u32,
        app_id: String,
        tenant_id: String,
    ) -> Meter {
        let budget = f64::from(graph_budget_per_10s);
        Meter {
            enforce: AtomicBool::new(enforce),
            app_id,
            tenant_id,
            graph: Mutex::new(Bucket::new(budget, budget / 10.0)),
            arm: Mutex::new(HashMap::new()),
            counts: Mutex::new(RequestCounts::default()),
        }
    }

    pub fn set_enforce(&self, on: bool) {
        self.enforce.store(on, Ordering::Relaxed);
    }

    /// Charges a Graph request `cost` RU against the app's budget.
    pub fn admit_graph(&self, cost: u32) -> Admission {
        let mut bucket = self.graph.lock().unwrap_or_else(|e| e.into_inner());
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .graph_resource_units += u64::from(cost);
        let mut headers = vec![("x-ms-resource-unit", cost.to_string())];
        let taken = bucket.take(f64::from(cost), Instant::now());
        let used = bucket.used_fraction();
        if used >= 0.8 {
            headers.push((
                "x-ms-throttle-limit-percentage",
                format!("{:.1}", used.max(0.8)),
            ));
        }
        match taken {
            Err(wait) if self.enforce.load(Ordering::Relaxed) => {
                headers.push((
                    "x-ms-throttle-scope",
                    format!(
                        "Tenant_Application/ReadWrite/{}/{}",
                        self.app_id, self.tenant_id
                    ),
                ));
                headers.push((
                    "x-ms-throttle-information",
                    "ResourceUnitLimitExceeded".into(),
                ));
                Admission::Throttled {
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                    headers,
                    code: "TooManyRequests",
                    message: "Too many requests.".into(),
                }
            }
            _ => Admission::Allowed { headers },
        }
    }

    /// Takes one token from the ARM bucket of this subscription (or the tenant) and operation.
    pub fn admit_arm(&self, subscription: Option<&str>, operation: ArmOperation) -> Admission {
        let mut buckets = self.arm.lock().unwrap_or_else(|e| e.into_inner());
        let key = (subscription.map(str::to_ascii_lowercase), operation);
        let bucket = buckets.entry(key).or_insert_with(|| operation.bucket());
        let taken = bucket.take(1.0, Instant::now());
        let level = if subscription.is_some() {
            "subscription"
        } else {
            "tenant"
        };
        let header = match (level, operation) {
            ("subscription", ArmOperation::Read) => "x-ms-ratelimit-remaining-subscription-reads",
            ("subscription", ArmOperation::Write) => "x-ms-ratelimit-remaining-subscription-writes",
            ("subscription", ArmOperation::Delete) => {
                "x-ms-ratelimit-remaining-subscription-deletes"
            }
            (_, ArmOperation::Read) => "x-ms-ratelimit-remaining-tenant-reads",
            (_, ArmOperation::Write) => "x-ms-ratelimit-remaining-tenant-writes",
            (_, ArmOperation::Delete) => "x-ms-ratelimit-remaining-tenant-deletes",
        };
        let headers = vec![(header, (bucket.tokens.floor() as u64).to_string())];
        match taken {
            Err(wait) if self.enforce.load(Ordering::Relaxed) => {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                let (code, whose) = match subscription {
                    Some(sub) => (
                        "SubscriptionRequestsThrottled",
                        format!("subscription '{sub}'"),
                    ),
                    None => (
                        "TenantRequestsThrottled",
                        format!("tenant '{}'", self.tenant_id),
                    ),
                };
                Admission::Throttled {
                    retry_after_secs: secs,
                    headers,
                    code,
                    message: format!(
                        "Number of '{}' requests for {whose} actor '{}' exceeded. Please try again after '{secs}' seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling",
                        operation.word().trim_end_matches('s'),
                        self.app_id
                    ),
                }
            }
            _ => Admission::Allowed { headers },
        }
    }

    /// Records one answered request.
    pub fn record(&self, api: &str, endpoint_class: String, status: u16) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.by_endpoint.entry(endpoint_class).or_default() += 1;
        *counts.by_status.entry(status).or_default() += 1;
        *counts.by_api.entry(api.to_string()).or_default() += 1;
        if status == 429 {
            counts.throttled += 1;
        }
    }

    pub fn counts(&self) -> RequestCounts {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn reset_counts(&self) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()) = RequestCounts::default();
    }
}

/// "GET /v1.0/groups/{id}/members": the path with every id-like segment replaced, so that
/// counters group requests by the kind of call rather than by object.
pub fn endpoint_class(method: &Method, path: &str) -> String {
    let mut previous = "";
    let class: Vec<&str> = path
        .split('/')
        .map(|seg| {
            let named = uuid::Uuid::parse_str(seg).is_ok()
                || seg.contains('@')
                || NAMED_COLLECTIONS.contains(&previous.to_ascii_lowercase().as_str());
            previous = seg;
            if named { "{id}" } else { seg }
        })
        .collect();
    format!("{method} {}", class.join("/"))
}

/// Collections whose next path segment is an object's name rather than a fixed word.
const NAMED_COLLECTIONS: &[&str] = &[
    "subscriptions",
    "resourcegroups",
    "storageaccounts",
    "containers",
    "managementgroups",
    "roleassignments",
    "roledefinitions",
    "roleeligibilityschedules",
    "roleeligibilityscheduleinstances",
    "vaults",
    "tenants",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn documented_graph_costs_and_modifiers() {
        assert_eq!(graph_cost(&Method::GET, "users", &q(&[])), 2);
        assert_eq!(
            graph_cost(&Method::GET, "users", &q(&[("$select", "id")])),
            1
        );
        assert_eq!(
            graph_cost(&Method::GET, "groups/abc/members", &q(&[("$expand", "x")])),
            4
        );
        assert_eq!(
            graph_cost(&Method::GET, "groups/abc/members", &q(&[("$top", "5")])),
            2
        );
        assert_eq!(
            graph_cost(&Method::GET, "organization", &q(&[("$select", "id")])),
            1
        );
        assert_eq!(
            graph_cost(&Method::POST, "directoryObjects/getByIds", &q(&[])),
            5
        );
    }

    #[test]
    fn tenant_size_tiers() {
        assert_eq!(graph_budget_per_10s(49), 3_500);
        assert_eq!(graph_budget_per_10s(50), 5_000);
        assert_eq!(graph_budget_per_10s(500), 5_000);
        assert_eq!(graph_budget_per_10s(501), 8_000);
    }

    #[test]
    fn graph_budget_runs_out_and_says_when_to_retry() {
        let meter = Meter::new(true, 3_500, "app".into(), "tenant".into());
        let mut allowed = 0;
        let retry = loop {
            match meter.admit_graph(2) {
                Admission::Allowed { .. } => allowed += 1,
                Admission::Throttled {
                    retry_after_secs, ..
                } => break retry_after_secs,
            }
            assert!(allowed <= 1_760, "the bucket never ran out");
        };
        assert!((1_749..=1_760).contains(&allowed), "allowed {allowed}");
        assert_eq!(retry, 1);
    }

    #[test]
    fn arm_read_bucket_holds_250() {
        let meter = Meter::new(true, 3_500, "app".into(), "tenant".into());
        let mut allowed = 0;
        while let Admission::Allowed { .. } = meter.admit_arm(Some("sub"), ArmOperation::Read) {
            allowed += 1;
            assert!(allowed <= 260, "the bucket never ran out");
        }
        assert!((250..=252).contains(&allowed), "allowed {allowed}");
        // Another subscription has its own bucket.
        assert!(matches!(
            meter.admit_arm(Some("other"), ArmOperation::Read),
            Admission::Allowed { .. }
        ));
    }

    #[test]
    fn metering_without_enforcement_never_throttles() {
        let meter = Meter::new(false, 3_500, "app".into(), "tenant".into());
        for _ in 0..3_000 {
            assert!(matches!(meter.admit_graph(2), Admission::Allowed { .. }));
        }
        assert_eq!(meter.counts().graph_resource_units, 6_000);
    }

    #[test]
    fn endpoint_classes_hide_ids() {
        assert_eq!(
            endpoint_class(
                &Method::GET,
                "/v1.0/groups/0b5f8a1e-1d2c-4c3b-9a8e-7f6d5c4b3a21/members"
            ),
            "GET /v1.0/groups/{id}/members"
        );
        assert_eq!(
            endpoint_class(&Method::GET, "/v1.0/users/delta"),
            "GET /v1.0/users/delta"
        );
    }
}
