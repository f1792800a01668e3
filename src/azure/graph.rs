//! Microsoft Graph reads: GET (one page, or every page of a collection) and `$batch`. Writes
//! go through [`AzureClient::write`] (`write.rs`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use async_stream::try_stream;
use futures::Stream;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::counters::Api;
use super::pipeline::Call;
use super::response::parse_retry_after;
use super::{ApiError, AzureClient, BatchRequest, BatchResponse};

/// Graph accepts at most 20 requests in one `$batch`.
pub const MAX_BATCH_REQUESTS: usize = 20;

impl AzureClient {
    /// GET a Graph URL: a path+query relative to the Graph root (`/v1.0/users?$top=999`) or an
    /// absolute nextLink/deltaLink as Graph returned it (replayed unchanged).
    pub async fn graph_get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Value, ApiError> {
        let call = Call {
            api: Api::Graph,
            method: Method::GET,
            url: self.pipeline.resolve(Api::Graph, url)?,
            headers,
            body: None,
            idempotent: true,
        };
        Ok(self.pipeline.send(call).await?.body)
    }

    /// Every page of a Graph collection, following `@odata.nextLink`; the last page is the one
    /// without a nextLink (for delta queries it carries `@odata.deltaLink`).
    pub fn graph_pages<'a>(
        &'a self,
        url: &str,
        headers: &'a [(&'a str, &'a str)],
    ) -> impl Stream<Item = Result<Value, ApiError>> + 'a {
        let first = url.to_owned();
        try_stream! {
            let mut next = Some(first);
            while let Some(url) = next.take() {
                let page = self.graph_get(&url, headers).await?;
                next = page
                    .get("@odata.nextLink")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                yield page;
            }
        }
    }

    /// Up to 20 GETs in one `POST {graph}/v1.0/$batch`; answers come back in request order, each
    /// with its own status and body.
    ///
    /// Throttled items (429 inside a 200 envelope) are not retried here: they come back with
    /// `retry_after` set, and the API's throttle gate is closed for that long, so the caller's
    /// retry of just those items waits automatically. The envelope itself (429, 5xx, dropped
    /// connection) is retried by the pipeline like any request.
    pub async fn graph_batch(
        &self,
        requests: Vec<BatchRequest>,
    ) -> Result<Vec<BatchResponse>, ApiError> {
        validate_batch(&requests)?;
        let body = json!({
            "requests": requests.iter().map(|r| {
                let mut item = json!({"id": r.id, "method": "GET", "url": r.url});
                if !r.headers.is_empty() {
                    let headers: Map<String, Value> = r.headers.iter()
                        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                        .collect();
                    item["headers"] = Value::Object(headers);
                }
                item
            }).collect::<Vec<_>>()
        });
        let call = Call {
            api: Api::Graph,
            method: Method::POST,
            url: self.pipeline.resolve(Api::Graph, "/v1.0/$batch")?,
            headers: &[],
            body: Some(&body),
            idempotent: true, // only GETs inside
        };
        let reply = self.pipeline.send(call).await?;
        let answers = parse_batch(&reply.body, &requests)?;

        let throttled: Vec<Duration> = answers
            .iter()
            .filter(|a| a.response.status == 429)
            .map(|a| a.response.retry_after.unwrap_or(Duration::from_secs(1)))
            .collect();
        if let Some(longest) = throttled.iter().max() {
            self.pipeline
                .throttled(Api::Graph, *longest, throttled.len() as u64);
        }
        // Count per-item resource units only when the envelope did not already report a total.
        if reply.resource_units.is_none() {
            let units = answers.iter().filter_map(|a| a.resource_units).sum();
            self.pipeline.count_resource_units(Api::Graph, units);
        }
        Ok(answers.into_iter().map(|a| a.response).collect())
    }
}

fn validate_batch(requests: &[BatchRequest]) -> Result<(), ApiError> {
    let invalid = |message: String| ApiError::Other {
        status: None,
        code: "InvalidBatch".into(),
        message,
    };
    if requests.is_empty() || requests.len() > MAX_BATCH_REQUESTS {
        return Err(invalid(format!(
            "a $batch takes 1 to {MAX_BATCH_REQUESTS} requests, got {}",
            requests.len()
        )));
    }
    let mut seen = HashSet::new();
    for request in requests {
        if !seen.insert(request.id.as_str()) {
            return Err(invalid(format!(
                "duplicate request id {:?} in $batch",
                request.id
            )));
        }
        if !request.url.starts_with('/') {
            return Err(invalid(format!(
                "$batch request {:?}: url {:?} must be relative to the version root, starting with '/'",
                request.id, request.url
            )));
        }
    }
    Ok(())
}

struct BatchAnswer {
    response: BatchResponse,
    resource_units: Option<u64>,
}

/// Matches `{"responses":[{"id","status","headers","body"}]}` (any order) to the requests.
fn parse_batch(envelope: &Value, requests: &[BatchRequest]) -> Result<Vec<BatchAnswer>, ApiError> {
    let malformed = |message: String| ApiError::Other {
        status: Some(200),
        code: "MalformedBatchResponse".into(),
        message,
    };
    let items = envelope
        .get("responses")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("$batch answer has no \"responses\" array".into()))?;
    let mut by_id: HashMap<&str, BatchAnswer> = HashMap::new();
    for item in items {
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("$batch answer item without an \"id\"".into()))?;
        let status = item
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| malformed(format!("$batch answer {id:?} without a valid \"status\"")))?;
        // Header names compare ignoring case; values are strings on the wire, but a number
        // (`"Retry-After": 10`) is read as its text rather than dropped.
        let header = |name: &str| {
            let value = item
                .get("headers")
                .and_then(Value::as_object)?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)?;
            match value {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            }
        };
        let retry_after = if status == 429 || status == 503 {
            header("retry-after")
                .and_then(|v| parse_retry_after(&v, time::OffsetDateTime::now_utc()))
        } else {
            None
        };
        let resource_units = header("x-ms-resource-unit").and_then(|v| v.trim().parse().ok());
        let answer = BatchAnswer {
            response: BatchResponse {
                id: id.to_owned(),
                status,
                body: answer_body(item.get("body")),
                retry_after,
            },
            resource_units,
        };
        if by_id.insert(id, answer).is_some() {
            return Err(malformed(format!("$batch answer repeats id {id:?}")));
        }
    }
    requests
        .iter()
        .map(|r| {
            by_id
                .remove(r.id.as_str())
                .ok_or_else(|| malformed(format!("$batch answer lacks request {:?}", r.id)))
        })
        .collect()
}

/// The body of one `$batch` answer as JSON. It is normally a JSON object, but OData JSON
/// batching carries a body whose media type is not JSON as a string, base64-encoded when it is
/// binary (json-batching: "a JSON object or a base64 URL-encoded value"), and Graph has been
/// seen to send JSON answers that way (Q&A 1352007). A string that is JSON, or base64 of JSON,
/// is decoded; any other string is kept as the text it is; no body is `null`.
fn answer_body(body: Option<&Value>) -> Value {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let Some(body) = body else {
        return Value::Null;
    };
    let Value::String(text) = body else {
        return body.clone();
    };
    let trimmed = text.trim();
    if let Ok(value @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str(trimmed) {
        return value;
    }
    for engine in [&STANDARD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(trimmed)
            && let Ok(value @ (Value::Object(_) | Value::Array(_))) =
                serde_json::from_slice::<Value>(&bytes)
        {
            return value;
        }
    }
    body.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(id: &str) -> BatchRequest {
        BatchRequest {
            id: id.into(),
            url: format!("/users/{id}/mailboxSettings"),
            headers: vec![],
        }
    }

    #[test]
    fn batch_limits_are_enforced() {
        assert!(validate_batch(&[]).is_err());
        let many: Vec<_> = (0..21).map(|i| request(&i.to_string())).collect();
        assert!(
            validate_batch(&many)
                .unwrap_err()
                .to_string()
                .contains("21")
        );
        assert!(validate_batch(&[request("a"), request("a")]).is_err());
        validate_batch(&many[..20]).unwrap();
    }

    #[test]
    fn answers_are_matched_by_id_whatever_their_order() {
        let envelope = json!({"responses": [
            {"id": "b", "status": 429, "headers": {"Retry-After": "3"}, "body": {"error": {"code": "TooManyRequests"}}},
            {"id": "a", "status": 200, "body": {"userPurpose": "shared"}},
        ]});
        let answers = parse_batch(&envelope, &[request("a"), request("b")]).unwrap();
        assert_eq!(answers[0].response.id, "a");
        assert_eq!(answers[0].response.body["userPurpose"], "shared");
        assert_eq!(answers[1].response.status, 429);
        assert_eq!(
            answers[1].response.retry_after,
            Some(Duration::from_secs(3))
        );
        assert!(parse_batch(&envelope, &[request("a"), request("c")]).is_err());
    }
}
