//! What can go wrong when talking to Microsoft, classified by what the caller should do next.

use std::time::Duration;

/// An API failure after the pipeline's own retries. Each variant says what to do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// Graph no longer accepts this delta link (400 `syncStateNotFound`, 410 Gone with a
    /// `Location` for a fresh start, or `resyncRequired`): re-baseline this one feed.
    #[error("delta token expired or rejected; the feed must be re-read from scratch")]
    DeltaTokenExpired { location: Option<String> },
    /// 404: the object or endpoint does not exist (or, for mailboxSettings, has no mailbox).
    #[error("not found ({code}): {message}")]
    NotFound { code: String, message: String },
    /// 403: the app lacks a permission, or a policy blocks it.
    #[error("forbidden ({code}): {message}")]
    Forbidden { code: String, message: String },
    /// The tenant lacks the licence a feature needs (`AadPremiumLicenseRequired`): turn the
    /// feeds that need it off.
    #[error("the tenant lacks the licence this call needs: {message}")]
    LicenseRequired { message: String },
    /// Getting a token failed (wrong secret, tenant or client id): not retryable.
    #[error("authentication failed: {message}")]
    Authentication { message: String },
    /// Retries were exhausted on throttling, server errors, timeouts or dropped connections.
    #[error("service unavailable after retries: {message}")]
    Unavailable { message: String },
    /// Anything else (a bad request, a malformed body): not retryable.
    #[error("request failed (status {status:?}, {code}): {message}")]
    Other {
        status: Option<u16>,
        code: String,
        message: String,
    },
}

impl ApiError {
    /// Whether the same request may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ApiError::Unavailable { .. })
    }
}

/// One request inside a Graph `$batch`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchRequest {
    /// Unique within the batch; answers are matched by it.
    pub id: String,
    /// Relative to the version root, e.g. `/users/{id}/mailboxSettings`.
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// One answer inside a Graph `$batch` response: each request has its own status.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchResponse {
    pub id: String,
    pub status: u16,
    pub body: serde_json::Value,
    /// Set when this one request was throttled (429) and should be retried after this long.
    pub retry_after: Option<Duration>,
}
