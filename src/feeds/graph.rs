//! Reading Graph's response shapes: collection pages (`value`, `@odata.nextLink`,
//! `@odata.deltaLink`), `@removed` and `<relationship>@delta` annotations, and `$batch` answers
//! (each with its own status, 429s retried after their own `Retry-After`).

use std::time::Duration;

use serde_json::{Map, Value};

use super::{FeedContext, FeedError};
use crate::azure::{ApiError, BatchRequest, BatchResponse};

/// At most this many requests go into one `$batch` (json-batching).
pub const BATCH_LIMIT: usize = 20;

/// How often a request throttled or failed with a server error inside a `$batch` is sent in all.
const BATCH_ATTEMPTS: usize = 4;
/// The first wait before a request that failed with a 5xx and no `Retry-After` is sent again;
/// it doubles with each attempt.
const SERVER_ERROR_BACKOFF: Duration = Duration::from_millis(500);
/// The longest single wait for a throttled batch request, whatever `Retry-After` says.
const MAX_BATCH_WAIT: Duration = Duration::from_secs(60);

/// One page of a Graph (or ARM) collection.
#[derive(Debug)]
pub struct CollectionPage {
    pub items: Vec<Value>,
    pub next_link: Option<String>,
    pub delta_link: Option<String>,
}

impl CollectionPage {
    /// Reads a Graph collection page; `what` names the call in errors.
    pub fn graph(body: Value, what: &str) -> Result<CollectionPage, FeedError> {
        CollectionPage::parse(body, what, "@odata.nextLink")
    }

    /// Reads an ARM collection page (`value`, `nextLink`).
    pub fn arm(body: Value, what: &str) -> Result<CollectionPage, FeedError> {
        CollectionPage::parse(body, what, "nextLink")
    }

    fn parse(body: Value, what: &str, next_name: &str) -> Result<CollectionPage, FeedError> {
        let Value::Object(mut object) = body else {
            return Err(FeedError::Malformed(format!(
                "{what}: the response is not a JSON object"
            )));
        };
        // An empty link is no link: ARM may end a list with `"nextLink": ""`.
        let link = |object: &Map<String, Value>, name: &str| -> Result<Option<String>, FeedError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(link)) if link.trim().is_empty() => Ok(None),
                Some(Value::String(link)) => Ok(Some(link.clone())),
                Some(_) => Err(FeedError::Malformed(format!(
                    "{what}: `{name}` is not a string"
                ))),
            }
        };
        let next_link = link(&object, next_name)?;
        let delta_link = link(&object, "@odata.deltaLink")?;
        let items = match object.remove("value") {
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(FeedError::Malformed(format!(
                    "{what}: `value` is not an array"
                )));
            }
            // A delta answer always carries a link but may carry no data (`$deltatoken=latest`
            // "returns no resource data", delta-query-overview): a page with a link and no
            // `value` is empty. Without a link, a missing `value` means a wrong answer.
            None if next_link.is_some() || delta_link.is_some() => Vec::new(),
            None => {
                return Err(FeedError::Malformed(format!(
                    "{what}: the response has no `value`"
                )));
            }
        };
        Ok(CollectionPage {
            items,
            next_link,
            delta_link,
        })
    }
}

/// The `id` of a Graph object, or an error naming the call.
pub fn object_id(item: &Value, what: &str) -> Result<String, FeedError> {
    match item.get("id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        _ => Err(FeedError::Malformed(format!(
            "{what}: an item has no string `id`"
        ))),
    }
}

/// Whether a delta item carries `@removed` (deleted, or left a relationship).
pub fn is_removed(item: &Value) -> bool {
    item.get("@removed").is_some()
}

/// The object without annotations (`@removed`, `<relationship>@delta`, `@odata.*`), as stored.
pub fn without_annotations(item: &Value) -> Value {
    match item {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .filter(|(name, _)| !name.contains('@'))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The entries of a `<relationship>@delta` annotation (empty when absent).
pub fn relationship_delta<'v>(
    item: &'v Value,
    relationship: &str,
    what: &str,
) -> Result<&'v [Value], FeedError> {
    match item.get(format!("{relationship}@delta")) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(entries)) => Ok(entries),
        Some(_) => Err(FeedError::Malformed(format!(
            "{what}: `{relationship}@delta` is not an array"
        ))),
    }
}

/// What a related object is stored as: its `@odata.type`, the only thing the projection needs.
pub fn link_value(entry: &Value) -> Value {
    let mut value = Map::new();
    if let Some(kind) = entry.get("@odata.type") {
        value.insert("@odata.type".into(), kind.clone());
    }
    Value::Object(value)
}

/// Sends `requests` (at most [`BATCH_LIMIT`]) as one `$batch`, retrying the ones throttled or
/// failed with a server error inside it; returns one answer per request.
///
/// Each request in a batch is evaluated on its own and can fail alone while the envelope is 200;
/// Microsoft's advice is to retry only the failed ones (throttling, "Throttling and batching").
/// A 5xx is transient for one request as for a whole call (errors page: 500, 502, 503, 504), so
/// it is retried the same way, after its own `Retry-After` when it has one. A request still
/// throttled after [`BATCH_ATTEMPTS`] fails the page (retryable); one still failing with a 5xx
/// is returned as it is, for the caller to decide what it means for its object.
pub async fn batch(
    ctx: &FeedContext,
    requests: Vec<BatchRequest>,
) -> Result<Vec<BatchResponse>, FeedError> {
    let mut pending = requests;
    let mut answers = Vec::with_capacity(pending.len());
    for attempt in 0..BATCH_ATTEMPTS {
        let last = attempt + 1 == BATCH_ATTEMPTS;
        let sent = pending.clone();
        let responses = ctx.api.graph_batch(sent).await?;
        let mut again = Vec::new();
        let mut wait = Duration::ZERO;
        let mut throttled = 0;
        for request in pending {
            let Some(response) = responses.iter().find(|r| r.id == request.id) else {
                return Err(FeedError::Malformed(format!(
                    "$batch: no answer for request {} ({})",
                    request.id, request.url
                )));
            };
            let retryable = response.status == 429 || is_server_error(response.status);
            if retryable && !last {
                let backoff = if response.status == 429 {
                    Duration::from_secs(1)
                } else {
                    SERVER_ERROR_BACKOFF * 2u32.pow(attempt as u32)
                };
                wait = wait.max(response.retry_after.unwrap_or(backoff));
                again.push(request);
            } else if response.status == 429 {
                throttled += 1;
            } else {
                answers.push(response.clone());
            }
        }
        if throttled > 0 {
            return Err(FeedError::Api(ApiError::Unavailable {
                message: format!(
                    "{throttled} request(s) in a $batch were still throttled after {BATCH_ATTEMPTS} attempts"
                ),
            }));
        }
        if again.is_empty() {
            break;
        }
        tokio::time::sleep(wait.min(MAX_BATCH_WAIT)).await;
        pending = again;
    }
    Ok(answers)
}

/// Whether a status is a server error worth retrying (errors page: 500 Internal Server Error,
/// 502 Bad Gateway, 503 Service Unavailable, 504 Gateway Timeout).
pub fn is_server_error(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

/// The error a failed request inside a `$batch` stands for, classified like the client does.
pub fn batch_error(response: &BatchResponse, url: &str) -> FeedError {
    let error = response.body.get("error");
    let text = |name: &str| {
        error
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (code, mut message) = (text("code"), text("message"));
    // A body that is not Microsoft's error envelope (a plain text, a proxy's page) is the only
    // explanation there is.
    if message.is_empty()
        && let Value::String(body) = &response.body
    {
        message = body.chars().take(300).collect();
    }
    let message = format!("{url}: {message}");
    // Error codes are compared ignoring case, as the client does for whole responses.
    if code.eq_ignore_ascii_case("AadPremiumLicenseRequired") {
        return FeedError::LicenseRequired(message);
    }
    FeedError::Api(match response.status {
        404 => ApiError::NotFound { code, message },
        403 => ApiError::Forbidden { code, message },
        500..=599 => ApiError::Unavailable { message },
        status => ApiError::Other {
            status: Some(status),
            code,
            message,
        },
    })
}

/// Whether a 2xx answer.
pub fn is_success(response: &BatchResponse) -> bool {
    (200..300).contains(&response.status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_without_value_is_named_in_the_error() {
        let error = CollectionPage::graph(json!({"@odata.context": "x"}), "users list")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            error.contains("users list") && error.contains("`value`"),
            "{error}"
        );
    }

    #[test]
    fn annotations_are_stripped_but_properties_kept() {
        let item = json!({"id": "g", "displayName": "G", "members@delta": [], "@removed": {}});
        assert_eq!(
            without_annotations(&item),
            json!({"id": "g", "displayName": "G"})
        );
    }

    #[test]
    fn a_licence_error_inside_a_batch_is_a_licence_error() {
        let response = BatchResponse {
            id: "1".into(),
            status: 400,
            body: json!({"error": {"code": "AadPremiumLicenseRequired", "message": "needs P2"}}),
            retry_after: None,
        };
        assert!(matches!(
            batch_error(&response, "/x"),
            FeedError::LicenseRequired(_)
        ));
    }
}
