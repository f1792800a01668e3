//! The one HTTP pipeline for Graph and ARM. Per request: wait for the API's budget (throttle
//! gate, token bucket), take a concurrency slot, attach a bearer token, send, classify the
//! answer, and retry what is transient:
//!
//! - 429, 509, Graph's throttling error codes, and 503 with `Retry-After`: close the API's
//!   throttle gate for that long (all requests pause), slow its bucket, retry;
//! - 500/502/504/503, dropped connections, timeouts, unreadable 2xx bodies: jittered exponential
//!   backoff, retry (requests that are not idempotent are only retried when the request
//!   provably never reached the server: a connect error or a throttling answer);
//! - 401: renew the token once and retry;
//! - after `max_attempts`: `ApiError::Unavailable`.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use url::Url;

use super::auth::TokenProvider;
use super::budget::Budget;
use super::config::is_loopback;
use super::counters::{Api, CounterSet, Counters, endpoint_class};
use super::response::{Verdict, classify};
use super::{ApiError, ClientConfig, RetryPolicy};

/// Per-API state: where it lives, its token audience, its concurrency and budget.
struct Lane {
    base: Url,
    scope: String,
    slots: Semaphore,
    budget: Budget,
}

pub(crate) struct Pipeline {
    http: reqwest::Client,
    auth: TokenProvider,
    graph: Lane,
    arm: Lane,
    retry: RetryPolicy,
    counters: CounterSet,
}

/// One logical request (retries included).
pub(crate) struct Call<'a> {
    pub(crate) api: Api,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: &'a [(&'a str, &'a str)],
    pub(crate) body: Option<&'a Value>,
    /// Safe to repeat after an unknown outcome (GET, PUT, DELETE, a `$batch` of GETs).
    pub(crate) idempotent: bool,
}

/// What the pipeline does after one exchange.
enum Step {
    Done(Result<Reply, ApiError>),
    /// 401: renew the token and try again, once; after that, fail with this error.
    RenewToken(ApiError),
    /// Transient failure: try again after `delay` (plus any budget wait).
    Retry {
        reason: String,
        delay: Duration,
    },
}

/// A successful answer.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Value,
    /// `x-ms-resource-unit` of this answer, when Graph sent it.
    pub(crate) resource_units: Option<u64>,
    /// Microsoft's id of this request ([`request_id`]), for support cases.
    pub(crate) request_id: Option<String>,
}

/// A failed request with Microsoft's id of its last exchange, when the API sent one.
pub(crate) struct Failure {
    pub(crate) error: ApiError,
    pub(crate) request_id: Option<String>,
}

impl Pipeline {
    pub(crate) fn new(config: &ClientConfig) -> Result<Self, ApiError> {
        config.validate()?;
        let http = http_client(config)?;
        let auth = TokenProvider::new(config, http.clone())?;
        let lane = |base: &Url, scope: String, rpm: Option<u32>| Lane {
            base: base.clone(),
            scope,
            slots: Semaphore::new(config.max_concurrency),
            budget: Budget::new(rpm),
        };
        let endpoints = &config.endpoints;
        Ok(Pipeline {
            graph: lane(
                &endpoints.graph,
                endpoints.graph_scope(),
                config.graph_requests_per_minute,
            ),
            arm: lane(
                &endpoints.arm,
                endpoints.arm_scope(),
                config.arm_requests_per_minute,
            ),
            http,
            auth,
            retry: config.retry.clone(),
            counters: CounterSet::default(),
        })
    }

    fn lane(&self, api: Api) -> &Lane {
        match api {
            Api::Graph => &self.graph,
            Api::Arm => &self.arm,
        }
    }

    pub(crate) fn base(&self, api: Api) -> &Url {
        &self.lane(api).base
    }

    /// Fetches a token for both audiences: a wrong secret, tenant or client id fails here.
    pub(crate) async fn check_credentials(&self) -> Result<(), ApiError> {
        for api in [Api::Graph, Api::Arm] {
            self.auth.token(&self.lane(api).scope).await?;
        }
        Ok(())
    }

    /// Turns a caller's URL into an absolute one on this API's host. Relative URLs are
    /// `path?query` under the API root; absolute ones (nextLink, deltaLink, Location) are
    /// replayed unchanged when they point at the endpoint's origin (host names compare
    /// ignoring case). A bearer token goes with them, so any other origin is refused, except
    /// two that still mean "the configured endpoint" (see [`rebased`]).
    pub(crate) fn resolve(&self, api: Api, url: &str) -> Result<Url, ApiError> {
        let base = &self.lane(api).base;
        if url.starts_with("https://") || url.starts_with("http://") {
            let absolute = Url::parse(url).map_err(|e| bad_url(url, &e.to_string()))?;
            if absolute.origin() == base.origin() {
                return Ok(absolute);
            }
            if let Some(rebased) = rebased(api, base, &absolute) {
                tracing::debug!(%api, link = %absolute, endpoint = %base, "following a link on the configured endpoint");
                return Ok(rebased);
            }
            return Err(bad_url(
                url,
                &format!(
                    "it points outside the {api} endpoint {}; refusing to send a token there",
                    base.origin().ascii_serialization()
                ),
            ));
        }
        if !url.starts_with('/') {
            return Err(bad_url(
                url,
                "expected a path starting with '/' or an absolute URL",
            ));
        }
        let joined = format!("{}{url}", base.as_str().trim_end_matches('/'));
        Url::parse(&joined).map_err(|e| bad_url(url, &e.to_string()))
    }

    pub(crate) fn throttled(&self, api: Api, retry_after: Duration, count: u64) {
        self.counters.throttled(api, count);
        self.lane(api).budget.throttled(retry_after);
    }

    pub(crate) fn count_resource_units(&self, api: Api, units: u64) {
        self.counters.resource_units(api, units);
    }

    pub(crate) fn counters(&self) -> Counters {
        let mut snapshot = self.counters.snapshot();
        snapshot.graph.effective_requests_per_minute =
            self.graph.budget.effective_requests_per_minute();
        snapshot.arm.effective_requests_per_minute =
            self.arm.budget.effective_requests_per_minute();
        snapshot
    }

    pub(crate) async fn send(&self, call: Call<'_>) -> Result<Reply, ApiError> {
        self.send_traced(call)
            .await
            .map_err(|failure| failure.error)
    }

    /// [`Pipeline::send`], keeping Microsoft's request id of the last exchange on failure too
    /// (what a provisioning error must quote).
    pub(crate) async fn send_traced(&self, call: Call<'_>) -> Result<Reply, Failure> {
        let mut request_id = None;
        let fail = |error: ApiError, request_id: &Option<String>| Failure {
            error,
            request_id: request_id.clone(),
        };
        let lane = self.lane(call.api);
        let endpoint = endpoint_class(call.api, call.method.as_str(), call.url.path());
        let mut attempt: u32 = 1;
        let mut token_renewed = false;
        loop {
            let waited = lane.budget.acquire().await;
            let token = self
                .auth
                .token(&lane.scope)
                .await
                .map_err(|e| fail(e, &request_id))?;
            self.counters.attempt(call.api, &endpoint, waited);
            let started = Instant::now();
            let exchanged = {
                let _slot = lane.slots.acquire().await.map_err(|_| {
                    fail(
                        ApiError::Other {
                            status: None,
                            code: "ClientClosed".into(),
                            message: "the HTTP pipeline was shut down".into(),
                        },
                        &request_id,
                    )
                })?;
                self.exchange(&call, &token.value).await
            };
            let elapsed_ms = started.elapsed().as_millis();
            if let Ok((_, headers, _)) = &exchanged {
                request_id = self::request_id(headers);
            }
            match exchanged {
                Ok((status, ..)) => {
                    tracing::debug!(api = %call.api, %endpoint, status, elapsed_ms, attempt, "azure request");
                }
                Err(ref failure) => {
                    tracing::debug!(api = %call.api, %endpoint, elapsed_ms, attempt, error = %failure.message, "azure request failed");
                }
            }

            match self.next_step(&call, &endpoint, attempt, exchanged) {
                Step::Done(result) => return result.map_err(|e| fail(e, &request_id)),
                Step::RenewToken(error) => {
                    if token_renewed {
                        return Err(fail(error, &request_id));
                    }
                    token_renewed = true;
                    self.auth
                        .renew(token.generation)
                        .map_err(|e| fail(e, &request_id))?;
                    self.counters.retry(call.api);
                    tracing::info!(api = %call.api, %endpoint, "401 from the API; renewing the token once");
                }
                Step::Retry { reason, delay } => {
                    if attempt >= self.retry.max_attempts {
                        return Err(fail(
                            ApiError::Unavailable {
                                message: format!(
                                    "{endpoint}: gave up after {attempt} attempts; last: {reason}"
                                ),
                            },
                            &request_id,
                        ));
                    }
                    attempt += 1;
                    self.counters.retry(call.api);
                    tracing::info!(api = %call.api, %endpoint, attempt, delay_ms = delay.as_millis(), %reason, "retrying azure request");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Decides what follows one exchange, and records its outcome in the counters and budget.
    fn next_step(
        &self,
        call: &Call<'_>,
        endpoint: &str,
        attempt: u32,
        exchanged: Result<(u16, HeaderMap, bytes::Bytes), TransportFailure>,
    ) -> Step {
        let not_repeatable = |reason: &str| {
            Step::Done(Err(ApiError::Unavailable {
                message: format!(
                    "{endpoint}: {reason} (not retried: the request may have been applied)"
                ),
            }))
        };
        let (status, headers, bytes) = match exchanged {
            Ok(answer) => answer,
            Err(failure) => {
                self.counters.transport_error(call.api);
                if !call.idempotent && !failure.never_sent {
                    return not_repeatable(&failure.message);
                }
                return Step::Retry {
                    reason: failure.message,
                    delay: backoff(&self.retry, attempt),
                };
            }
        };
        self.counters.status(call.api, status);
        let resource_units = resource_units(&headers);
        if let Some(units) = resource_units {
            self.counters.resource_units(call.api, units);
        }
        match classify(status, &headers, &bytes) {
            Verdict::Success(body) => {
                self.lane(call.api).budget.succeeded();
                Step::Done(Ok(Reply {
                    status,
                    body,
                    resource_units,
                    request_id: request_id(&headers),
                }))
            }
            Verdict::Failed(error) => Step::Done(Err(error)),
            Verdict::Unauthorized(error) => Step::RenewToken(error),
            Verdict::Throttled {
                retry_after,
                reason,
            } => {
                let wait = retry_after.unwrap_or_else(|| backoff(&self.retry, attempt));
                if wait > self.retry.max_retry_after {
                    return Step::Done(Err(ApiError::Unavailable {
                        message: format!(
                            "{endpoint}: {reason}; asked to wait {}s, more than the {}s allowed",
                            wait.as_secs(),
                            self.retry.max_retry_after.as_secs()
                        ),
                    }));
                }
                // The closed gate makes this and every other request to the API wait, so the
                // retry itself needs no extra delay.
                // A 503 is an outage that asked for a pause; everything else here is throttling.
                self.throttled(call.api, wait, u64::from(status != 503));
                Step::Retry {
                    reason,
                    delay: Duration::ZERO,
                }
            }
            Verdict::Transient { reason } if !call.idempotent => not_repeatable(&reason),
            Verdict::Transient { reason } => Step::Retry {
                reason,
                delay: backoff(&self.retry, attempt),
            },
        }
    }

    /// One HTTP exchange, body read in full.
    async fn exchange(
        &self,
        call: &Call<'_>,
        token: &super::Secret,
    ) -> Result<(u16, HeaderMap, bytes::Bytes), TransportFailure> {
        let mut request = self
            .http
            .request(call.method.clone(), call.url.clone())
            // bearer_auth marks the header sensitive, so no Debug of the request shows it.
            .bearer_auth(token.expose())
            .header(ACCEPT, "application/json");
        for (name, value) in call.headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = call.body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| TransportFailure::from_reqwest(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| TransportFailure::from_reqwest(&e))?;
        Ok((status, headers, bytes))
    }
}

/// Exponential backoff with "equal jitter": half the step fixed, half random, so retries from
/// many requests spread out but never fire immediately.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(20);
    let step = policy
        .base_delay
        .saturating_mul(1 << exponent)
        .min(policy.max_delay);
    let half = step / 2;
    half + half.mul_f64(rand::random_range(0.0..=1.0))
}

struct TransportFailure {
    message: String,
    /// The request certainly did not reach the server (connection refused, TLS failure).
    never_sent: bool,
}

impl TransportFailure {
    fn from_reqwest(error: &reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            "timed out"
        } else if error.is_connect() {
            "could not connect"
        } else if error.is_body() || error.is_decode() {
            "response body cut short"
        } else {
            "connection failed"
        };
        // Without the URL: it can be long, and nothing in it helps more than the endpoint class.
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            detail = format!("{detail}: {inner}");
            source = inner.source();
        }
        let detail = detail.replace(error.url().map_or("", Url::as_str), "<url>");
        TransportFailure {
            message: format!("{kind} ({detail})"),
            never_sent: error.is_connect(),
        }
    }
}

/// Microsoft's id of one request: Graph's `request-id`, ARM's `x-ms-request-id` (Graph
/// "Microsoft Graph error responses and resource types"; ARM "Request and response headers").
fn request_id(headers: &HeaderMap) -> Option<String> {
    ["request-id", "x-ms-request-id"]
        .iter()
        .find_map(|name| headers.get(*name)?.to_str().ok())
        .map(str::to_owned)
}

fn resource_units(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get("x-ms-resource-unit")?.to_str().ok()?.trim();
    value
        .parse::<u64>()
        .ok()
        .or_else(|| value.parse::<f64>().ok().map(|v| v.round().max(0.0) as u64))
}

fn http_client(config: &ClientConfig) -> Result<reqwest::Client, ApiError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10).min(config.request_timeout))
        .timeout(config.request_timeout)
        .user_agent(concat!(
            env!("CARGO_PKG_NAME"),
            "/",
            env!("CARGO_PKG_VERSION")
        ));
    if let Some(pem) = &config.extra_ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            super::config::config_error(format!("extra_ca_pem is not valid PEM: {e}"))
        })?;
        if certs.is_empty() {
            return Err(super::config::config_error(
                "extra_ca_pem holds no certificate".into(),
            ));
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| super::config::config_error(format!("cannot build the HTTP client: {e}")))
}

/// The public hosts of each API in Microsoft's clouds (graph-delta.md, section 8).
const GRAPH_HOSTS: [&str; 4] = [
    "graph.microsoft.com",
    "graph.microsoft.us",
    "dod-graph.microsoft.us",
    "microsoftgraph.chinacloudapi.cn",
];
const ARM_HOSTS: [&str; 3] = [
    "management.azure.com",
    "management.usgovcloudapi.net",
    "management.chinacloudapi.cn",
];

/// A link on another origin that still addresses the configured endpoint, moved onto it:
///
/// - a link on the API's public Microsoft host (Graph and ARM write their nextLinks and
///   deltaLinks on it) while the endpoint is elsewhere (a tenant emulator, a proxy): its path
///   goes under the endpoint's root;
/// - a link naming the same loopback server by another name (`localhost` for `127.0.0.1`, same
///   scheme and port): its path is already the server's.
///
/// The token still goes only to the configured endpoint. Any other host gives `None`.
fn rebased(api: Api, base: &Url, link: &Url) -> Option<Url> {
    let host = link.host_str()?;
    let public = match api {
        Api::Graph => GRAPH_HOSTS.as_slice(),
        Api::Arm => ARM_HOSTS.as_slice(),
    };
    let mut moved = base.clone();
    if public.iter().any(|p| host.eq_ignore_ascii_case(p)) {
        let root = base.path().trim_end_matches('/');
        moved.set_path(&format!("{root}{}", link.path()));
    } else if is_loopback(link)
        && is_loopback(base)
        && link.scheme() == base.scheme()
        && link.port_or_known_default() == base.port_or_known_default()
    {
        moved.set_path(link.path());
    } else {
        return None;
    }
    moved.set_query(link.query());
    Some(moved)
}

fn bad_url(url: &str, why: &str) -> ApiError {
    ApiError::Other {
        status: None,
        code: "InvalidUrl".into(),
        message: format!("bad request URL {url:?}: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stays_under_the_cap() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        for (attempt, step_ms) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (60, 1000),
        ] {
            for _ in 0..50 {
                let delay = backoff(&policy, attempt).as_millis();
                assert!(
                    (step_ms / 2..=step_ms).contains(&delay),
                    "attempt {attempt}: {delay} ms"
                );
            }
        }
    }
}
