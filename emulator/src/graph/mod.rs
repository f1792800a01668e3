//! Microsoft Graph v1.0 and beta: the request pipeline (bearer token, resource-unit metering,
//! faults, counters) and the routing of each path to its handler. Handlers are plain functions
//! from a parsed [`GraphRequest`] to a [`GraphReply`], so `$batch` runs its inner requests
//! through exactly the same code as top-level ones.

pub mod batch;
pub mod delta;
pub mod lists;
pub mod odata;
pub mod render;
pub mod writes;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::EmulatorState;
use crate::faults::{self, FaultOutcome};
use crate::quota::{self, Admission};
use crate::token::{Audience, AuthFailure, TokenIssuer};
use odata::{GraphError, ODataQuery};

/// What Graph handlers share.
pub struct GraphContext {
    pub state: Arc<EmulatorState>,
    pub issuer: Arc<TokenIssuer>,
    /// `https://127.0.0.1:PORT`, the root nextLinks and deltaLinks are built on.
    pub base_url: String,
    /// When the forced-resync switch was first seen on (emulator clock, unix nanoseconds):
    /// delta tokens issued before it get 410 Gone.
    pub resync_since: std::sync::Mutex<Option<i128>>,
}

/// One Graph call, top-level or inside a `$batch`.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    pub method: Method,
    /// `v1.0` or `beta`.
    pub version: String,
    /// The path after the version, without leading slash (`groups/{id}/members`).
    pub path: String,
    pub raw_query: String,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
}

impl GraphRequest {
    pub fn segments(&self) -> Vec<&str> {
        self.path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect()
    }

    pub fn query(&self) -> Result<ODataQuery, GraphError> {
        ODataQuery::parse(&self.raw_query, &self.headers)
    }

    /// `/v1.0/users` (for building links).
    pub fn versioned_path(&self) -> String {
        format!("/{}/{}", self.version, self.path.trim_matches('/'))
    }

    fn client_request_id(&self) -> String {
        self.headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

/// A handler's answer before it becomes an HTTP response.
#[derive(Debug)]
pub struct GraphReply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl GraphReply {
    pub fn ok(body: Value) -> GraphReply {
        GraphReply {
            status: StatusCode::OK,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn created(body: Value) -> GraphReply {
        GraphReply {
            status: StatusCode::CREATED,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    pub fn no_content() -> GraphReply {
        GraphReply {
            status: StatusCode::NO_CONTENT,
            body: None,
            headers: Vec::new(),
        }
    }
}

/// The axum entry point for everything on the Graph listener.
pub async fn serve(State(ctx): State<Arc<GraphContext>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_string();
    let endpoint = quota::endpoint_class(&parts.method, &path);
    let body = match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            let reply = GraphError::bad_request("The request body could not be read.");
            return finish(&ctx, endpoint, reply.into_response_for(""));
        }
    };

    let plan = ctx.state.faults.plan();
    if let Some(delay) = plan.delay {
        tokio::time::sleep(delay).await;
    }

    let Some((version, rest)) = split_version(&path) else {
        let err = GraphError::no_route(&path);
        return finish(&ctx, endpoint, err.into_response_for(""));
    };
    let request = GraphRequest {
        method: parts.method.clone(),
        version: version.to_string(),
        path: rest.to_string(),
        raw_query: parts.uri.query().unwrap_or_default().to_string(),
        headers: parts.headers.clone(),
        body,
    };
    let client_request_id = request.client_request_id();

    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Err(failure) = ctx.issuer.validate(authorization, Audience::Graph) {
        return finish(
            &ctx,
            endpoint,
            unauthorized(failure).into_response_for(&client_request_id),
        );
    }

    let response = match plan.outcome {
        FaultOutcome::ServerError(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            GraphError::new(
                status,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            )
            .with_header("Retry-After", "1".into())
            .into_response_for(&client_request_id)
        }
        FaultOutcome::DropConnection => faults::dropped_connection(),
        FaultOutcome::Normal | FaultOutcome::TruncateBody => {
            let response = handle_metered(&ctx, &request).into_http(&client_request_id);
            if plan.outcome == FaultOutcome::TruncateBody {
                faults::truncate(response).await
            } else {
                response
            }
        }
    };
    finish(&ctx, endpoint, response)
}

fn split_version(path: &str) -> Option<(&str, &str)> {
    let trimmed = path.trim_start_matches('/');
    let (version, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    matches!(version, "v1.0" | "beta").then_some((version, rest))
}

fn finish(ctx: &GraphContext, endpoint: String, mut response: Response) -> Response {
    ctx.state
        .meter
        .record("graph", endpoint, response.status().as_u16());
    // An error answer already carries the request id of its body's `innerError`.
    if !response.headers().contains_key("request-id") {
        let request_id = uuid::Uuid::new_v4().to_string();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("request-id", v);
        }
    }
    response
}

/// The 401 Graph sends for a missing, expired, unknown or wrong-audience token.
fn unauthorized(failure: AuthFailure) -> GraphError {
    let message = match failure {
        AuthFailure::Missing => "Access token is empty.".to_string(),
        AuthFailure::Malformed | AuthFailure::Unknown => {
            "Access token validation failure. Invalid audience or signature.".to_string()
        }
        AuthFailure::Expired { .. } => {
            "Lifetime validation failed, the token is expired.".to_string()
        }
        AuthFailure::WrongAudience { .. } => {
            "Access token validation failure. Invalid audience.".to_string()
        }
    };
    GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message).with_header(
        "WWW-Authenticate",
        "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"".into(),
    )
}

/// The result of one request after quota: a reply, or an error in Graph's shape.
pub struct Outcome(pub Result<GraphReply, GraphError>);

impl Outcome {
    pub fn into_http(self, client_request_id: &str) -> Response {
        match self.0 {
            Ok(reply) => {
                let mut response = match reply.body {
                    Some(body) => (reply.status, axum::Json(body)).into_response(),
                    None => (reply.status, Body::empty()).into_response(),
                };
                for (name, value) in reply.headers {
                    if let Ok(v) = HeaderValue::from_str(&value) {
                        response.headers_mut().insert(name, v);
                    }
                }
                response
            }
            Err(err) => err.into_response_for(client_request_id),
        }
    }
}

/// Charges resource units, then runs the handler; the RU header rides on success and failure.
pub fn handle_metered(ctx: &GraphContext, request: &GraphRequest) -> Outcome {
    // The batch envelope costs nothing itself: each request inside it is charged on its own.
    if request.method == Method::POST && request.path.trim_matches('/') == "$batch" {
        return Outcome(route(ctx, request));
    }
    let raw: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(request.raw_query.as_bytes())
            .into_owned()
            .collect();
    let cost = quota::graph_cost(&request.method, &request.path, &raw);
    let (quota_headers, throttled) = match ctx.state.meter.admit_graph(cost) {
        Admission::Allowed { headers } => (headers, None),
        Admission::Throttled {
            retry_after_secs,
            headers,
            code,
            message,
        } => (headers, Some((retry_after_secs, code, message))),
    };
    let result = match throttled {
        Some((retry, code, message)) => {
            Err(
                GraphError::new(StatusCode::TOO_MANY_REQUESTS, code, message)
                    .with_header("Retry-After", retry.to_string()),
            )
        }
        None => route(ctx, request),
    };
    Outcome(match result {
        Ok(mut reply) => {
            reply.headers.extend(quota_headers);
            Ok(reply)
        }
        Err(mut err) => {
            err.headers.extend(quota_headers);
            Err(err)
        }
    })
}

/// Maps a method and path to its handler.
pub fn route(ctx: &GraphContext, request: &GraphRequest) -> Result<GraphReply, GraphError> {
    let segments = request.segments();
    let method = &request.method;
    let batch = *method == Method::POST && segments.as_slice() == ["$batch"];
    if !batch && *method != Method::GET && ctx.state.wire().read_only_app {
        // Refused before any handler runs, so nothing in the tenant changes.
        return Err(GraphError::insufficient_privileges());
    }
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["$batch"]) => batch::handle(ctx, request),
        ("GET", ["organization"]) => lists::organization(ctx, request),
        ("GET", [collection, "delta"]) => delta::handle(ctx, request, collection),
        ("GET", ["users"]) => lists::users(ctx, request),
        ("GET", ["users", id]) => lists::user(ctx, request, id),
        ("GET", ["users", id, "mailboxSettings"]) => lists::mailbox_settings(ctx, request, id),
        ("GET", ["groups"]) => lists::groups(ctx, request),
        ("GET", ["groups", id]) => lists::group(ctx, request, id),
        ("GET", ["groups", id, relation @ ("members" | "owners")]) => {
            lists::group_links(ctx, request, id, relation)
        }
        ("POST", ["groups", id, relation @ ("members" | "owners"), "$ref"]) => {
            writes::add_group_link(ctx, request, id, relation)
        }
        (
            "DELETE",
            [
                "groups",
                id,
                relation @ ("members" | "owners"),
                target,
                "$ref",
            ],
        ) => writes::remove_group_link(ctx, id, relation, target),
        ("GET", ["servicePrincipals"]) => lists::service_principals(ctx, request),
        ("GET", ["servicePrincipals", id]) => lists::service_principal(ctx, request, id),
        ("GET", ["servicePrincipals", id, "appRoleAssignedTo"]) => {
            lists::app_role_assigned_to(ctx, request, id)
        }
        ("POST", ["servicePrincipals", id, "appRoleAssignedTo"]) => {
            writes::assign_app_role(ctx, request, id)
        }
        ("DELETE", ["servicePrincipals", id, "appRoleAssignedTo", assignment]) => {
            writes::unassign_app_role(ctx, id, assignment)
        }
        ("GET", ["servicePrincipals", id, "owners"]) => {
            lists::service_principal_owners(ctx, request, id)
        }
        ("POST", ["servicePrincipals", id, "owners", "$ref"]) => {
            writes::add_service_principal_owner(ctx, request, id)
        }
        ("DELETE", ["servicePrincipals", id, "owners", owner, "$ref"]) => {
            writes::remove_service_principal_owner(ctx, id, owner)
        }
        ("GET", ["directoryRoles"]) => lists::directory_roles(ctx, request),
        ("GET", ["directoryObjects", id]) => lists::directory_object(ctx, request, id),
        ("GET", ["roleManagement", "directory", collection]) => {
            lists::role_management(ctx, request, collection)
        }
        ("GET", ["identityGovernance", "privilegedAccess", "group", _])
            if ctx.state.wire().national_cloud =>
        {
            // PIM for Groups is a global-service API only; a national cloud has no such segment.
            Err(GraphError::no_route(&request.versioned_path()))
        }
        ("POST", ["roleManagement", "directory", "roleAssignments"]) => {
            writes::create_directory_role_assignment(ctx, request)
        }
        ("DELETE", ["roleManagement", "directory", "roleAssignments", id]) => {
            writes::delete_directory_role_assignment(ctx, id)
        }
        (
            "POST",
            [
                "roleManagement",
                "directory",
                "roleEligibilityScheduleRequests",
            ],
        ) => writes::directory_role_eligibility_request(ctx, request),
        (
            "POST",
            [
                "identityGovernance",
                "privilegedAccess",
                "group",
                "eligibilityScheduleRequests",
            ],
        ) => writes::group_eligibility_request(ctx, request),
        (
            "GET",
            [
                "identityGovernance",
                "privilegedAccess",
                "group",
                collection,
            ],
        ) => lists::group_eligibility(ctx, request, collection),
        _ => Err(GraphError::no_route(&request.versioned_path())),
    }
}
