//! Talking to Microsoft: the token provider (`azure_identity`), one HTTP pipeline for Graph and
//! ARM (bounded concurrency, retries with jittered backoff, `Retry-After`, a per-API request
//! budget, request and resource-unit counters), Graph paging, delta and `$batch`, and ARM paging.
//!
pub mod error;
pub use error::{ApiError, BatchRequest, BatchResponse};

// CONTRACT (the feeds and the engine are written against exactly this surface; the azure
// helper implements it and may add to it, but not change it without telling the lead):
//
// ```ignore
// pub struct Endpoints { pub authority_host: Url, pub graph: Url /* https://graph.microsoft.com */, pub arm: Url }
// pub enum Credential { ClientSecret { tenant_id, client_id, client_secret: Secret }, ManagedIdentity { client_id: Option<String> }, WorkloadIdentity, AzureCli }
// pub struct ClientConfig { endpoints, credential, extra_ca_pem: Option<Vec<u8>>, graph_requests_per_minute: Option<u32>, arm_requests_per_minute: Option<u32>, max_concurrency: usize, ... }
//
// #[derive(Clone)] pub struct AzureClient { .. }   // cheap to clone (Arc inside)
// impl AzureClient {
//     pub async fn new(config: ClientConfig) -> Result<AzureClient, ApiError>;
//     /// Fetches a token for Graph and ARM once: a wrong secret or tenant fails here, clearly.
//     pub async fn check_credentials(&self) -> Result<(), ApiError>;
//     /// GET a Graph URL: a path+query relative to the Graph root ("/v1.0/users?$top=999") or an
//     /// absolute nextLink/deltaLink as Graph returned it (replayed unchanged).
//     pub async fn graph_get(&self, url: &str, headers: &[(&str, &str)]) -> Result<serde_json::Value, ApiError>;
//     /// Up to 20 requests in one `$batch`; each answer keeps its own status and body.
//     pub async fn graph_batch(&self, requests: Vec<BatchRequest>) -> Result<Vec<BatchResponse>, ApiError>;
//     /// GET an ARM URL (path+query relative to the ARM endpoint, or an absolute nextLink).
//     pub async fn arm_get(&self, url: &str) -> Result<serde_json::Value, ApiError>;
//     pub async fn arm_put(&self, url: &str, body: &serde_json::Value) -> Result<serde_json::Value, ApiError>;
//     pub async fn arm_delete(&self, url: &str) -> Result<(), ApiError>;
//     pub async fn graph_post / graph_delete (provisioning writes)
//     pub fn counters(&self) -> Counters;   // requests per API and per endpoint class, Graph RU, 429s, retries
// }
// pub struct BatchRequest { pub id: String, pub url: String /* relative to the version root: "/users/{id}/mailboxSettings" */, pub headers: Vec<(String,String)> }
// pub struct BatchResponse { pub id: String, pub status: u16, pub body: serde_json::Value, pub retry_after: Option<Duration> }
//
// /// Errors say what the caller should do.
// pub enum ApiError {
//     /// 400 syncStateNotFound, 410 Gone (with the Location URL), or resyncRequired: re-baseline this feed.
//     DeltaTokenExpired { location: Option<String> },
//     /// 404.
//     NotFound { code: String, message: String },
//     /// 403 (permission missing).
//     Forbidden { code: String, message: String },
//     /// AadPremiumLicenseRequired (or similar): turn the P2 feeds off.
//     LicenseRequired { message: String },
//     /// Token acquisition failed (wrong secret, tenant, client id): not retryable.
//     Authentication { message: String },
//     /// Retries exhausted on 429/5xx/timeouts/dropped connections.
//     Unavailable { message: String },
//     /// Anything else (bad request, malformed body): not retryable.
//     Other { status: Option<u16>, code: String, message: String },
// }
// impl ApiError { pub fn is_retryable(&self) -> bool }
// ```
