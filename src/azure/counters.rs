//! Request accounting: requests per API and per endpoint class, responses per status, retries,
//! throttling, and Graph resource units. A snapshot ([`Counters`]) is what logs and `status` show.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// Which Microsoft API a request went to; each has its own budget, concurrency and counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    Graph,
    Arm,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::Graph => "graph",
            Api::Arm => "arm",
        })
    }
}

/// A point-in-time copy of the counters of both APIs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counters {
    pub graph: ApiCounters,
    pub arm: ApiCounters,
}

/// Counters of one API since the client was created.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApiCounters {
    /// HTTP exchanges attempted (each retry counts again).
    pub requests: u64,
    /// Attempts by endpoint class, e.g. `GET /v1.0/groups/{id}/members`.
    pub by_endpoint: BTreeMap<String, u64>,
    /// Responses by HTTP status (status-less failures are under `transport_errors`).
    pub by_status: BTreeMap<u16, u64>,
    /// Dropped connections, timeouts, unreadable bodies.
    pub transport_errors: u64,
    /// Attempts that were repeated after a transient failure.
    pub retries: u64,
    /// 429 answers, including 429s inside `$batch` responses.
    pub throttled: u64,
    /// Time spent waiting for the budget (bucket and throttle gate), summed over requests.
    pub budget_wait_ms: u64,
    /// Sum of `x-ms-resource-unit` over responses that carried it (Graph only).
    pub resource_units: u64,
    /// Current budget rate after throttling back-off; None = no budget configured.
    pub effective_requests_per_minute: Option<f64>,
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (api, c) in [(Api::Graph, &self.graph), (Api::Arm, &self.arm)] {
            write!(
                f,
                "{api}: {} requests, {} retries, {} throttled, {} transport errors, {} RU, {} ms budget wait; ",
                c.requests,
                c.retries,
                c.throttled,
                c.transport_errors,
                c.resource_units,
                c.budget_wait_ms
            )?;
        }
        Ok(())
    }
}

#[derive(Default)]
pub(crate) struct CounterSet {
    inner: Mutex<Counters>,
}

impl CounterSet {
    fn with(&self, api: Api, update: impl FnOnce(&mut ApiCounters)) {
        let mut all = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        update(match api {
            Api::Graph => &mut all.graph,
            Api::Arm => &mut all.arm,
        });
    }

    pub(crate) fn attempt(&self, api: Api, endpoint: &str, budget_wait: Duration) {
        self.with(api, |c| {
            c.requests += 1;
            *c.by_endpoint.entry(endpoint.to_owned()).or_default() += 1;
            c.budget_wait_ms += u64::try_from(budget_wait.as_millis()).unwrap_or(u64::MAX);
        });
    }

    pub(crate) fn status(&self, api: Api, status: u16) {
        self.with(api, |c| *c.by_status.entry(status).or_default() += 1);
    }

    pub(crate) fn transport_error(&self, api: Api) {
        self.with(api, |c| c.transport_errors += 1);
    }

    pub(crate) fn retry(&self, api: Api) {
        self.with(api, |c| c.retries += 1);
    }

    pub(crate) fn throttled(&self, api: Api, count: u64) {
        self.with(api, |c| c.throttled += count);
    }

    pub(crate) fn resource_units(&self, api: Api, units: u64) {
        self.with(api, |c| c.resource_units += units);
    }

    pub(crate) fn snapshot(&self) -> Counters {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The endpoint class of a request: method plus path with ids replaced by `{id}`, query dropped.
/// Graph ids are recognised by shape (GUIDs, UPNs, numbers, `key(...)` segments); ARM paths
/// alternate collection/name, with `providers/<namespace>` kept whole.
pub(crate) fn endpoint_class(api: Api, method: &str, path: &str) -> String {
    let segments = path.split('/').filter(|s| !s.is_empty());
    let mut class = String::new();
    match api {
        Api::Graph => {
            for segment in segments {
                class.push('/');
                class.push_str(&graph_segment_class(segment));
            }
        }
        Api::Arm => {
            let mut next_is_name = false;
            let mut keep_next = false;
            for segment in segments {
                class.push('/');
                if keep_next {
                    class.push_str(segment);
                    keep_next = false;
                } else if next_is_name {
                    class.push_str("{id}");
                    next_is_name = false;
                } else if segment.eq_ignore_ascii_case("providers") {
                    class.push_str(segment);
                    keep_next = true; // the namespace, e.g. Microsoft.Authorization
                } else {
                    class.push_str(segment);
                    next_is_name = true;
                }
            }
        }
    }
    if class.is_empty() {
        class.push('/');
    }
    format!("{method} {class}")
}

fn graph_segment_class(segment: &str) -> String {
    if let Some(open) = segment.find('(') {
        // Key or function syntax: servicePrincipals(appId='...'), delta(token='...').
        return format!("{}({{id}})", &segment[..open]);
    }
    let is_guid = uuid::Uuid::try_parse(segment).is_ok();
    let is_number = segment.bytes().all(|b| b.is_ascii_digit());
    let is_upn = segment.contains('@') || segment.contains("%40");
    if is_guid || is_number || is_upn {
        "{id}".to_owned()
    } else {
        segment.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_ids_are_replaced_and_names_kept() {
        let class = |path| endpoint_class(Api::Graph, "GET", path);
        assert_eq!(class("/v1.0/groups/delta"), "GET /v1.0/groups/delta");
        assert_eq!(
            class("/v1.0/groups/0b6d6f6e-8c1a-4b8e-9a7e-3f2d1c0b9a88/members"),
            "GET /v1.0/groups/{id}/members"
        );
        assert_eq!(
            class("/v1.0/users/adele%40contoso.com/mailboxSettings"),
            "GET /v1.0/users/{id}/mailboxSettings"
        );
        assert_eq!(
            class("/v1.0/servicePrincipals(appId='abc')"),
            "GET /v1.0/servicePrincipals({id})"
        );
    }

    #[test]
    fn arm_names_are_replaced_and_provider_namespaces_kept() {
        assert_eq!(
            endpoint_class(
                Api::Arm,
                "GET",
                "/subscriptions/s1/resourceGroups/rg-prod/providers/Microsoft.Authorization/roleAssignments"
            ),
            "GET /subscriptions/{id}/resourceGroups/{id}/providers/Microsoft.Authorization/roleAssignments"
        );
        assert_eq!(
            endpoint_class(
                Api::Arm,
                "PUT",
                "/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/roleAssignments/ra1"
            ),
            "PUT /providers/Microsoft.Management/managementGroups/{id}/providers/Microsoft.Authorization/roleAssignments/{id}"
        );
        assert_eq!(endpoint_class(Api::Arm, "GET", ""), "GET /");
    }
}
