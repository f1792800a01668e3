//! The emulated Microsoft identity platform token endpoint (`POST /{tenant}/oauth2/v2.0/token`,
//! client credentials grant) and the validation of the bearer tokens it hands out.
//!
//! Tokens are bound to one audience (Graph or ARM) chosen by the `scope`, exactly as Entra ID does:
//! all scopes of one request must name a single resource, and that resource's APIs accept only
//! tokens issued for it. Expiry follows the emulator clock, so tests can age tokens with
//! `advance_clock`. Error bodies follow the documented shape (`error`, `error_description` with
//! the AADSTS code, `error_codes`, `timestamp`, `trace_id`, `correlation_id`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use time::OffsetDateTime;

/// Which API a token was issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    Graph,
    Arm,
}

impl Audience {
    /// The `aud` claim Entra ID puts in tokens for this resource.
    pub fn claim(self) -> &'static str {
        match self {
            Audience::Graph => "https://graph.microsoft.com",
            Audience::Arm => "https://management.azure.com/",
        }
    }
}

/// Returns the emulator's current time (the emulator clock, which tests can move forward).
pub type NowFn = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The one application registered in the emulated tenant, and the URLs that name its two APIs.
pub struct AppRegistration {
    pub tenant_id: String,
    /// Verified domain names, accepted in the token URL like the tenant id.
    pub tenant_domains: Vec<String>,
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of issued tokens.
    pub lifetime: Duration,
    /// URLs whose `/.default` scope selects the Graph audience (the emulator's Graph listener
    /// and the public cloud names).
    pub graph_roots: Vec<String>,
    /// The same for ARM.
    pub arm_roots: Vec<String>,
}

/// Issues and checks tokens for the registered application.
pub struct TokenIssuer {
    tenant_id: String,
    /// Lower-case tenant id and verified domain names: all may appear in the token URL.
    tenant_aliases: Vec<String>,
    client_id: String,
    client_secret: String,
    lifetime: Duration,
    /// Resource identifiers (without `/.default`, without trailing slash) per audience.
    resources: Vec<(String, Audience)>,
    clock: NowFn,
    issued: Mutex<HashMap<String, IssuedToken>>,
}

#[derive(Clone, Copy)]
struct IssuedToken {
    audience: Audience,
    expires_at: OffsetDateTime,
}

/// Why a bearer token was refused; the Graph and ARM layers render it in their own shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Unknown,
    Expired {
        expired_at: OffsetDateTime,
        now: OffsetDateTime,
    },
    WrongAudience {
        audience: &'static str,
    },
}

impl TokenIssuer {
    pub fn new(registration: AppRegistration, clock: NowFn) -> TokenIssuer {
        let AppRegistration {
            tenant_id,
            tenant_domains,
            client_id,
            client_secret,
            lifetime,
            graph_roots,
            arm_roots,
        } = registration;
        let mut tenant_aliases: Vec<String> = tenant_domains
            .into_iter()
            .map(|d| d.to_ascii_lowercase())
            .collect();
        tenant_aliases.push(tenant_id.to_ascii_lowercase());
        let resources = graph_roots
            .into_iter()
            .map(|r| (normalize_resource(&r), Audience::Graph))
            .chain(
                arm_roots
                    .into_iter()
                    .map(|r| (normalize_resource(&r), Audience::Arm)),
            )
            .collect();
        TokenIssuer {
            tenant_id,
            tenant_aliases,
            client_id,
            client_secret,
            lifetime,
            resources,
            clock,
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// Checks an `Authorization` header value against the audience the API expects.
    pub fn validate(
        &self,
        authorization: Option<&str>,
        expected: Audience,
    ) -> Result<(), AuthFailure> {
        let value = authorization.ok_or(AuthFailure::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthFailure::Malformed)?;
        let issued = {
            let issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
            issued.get(token).copied()
        }
        .ok_or(AuthFailure::Unknown)?;
        let now = (self.clock)();
        if issued.expires_at <= now {
            return Err(AuthFailure::Expired {
                expired_at: issued.expires_at,
                now,
            });
        }
        if issued.audience != expected {
            return Err(AuthFailure::WrongAudience {
                audience: issued.audience.claim(),
            });
        }
        Ok(())
    }

    fn audience_for_scope(&self, scope: &str) -> Option<Audience> {
        let resource = scope.strip_suffix(".default")?;
        let resource = normalize_resource(resource);
        self.resources
            .iter()
            .find(|(r, _)| *r == resource)
            .map(|(_, a)| *a)
    }

    fn issue(
        &self,
        tenant: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Json<serde_json::Value>, TokenError> {
        if !self.tenant_aliases.contains(&tenant.to_ascii_lowercase()) {
            return Err(TokenError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                90002,
                format!(
                    "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                ),
            ));
        }
        let form: HashMap<String, String> =
            url::form_urlencoded::parse(body).into_owned().collect();
        let (basic_id, basic_secret) = basic_credentials(headers).unzip();
        match form.get("grant_type").map(String::as_str) {
            Some("client_credentials") => {}
            None => return Err(TokenError::missing_parameter("grant_type")),
            Some(other) => {
                return Err(TokenError::new(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    70003,
                    format!("The app requested an unsupported grant type '{other}'."),
                ));
            }
        }
        let client_id = form
            .get("client_id")
            .cloned()
            .or(basic_id)
            .ok_or_else(|| TokenError::missing_parameter("client_id"))?;
        if !client_id.eq_ignore_ascii_case(&self.client_id) {
            return Err(TokenError::new(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                    self.tenant_id
                ),
            ));
        }
        let secret = form.get("client_secret").cloned().or(basic_secret);
        let Some(secret) = secret else {
            return Err(TokenError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.".into(),
            ));
        };
        if secret != self.client_secret {
            return Err(TokenError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    self.client_id
                ),
            ));
        }
        let scope = form
            .get("scope")
            .ok_or_else(|| TokenError::missing_parameter("scope"))?;
        let mut audiences = scope
            .split_whitespace()
            .map(|s| (s, self.audience_for_scope(s)));
        let (first_scope, audience) = audiences
            .next()
            .ok_or_else(|| TokenError::missing_parameter("scope"))?;
        let Some(audience) = audience else {
            return Err(TokenError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                1002012,
                format!(
                    "The provided value for scope {first_scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                ),
            ));
        };
        if audiences.any(|(_, a)| a != Some(audience)) {
            return Err(TokenError::new(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                700022,
                "The provided value for the input parameter scope is not valid because it contains more than one resource.".into(),
            ));
        }

        let now = (self.clock)();
        let lifetime_secs = i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX);
        let expires_at = now + time::Duration::seconds(lifetime_secs);
        let access_token = self.mint(audience, now, expires_at);
        {
            let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
            // Forget tokens long expired so a long-running emulator does not grow without bound.
            issued.retain(|_, t| t.expires_at + time::Duration::hours(1) > now);
            issued.insert(
                access_token.clone(),
                IssuedToken {
                    audience,
                    expires_at,
                },
            );
        }
        Ok(Json(json!({
            "token_type": "Bearer",
            "expires_in": lifetime_secs,
            "ext_expires_in": lifetime_secs,
            "access_token": access_token,
        })))
    }

    /// A JWT-shaped token (header.claims.signature) like Entra's, so tools that peek at `aud` or
    /// `exp` see sensible values. The signature is random: validity is checked by lookup.
    fn mint(&self, audience: Audience, now: OffsetDateTime, expires_at: OffsetDateTime) -> String {
        let header = json!({"typ": "JWT", "alg": "none", "kid": "emulator"});
        let claims = json!({
            "aud": audience.claim(),
            "iss": format!("https://sts.windows.net/{}/", self.tenant_id),
            "iat": now.unix_timestamp(),
            "nbf": now.unix_timestamp(),
            "exp": expires_at.unix_timestamp(),
            "appid": self.client_id,
            "tid": self.tenant_id,
            "idtyp": "app",
            "uti": uuid::Uuid::new_v4().to_string(),
        });
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes()),
        )
    }
}

/// `https://graph.microsoft.com/` and `https://graph.microsoft.com` name the same resource.
fn normalize_resource(resource: &str) -> String {
    resource.trim_end_matches('/').to_ascii_lowercase()
}

/// Client credentials sent with HTTP Basic authentication (also accepted by Entra ID).
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

/// An error answer of the token endpoint.
struct TokenError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    description: String,
}

impl TokenError {
    fn new(status: StatusCode, error: &'static str, code: u32, description: String) -> TokenError {
        TokenError {
            status,
            error,
            code,
            description,
        }
    }

    fn missing_parameter(name: &str) -> TokenError {
        TokenError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id = uuid::Uuid::new_v4().to_string();
        let timestamp = OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .unwrap_or_default();
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}",
                self.code, self.description
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        (self.status, Json(body)).into_response()
    }
}

/// Routes of the authority host: `POST /{tenant}/oauth2/v2.0/token`.
pub fn router(issuer: Arc<TokenIssuer>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token_endpoint))
        .with_state(issuer)
}

async fn token_endpoint(
    State(issuer): State<Arc<TokenIssuer>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    match issuer.issue(&tenant, &headers, &body) {
        Ok(ok) => ok.into_response(),
        Err(err) => err.into_response(),
    }
}
