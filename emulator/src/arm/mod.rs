//! Azure Resource Manager: the request pipeline (bearer token with ARM's audience,
//! `api-version` required, token-bucket throttling, faults, counters), ARM's error shape
//! `{"error":{"code","message"}}`, `nextLink` paging, and the routing of each path.

pub mod activity;
pub mod authorization;
pub mod resources;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::EmulatorState;
use crate::faults::{self, FaultOutcome};
use crate::graph::odata::encode_component;
use crate::quota::{self, Admission, ArmOperation};
use crate::tenant::Tenant;
use crate::token::{Audience, AuthFailure, TokenIssuer};

/// What ARM handlers share.
pub struct ArmContext {
    pub state: Arc<EmulatorState>,
    /// Management groups as first served while `management_group_cache` is on, keyed by the
    /// request's path and query: what a cached read returns.
    pub management_group_cache: std::sync::Mutex<HashMap<String, Value>>,
    pub issuer: Arc<TokenIssuer>,
    /// `https://127.0.0.1:PORT`, the root nextLinks are built on.
    pub base_url: String,
}

/// An ARM error answer.
#[derive(Debug)]
pub struct ArmError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
}

impl ArmError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ArmError {
        ArmError {
            status,
            code: code.to_string(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ArmError {
        ArmError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> ArmError {
        ArmError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn license_required() -> ArmError {
        ArmError::bad_request(
            "AadPremiumLicenseRequired",
            "The tenant needs an AAD Premium 2 license.",
        )
    }

    fn with_header(mut self, name: &'static str, value: String) -> ArmError {
        self.headers.push((name, value));
        self
    }

    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, v);
            }
        }
        response
    }
}

/// One parsed ARM request.
pub struct ArmRequest {
    pub method: Method,
    pub path: String,
    /// Decoded query parameters; names compared as ARM does (`api-version`, `$filter`, ...).
    pub query: HashMap<String, String>,
    pub body: bytes::Bytes,
    /// The request said `Cache-Control: no-cache` (bypass ARM's caches).
    pub no_cache: bool,
}

impl ArmRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A handler's successful answer.
pub struct ArmReply {
    pub status: StatusCode,
    pub body: Option<Value>,
}

impl ArmReply {
    pub fn ok(body: Value) -> ArmReply {
        ArmReply {
            status: StatusCode::OK,
            body: Some(body),
        }
    }
}

/// Items per ARM list page.
pub const PAGE_SIZE: usize = 100;

/// One page of a list: `{"value": [...], "nextLink": "..."}` with the original query kept and an
/// opaque `$skiptoken` holding the offset.
pub fn page(
    ctx: &ArmContext,
    request: &ArmRequest,
    items: Vec<Value>,
    page_size: usize,
) -> Result<ArmReply, ArmError> {
    let offset = match request.param("$skiptoken") {
        None => 0,
        Some(token) => URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| {
                ArmError::bad_request("InvalidSkipToken", "The $skiptoken is not valid.")
            })?,
    };
    let end = (offset + page_size).min(items.len());
    let value: Vec<Value> = items
        .get(offset..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    let mut body = json!({ "value": value });
    if end < items.len() {
        let mut pairs: Vec<(&String, &String)> = request
            .query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .collect();
        pairs.sort();
        let mut query: Vec<String> = pairs
            .into_iter()
            .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
            .collect();
        query.push(format!(
            "$skiptoken={}",
            URL_SAFE_NO_PAD.encode(end.to_string())
        ));
        body["nextLink"] = json!(format!(
            "{}{}?{}",
            ctx.base_url,
            request.path,
            query.join("&")
        ));
    }
    Ok(ArmReply::ok(body))
}

/// The axum entry point for everything on the ARM listener.
pub async fn serve(State(ctx): State<Arc<ArmContext>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let endpoint = quota::endpoint_class(&parts.method, &path);
    let plan = ctx.state.faults.plan();
    if let Some(delay) = plan.delay {
        tokio::time::sleep(delay).await;
    }
    let body = match axum::body::to_bytes(body, 4 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return finish(
                &ctx,
                endpoint,
                ArmError::bad_request(
                    "InvalidRequestContent",
                    "The request body could not be read.",
                )
                .into_response(),
            );
        }
    };
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(failure) = ctx.issuer.validate(authorization, Audience::Arm) {
        return finish(&ctx, endpoint, unauthorized(failure).into_response());
    }
    let request = ArmRequest {
        method: parts.method.clone(),
        path: path.clone(),
        query: url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        body,
        no_cache: parts
            .headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.to_ascii_lowercase().contains("no-cache")),
    };
    let response = match plan.outcome {
        FaultOutcome::ServerError(status) => ArmError::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "InternalServerError",
            "Encountered internal server error. Please try again.",
        )
        .with_header("Retry-After", "1".into())
        .into_response(),
        FaultOutcome::DropConnection => faults::dropped_connection(),
        FaultOutcome::Normal | FaultOutcome::TruncateBody => {
            let response = handle_metered(&ctx, &request);
            if plan.outcome == FaultOutcome::TruncateBody {
                faults::truncate(response).await
            } else {
                response
            }
        }
    };
    finish(&ctx, endpoint, response)
}

fn finish(ctx: &ArmContext, endpoint: String, mut response: Response) -> Response {
    ctx.state
        .meter
        .record("arm", endpoint, response.status().as_u16());
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-ms-request-id", v.clone());
        response
            .headers_mut()
            .insert("x-ms-correlation-request-id", v);
    }
    response
}

fn unauthorized(failure: AuthFailure) -> ArmError {
    let (code, message) = match failure {
        AuthFailure::Missing => ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.".to_string()),
        AuthFailure::Malformed => ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing or is in an invalid format.".to_string()),
        AuthFailure::Unknown => ("InvalidAuthenticationToken", "The access token is invalid.".to_string()),
        AuthFailure::Expired { expired_at, now } => (
            "ExpiredAuthenticationToken",
            format!("The access token expiry UTC time '{}' is earlier than current UTC time '{}'.", arm_time(expired_at), arm_time(now)),
        ),
        AuthFailure::WrongAudience { audience } => (
            "InvalidAuthenticationTokenAudience",
            format!("The access token has been obtained for wrong audience or resource '{audience}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."),
        ),
    };
    let header = format!(
        "Bearer authorization_uri=\"https://login.microsoftonline.com/\", error=\"invalid_token\", error_description=\"{message}\""
    );
    ArmError::new(StatusCode::UNAUTHORIZED, code, message).with_header("WWW-Authenticate", header)
}

/// ARM's timestamps: RFC 3339 in UTC.
pub fn arm_time(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn handle_metered(ctx: &ArmContext, request: &ArmRequest) -> Response {
    if request.param("api-version").is_none_or(str::is_empty) {
        return ArmError::bad_request(
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
        .into_response();
    }
    let subscription = Tenant::subscription_of_scope(&request.path).map(|s| s.to_string());
    let (headers, result) = match ctx
        .state
        .meter
        .admit_arm(subscription.as_deref(), ArmOperation::of(&request.method))
    {
        Admission::Allowed { headers } => (headers, route(ctx, request)),
        Admission::Throttled {
            retry_after_secs,
            headers,
            code,
            message,
        } => (
            headers,
            Err(ArmError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
                .with_header("Retry-After", retry_after_secs.to_string())),
        ),
    };
    let mut response = match result {
        Ok(reply) => match reply.body {
            Some(body) => (reply.status, axum::Json(body)).into_response(),
            None => (reply.status, Body::empty()).into_response(),
        },
        Err(err) => err.into_response(),
    };
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, v);
        }
    }
    response
}

/// The 403 ARM answers a write the caller holds no role for (`read_only_app`). The shape is
/// ARM's common error body (`{"error": {"code", "message"}}`); the code and message are the ones
/// Microsoft's troubleshooting articles quote for a role assignment write
/// (MicrosoftDocs/SupportArticles-docs,
/// support/azure/devops/troubleshoot-azure-rm-scenarios-while-creating-service-connections.md:
/// "AuthorizationFailed ... The client '...' with object id '...' does not have authorization to
/// perform action 'Microsoft.Authorization/roleAssignments/write' over scope '...' or the scope
/// is invalid. If access was recently granted, please refresh your credentials."). The client
/// is the worker's app, the object id its service principal's (or the app id when the tenant
/// holds no service principal for it).
fn write_forbidden(ctx: &ArmContext, method: &str, scope: &str, rest: &[String]) -> ArmError {
    let (client, object) = {
        let tenant = ctx.state.read_tenant();
        let client = tenant.client_app_id;
        let object = tenant
            .service_principals
            .values()
            .find(|sp| sp.app_id == client)
            .map_or(client, |sp| sp.id);
        (client, object)
    };
    let collection = match rest.first().map(|c| c.to_ascii_lowercase()).as_deref() {
        Some("roleeligibilityschedulerequests") => "roleEligibilityScheduleRequests",
        Some("roledefinitions") => "roleDefinitions",
        _ => "roleAssignments",
    };
    let verb = if method == "DELETE" {
        "delete"
    } else {
        "write"
    };
    ArmError::new(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{client}' with object id '{object}' does not have authorization to perform action 'Microsoft.Authorization/{collection}/{verb}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        ),
    )
}

/// Splits `{scope}/providers/Microsoft.Authorization/{rest}` (the last such marker).
fn authorization_split(path: &str) -> Option<(String, Vec<String>)> {
    let marker = "/providers/microsoft.authorization/";
    let lower = path.to_ascii_lowercase();
    let at = lower.rfind(marker)?;
    let scope = if at == 0 {
        "/".to_string()
    } else {
        path[..at].to_string()
    };
    let rest = path[at + marker.len()..]
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    Some((scope, rest))
}

fn route(ctx: &ArmContext, request: &ArmRequest) -> Result<ArmReply, ArmError> {
    let method = request.method.as_str();
    if ctx.state.wire().management_groups_forbidden && above_subscriptions(&request.path) {
        return Err(ArmError::new(
            StatusCode::FORBIDDEN,
            "AuthorizationFailed",
            format!(
                "The client does not have authorization to perform action 'Microsoft.Management/managementGroups/read' over scope '{}' or the scope is invalid.",
                request.path
            ),
        ));
    }
    if let Some((scope, rest)) = authorization_split(&request.path) {
        if ctx.state.wire().read_only_app && matches!(method, "PUT" | "DELETE") {
            return Err(write_forbidden(ctx, method, &scope, &rest));
        }
        let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
        let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        return match (method, lower.as_slice()) {
            ("GET", ["roledefinitions"]) => {
                authorization::list_role_definitions(ctx, request, &scope)
            }
            ("GET", ["roledefinitions", _]) => {
                authorization::get_role_definition(ctx, &scope, rest[1])
            }
            ("GET", ["roleassignments"]) => {
                authorization::list_role_assignments(ctx, request, &scope)
            }
            ("GET", ["roleassignments", _]) => {
                authorization::get_role_assignment(ctx, &scope, rest[1])
            }
            ("PUT", ["roleassignments", _]) => {
                authorization::put_role_assignment(ctx, request, &scope, rest[1])
            }
            ("DELETE", ["roleassignments", _]) => {
                authorization::delete_role_assignment(ctx, &scope, rest[1])
            }
            ("PUT", ["roleeligibilityschedulerequests", _]) => {
                authorization::put_eligibility_request(ctx, request, &scope, rest[1])
            }
            ("GET", [c @ ("roleeligibilityschedules" | "roleeligibilityscheduleinstances")]) => {
                authorization::list_eligibility(ctx, request, &scope, c.ends_with("instances"))
            }
            _ => Err(no_route(&request.path)),
        };
    }
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match (method, lower.as_slice()) {
        ("GET", ["subscriptions"]) => resources::list_subscriptions(ctx, request),
        ("GET", ["subscriptions", _]) => resources::get_subscription(ctx, segments[1]),
        ("GET", ["tenants"]) => resources::list_tenants(ctx, request),
        ("GET", ["providers", "microsoft.management", "managementgroups"]) => {
            resources::list_management_groups(ctx, request)
        }
        ("GET", ["providers", "microsoft.management", "managementgroups", _]) => {
            resources::get_management_group(ctx, request, segments[3])
        }
        ("POST", ["providers", "microsoft.management", "getentities"]) => {
            resources::get_entities(ctx, request)
        }
        ("GET", ["subscriptions", _, "resourcegroups"]) => {
            resources::list_resource_groups(ctx, request, segments[1])
        }
        ("GET", ["subscriptions", _, "resourcegroups", _]) => {
            resources::get_resource_group(ctx, segments[1], segments[3])
        }
        ("GET", ["subscriptions", _, "resources"]) => {
            resources::list_resources(ctx, request, segments[1])
        }
        (
            "GET",
            [
                "subscriptions",
                _,
                "providers",
                "microsoft.storage",
                "storageaccounts",
            ],
        ) => resources::list_storage_accounts(ctx, request, segments[1], None),
        (
            "GET",
            [
                "subscriptions",
                _,
                "resourcegroups",
                _,
                "providers",
                "microsoft.storage",
                "storageaccounts",
            ],
        ) => resources::list_storage_accounts(ctx, request, segments[1], Some(segments[3])),
        (
            "GET",
            [
                "subscriptions",
                _,
                "resourcegroups",
                _,
                "providers",
                "microsoft.storage",
                "storageaccounts",
                _,
            ],
        ) => resources::get_storage_account(ctx, segments[1], segments[3], segments[7]),
        (
            "GET",
            [
                "subscriptions",
                _,
                "resourcegroups",
                _,
                "providers",
                "microsoft.storage",
                "storageaccounts",
                _,
                "blobservices",
                "default",
                "containers",
            ],
        ) => resources::list_containers(ctx, request, segments[1], segments[3], segments[7]),
        (
            "GET",
            [
                "subscriptions",
                _,
                "providers",
                "microsoft.insights",
                "eventtypes",
                "management",
                "values",
            ],
        ) => activity::list_events(ctx, request, Some(segments[1])),
        (
            "GET",
            [
                "providers",
                "microsoft.insights",
                "eventtypes",
                "management",
                "values",
            ],
        ) => activity::list_events(ctx, request, None),
        ("GET", ["subscriptions", _, "resourcegroups", _, "providers", ..]) => {
            resources::get_generic_resource(ctx, &request.path)
        }
        _ => Err(no_route(&request.path)),
    }
}

/// Management groups, and the authorization collections at a management group or the root.
fn above_subscriptions(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.starts_with("/providers/microsoft.management/")
        || lower.starts_with("/providers/microsoft.authorization/")
}

fn no_route(path: &str) -> ArmError {
    ArmError::not_found(
        "InvalidResourceType",
        format!("The resource type could not be found for the request path '{path}'."),
    )
}

/// Parses a subscription id from the path, or ARM's 404 for it.
pub fn subscription_id(tenant: &Tenant, text: &str) -> Result<uuid::Uuid, ArmError> {
    uuid::Uuid::parse_str(text)
        .ok()
        .filter(|id| tenant.subscriptions.contains_key(id))
        .ok_or_else(|| {
            ArmError::not_found(
                "SubscriptionNotFound",
                format!("The subscription '{text}' could not be found."),
            )
        })
}
