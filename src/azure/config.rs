//! What the client needs to know: where Microsoft lives (endpoints per cloud), how to sign in
//! (credential), and how hard it may push (budgets, concurrency, retries, timeouts).

use std::time::Duration;

use url::Url;

use super::{ApiError, Secret};

/// The three roots the client talks to. National clouds and local test servers differ only here.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Entra ID token authority, e.g. `https://login.microsoftonline.com`. Must be https
    /// (`azure_identity` refuses anything else).
    pub authority_host: Url,
    /// Graph root without the version, e.g. `https://graph.microsoft.com`.
    pub graph: Url,
    /// Azure Resource Manager root, e.g. `https://management.azure.com`.
    pub arm: Url,
}

/// URLs as text (`Url`'s own `Debug` spells out every component), with the token scopes.
impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("authority_host", &self.authority_host.as_str())
            .field("graph", &self.graph.as_str())
            .field("arm", &self.arm.as_str())
            .field("graph_scope", &self.graph_scope())
            .field("arm_scope", &self.arm_scope())
            .finish()
    }
}

impl Endpoints {
    /// Microsoft's global cloud.
    pub fn public() -> Self {
        Self::from_static(
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
            "https://management.azure.com",
        )
    }

    /// Azure Government (US).
    pub fn us_government() -> Self {
        Self::from_static(
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
            "https://management.usgovcloudapi.net",
        )
    }

    /// Azure operated by 21Vianet (China).
    pub fn china() -> Self {
        Self::from_static(
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://management.chinacloudapi.cn",
        )
    }

    fn from_static(authority: &str, graph: &str, arm: &str) -> Self {
        // These literals are valid URLs; a parse failure here is a typo caught by the unit test.
        let parse = |s: &str| Url::parse(s).unwrap_or_else(|e| panic!("built-in URL {s}: {e}"));
        Endpoints {
            authority_host: parse(authority),
            graph: parse(graph),
            arm: parse(arm),
        }
    }

    /// The OAuth scope for Graph tokens: `<graph origin>/.default`.
    pub fn graph_scope(&self) -> String {
        format!("{}/.default", self.graph.origin().ascii_serialization())
    }

    /// The OAuth scope for ARM tokens: `<arm origin>/.default`.
    pub fn arm_scope(&self) -> String {
        format!("{}/.default", self.arm.origin().ascii_serialization())
    }

    /// Https everywhere; plain http only for loopback API roots (local test servers). Tokens are
    /// sent to these hosts, so a typo'd `http://` to a real host must fail loudly.
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        if self.authority_host.scheme() != "https" {
            return Err(config_error(format!(
                "authority host {} must use https",
                self.authority_host
            )));
        }
        for (name, url) in [("graph", &self.graph), ("arm", &self.arm)] {
            match url.scheme() {
                "https" => {}
                "http" if is_loopback(url) => {}
                other => {
                    return Err(config_error(format!(
                        "{name} endpoint {url} uses {other}; only https (or http on loopback) is allowed"
                    )));
                }
            }
            if url.query().is_some() || url.cannot_be_a_base() {
                return Err(config_error(format!(
                    "{name} endpoint {url} must be a plain base URL without a query"
                )));
            }
        }
        Ok(())
    }
}

/// Whether `url` names this machine (`127.0.0.0/8`, `::1` or `localhost`).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// How to get tokens. Mirrors the credentials the existing connector's default chain allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An app registration's client secret.
    ClientSecret {
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
    },
    /// The managed identity of the host (system-assigned, or user-assigned by client id).
    ManagedIdentity { client_id: Option<String> },
    /// Kubernetes workload identity: `AZURE_FEDERATED_TOKEN_FILE` from the environment, as the
    /// webhook injects it; the ids, when set, override the pod's `AZURE_TENANT_ID` and
    /// `AZURE_CLIENT_ID`.
    WorkloadIdentity {
        tenant_id: Option<String>,
        client_id: Option<String>,
    },
    /// The signed-in Azure CLI (`az account get-access-token`), for local runs; `tenant_id`
    /// picks another tenant than the CLI's default one.
    AzureCli { tenant_id: Option<String> },
}

/// Retry behaviour for transient failures (5xx, 429, dropped connections, timeouts).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts per request including the first; after the last, the error is `Unavailable`.
    pub max_attempts: u32,
    /// First backoff step; each further step doubles, with jitter, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` we agree to wait; a longer one fails the request as
    /// `Unavailable` at once instead of stalling the worker.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// Everything [`super::AzureClient::new`] needs.
#[derive(Clone)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    pub credential: Credential,
    /// Extra trusted root certificates (PEM, one or more), added to the platform roots; used for
    /// the token authority, Graph and ARM alike.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Request budget per minute for Graph; `None` = only Microsoft's own throttling limits us.
    pub graph_requests_per_minute: Option<u32>,
    /// Request budget per minute for ARM; `None` = unlimited.
    pub arm_requests_per_minute: Option<u32>,
    /// Requests in flight at once, per API (Graph and ARM each get this many).
    pub max_concurrency: usize,
    pub retry: RetryPolicy,
    /// Whole-request timeout (connect + headers + body); a timeout is retried.
    pub request_timeout: Duration,
}

/// Like a derived Debug, but the CA bundle shows as its size, not as a list of bytes.
impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoints", &self.endpoints)
            .field("credential", &self.credential)
            .field(
                "extra_ca_pem",
                &self
                    .extra_ca_pem
                    .as_ref()
                    .map(|pem| format!("{} bytes of PEM", pem.len())),
            )
            .field("graph_requests_per_minute", &self.graph_requests_per_minute)
            .field("arm_requests_per_minute", &self.arm_requests_per_minute)
            .field("max_concurrency", &self.max_concurrency)
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl ClientConfig {
    /// Defaults: no budget, 8 requests in flight per API, 60 s timeout, [`RetryPolicy::default`].
    pub fn new(endpoints: Endpoints, credential: Credential) -> Self {
        ClientConfig {
            endpoints,
            credential,
            extra_ca_pem: None,
            graph_requests_per_minute: None,
            arm_requests_per_minute: None,
            max_concurrency: 8,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(60),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        self.endpoints.validate()?;
        if self.max_concurrency == 0 {
            return Err(config_error("max_concurrency must be at least 1".into()));
        }
        if self.retry.max_attempts == 0 {
            return Err(config_error("retry.max_attempts must be at least 1".into()));
        }
        if self.graph_requests_per_minute == Some(0) || self.arm_requests_per_minute == Some(0) {
            return Err(config_error(
                "a requests-per-minute budget of 0 would block every request; leave it unset for unlimited"
                    .into(),
            ));
        }
        Ok(())
    }
}

pub(crate) fn config_error(message: String) -> ApiError {
    ApiError::Other {
        status: None,
        code: "InvalidClientConfig".into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_clouds_are_valid_and_scopes_use_their_roots() {
        for endpoints in [
            Endpoints::public(),
            Endpoints::us_government(),
            Endpoints::china(),
        ] {
            endpoints.validate().unwrap();
        }
        let us = Endpoints::us_government();
        assert_eq!(us.graph_scope(), "https://graph.microsoft.us/.default");
        assert_eq!(
            us.arm_scope(),
            "https://management.usgovcloudapi.net/.default"
        );
    }

    #[test]
    fn plain_http_is_refused_except_on_loopback() {
        let mut endpoints = Endpoints::public();
        endpoints.graph = Url::parse("http://graph.example.com").unwrap();
        let err = endpoints.validate().unwrap_err();
        assert!(err.to_string().contains("graph endpoint"), "{err}");
        endpoints.graph = Url::parse("http://127.0.0.1:8080").unwrap();
        endpoints.validate().unwrap();
        endpoints.authority_host = Url::parse("http://127.0.0.1:8080").unwrap();
        assert!(endpoints.validate().is_err());
    }
}
