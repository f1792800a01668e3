//! ConductorOne access tokens: a signed client assertion POSTed to
//! `https://<host>/auth/v1/token` (form: `client_id`, `grant_type=client_credentials`,
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`,
//! `client_assertion`), as baton-sdk's `c1TokenSource` does; the token is cached and fetched
//! again shortly before it expires.
//!
//! A refused assertion (400 or 401: a wrong or revoked secret) is [`TokenError::Rejected`] and
//! is not worth retrying; anything else (network, 5xx) is [`TokenError::Unavailable`].

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::credentials::ClientCredentials;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A token is fetched again this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime assumed for a token whose response gives none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "ConductorOne refused the connector's credentials (HTTP {status}{detail}): check \
         --client-id and --client-secret (BATON_CLIENT_ID, BATON_CLIENT_SECRET)"
    )]
    Rejected { status: u16, detail: String },
    #[error("ConductorOne's token endpoint is unavailable: {0}")]
    Unavailable(String),
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    /// Go's oauth2.Token field, which baton-sdk decodes the response into.
    #[serde(default)]
    expiry: Option<String>,
}

#[derive(serde::Deserialize)]
struct OAuthError {
    error: String,
}

struct Cached {
    header: String,
    refresh_at: Instant,
}

pub struct TokenSource {
    credentials: ClientCredentials,
    url: String,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    /// `api_host` is where the endpoint lives (`host[:port]`).
    pub fn new(credentials: ClientCredentials, api_host: &str, http: reqwest::Client) -> Self {
        TokenSource {
            credentials,
            url: format!("https://{api_host}/auth/v1/token"),
            http,
            cached: Mutex::new(None),
        }
    }

    /// The `authorization` header value, fetched again when the cached token is near expiry.
    pub async fn authorization(&self) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.header.clone());
        }
        let fresh = self.fetch().await?;
        let header = fresh.header.clone();
        *cached = Some(fresh);
        Ok(header)
    }

    /// Forgets the cached token, e.g. after the API answered `UNAUTHENTICATED`.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<Cached, TokenError> {
        let now = time::OffsetDateTime::now_utc();
        let form = [
            ("client_id", self.credentials.client_id().to_string()),
            ("grant_type", "client_credentials".to_string()),
            ("client_assertion_type", ASSERTION_TYPE.to_string()),
            (
                "client_assertion",
                self.credentials.assertion(now.unix_timestamp()),
            ),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let response = self
            .http
            .post(&self.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| TokenError::Unavailable(format!("{}: {}", self.url, e.without_url())))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenError::Unavailable(e.without_url().to_string()))?;
        if status == reqwest::StatusCode::BAD_REQUEST || status == reqwest::StatusCode::UNAUTHORIZED
        {
            let detail = serde_json::from_slice::<OAuthError>(&body)
                .map(|e| format!(", {}", e.error))
                .unwrap_or_default();
            return Err(TokenError::Rejected {
                status: status.as_u16(),
                detail,
            });
        }
        if !status.is_success() {
            return Err(TokenError::Unavailable(format!(
                "{} answered HTTP {status}",
                self.url
            )));
        }
        let token: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
            TokenError::Unavailable(format!(
                "{} answered a body that is not a token: {e}",
                self.url
            ))
        })?;
        let expiry = token.expiry.as_deref().and_then(|e| {
            time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok()
        });
        let lifetime = match (token.expires_in, expiry) {
            (Some(seconds), _) => Duration::from_secs(seconds),
            (None, Some(expiry)) => Duration::try_from(expiry - now).unwrap_or(Duration::ZERO),
            (None, None) => DEFAULT_LIFETIME,
        };
        let token_type = match token.token_type.as_deref() {
            None | Some("") => "Bearer".to_string(),
            Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
            Some(t) => t.to_string(),
        };
        Ok(Cached {
            header: format!("{token_type} {}", token.access_token),
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN),
        })
    }
}
