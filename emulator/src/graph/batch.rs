//! JSON batching (`POST /$batch`): up to 20 requests, each answered with its own status,
//! headers and body inside a 200 envelope; `dependsOn` failures give 424. Each inner request is
//! metered on its own, so one can be throttled (429 with its own `Retry-After`) while the
//! envelope is still 200 (https://learn.microsoft.com/en-us/graph/json-batching).

use std::collections::{HashMap, HashSet};

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::odata::GraphError;
use super::{GraphContext, GraphReply, GraphRequest, handle_metered};

/// The documented maximum number of requests in one batch.
pub const MAX_REQUESTS: usize = 20;

#[derive(Deserialize)]
struct BatchBody {
    requests: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: HashMap<String, String>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default, rename = "dependsOn")]
    depends_on: Vec<String>,
}

pub fn handle(ctx: &GraphContext, request: &GraphRequest) -> Result<GraphReply, GraphError> {
    let batch: BatchBody = serde_json::from_slice(&request.body)
        .map_err(|e| GraphError::bad_request(format!("Invalid batch payload: {e}.")))?;
    if batch.requests.is_empty() {
        return Err(GraphError::bad_request(
            "Invalid batch payload: the batch contains no requests.",
        ));
    }
    if batch.requests.len() > MAX_REQUESTS {
        return Err(GraphError::bad_request(format!(
            "Invalid batch payload: the number of requests ({}) exceeds the limit of {MAX_REQUESTS}.",
            batch.requests.len()
        )));
    }
    let mut seen = HashSet::new();
    for item in &batch.requests {
        if !seen.insert(item.id.as_str()) {
            return Err(GraphError::bad_request(format!(
                "Invalid batch payload: request id '{}' is used more than once.",
                item.id
            )));
        }
    }
    for item in &batch.requests {
        if let Some(missing) = item.depends_on.iter().find(|d| !seen.contains(d.as_str())) {
            return Err(GraphError::bad_request(format!(
                "Invalid batch payload: request '{}' depends on unknown request '{missing}'.",
                item.id
            )));
        }
    }

    let mut statuses: HashMap<String, u16> = HashMap::new();
    let mut responses = Vec::with_capacity(batch.requests.len());
    for item in &batch.requests {
        let failed_dependency = item
            .depends_on
            .iter()
            .any(|d| statuses.get(d).is_none_or(|s| *s >= 400));
        let response = if failed_dependency {
            inner_error(
                &item.id,
                GraphError::new(
                    StatusCode::FAILED_DEPENDENCY,
                    "BadRequest",
                    "The request was not run because a request it depends on failed.",
                ),
            )
        } else {
            run_one(ctx, request, item)
        };
        if let Some(status) = response.get("status").and_then(Value::as_u64) {
            statuses.insert(item.id.clone(), u16::try_from(status).unwrap_or(500));
        }
        responses.push(response);
    }
    Ok(GraphReply::ok(json!({ "responses": responses })))
}

fn inner_error(id: &str, err: GraphError) -> Value {
    let mut headers = Map::new();
    headers.insert("Content-Type".into(), json!("application/json"));
    for (name, value) in &err.headers {
        headers.insert((*name).to_string(), json!(value));
    }
    json!({
        "id": id,
        "status": err.status.as_u16(),
        "headers": headers,
        "body": err.body(""),
    })
}

fn run_one(ctx: &GraphContext, outer: &GraphRequest, item: &BatchItem) -> Value {
    let method = match Method::from_bytes(item.method.to_ascii_uppercase().as_bytes()) {
        Ok(m) => m,
        Err(_) => {
            return inner_error(
                &item.id,
                GraphError::bad_request(format!("Invalid method '{}'.", item.method)),
            );
        }
    };
    let url = item.url.trim_start_matches('/');
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    if path.eq_ignore_ascii_case("$batch") {
        return inner_error(
            &item.id,
            GraphError::bad_request("A batch cannot contain another batch."),
        );
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &item.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    let body = item
        .body
        .as_ref()
        .map(|b| bytes::Bytes::from(b.to_string()))
        .unwrap_or_default();
    let inner = GraphRequest {
        method,
        version: outer.version.clone(),
        path: path.to_string(),
        raw_query: query.to_string(),
        headers,
        body,
    };
    match handle_metered(ctx, &inner).0 {
        Ok(reply) => {
            let mut headers = Map::new();
            if reply.body.is_some() {
                headers.insert("Content-Type".into(), json!("application/json"));
            }
            for (name, value) in &reply.headers {
                headers.insert((*name).to_string(), json!(value));
            }
            let mut out = json!({
                "id": item.id,
                "status": reply.status.as_u16(),
                "headers": headers,
            });
            if let (Some(body), Value::Object(map)) = (reply.body, &mut out) {
                map.insert("body".into(), body);
            }
            out
        }
        Err(err) => inner_error(&item.id, err),
    }
}
