//! Writes to Graph and ARM (provisioning): one call through the same pipeline as every read
//! (tokens, budgets, `Retry-After`, counters), answering with the status and Microsoft's request
//! id, on success and on failure alike, so that a refused write can be quoted to support.
//!
//! Retries follow the pipeline's rule: PUT and DELETE are idempotent and retried after an
//! unknown outcome; a POST only when it provably never reached the server.

use std::fmt;

use reqwest::Method;
use serde_json::Value;

use super::counters::Api;
use super::pipeline::Call;
use super::{ApiError, AzureClient};

/// A write Microsoft accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// 200, 201 or 204 (ARM's DELETE says 204 when there was nothing to delete).
    pub status: u16,
    /// The answer's body; `Null` when it had none.
    pub body: Value,
    pub request_id: Option<String>,
}

/// A write Microsoft refused (or that could not be sent), with its request id when one came.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteError {
    pub error: ApiError,
    pub request_id: Option<String>,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for WriteError {}

impl AzureClient {
    /// Sends one write (`POST`, `PUT`, `DELETE`, `PATCH`) to `api`: `url` is a path+query
    /// relative to the API root, as for reads.
    pub async fn write(
        &self,
        api: Api,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Written, WriteError> {
        let url = self
            .pipeline
            .resolve(api, url)
            .map_err(|error| WriteError {
                error,
                request_id: None,
            })?;
        let idempotent = method == Method::PUT || method == Method::DELETE;
        let call = Call {
            api,
            method,
            url,
            headers: &[],
            body,
            idempotent,
        };
        match self.pipeline.send_traced(call).await {
            Ok(reply) => Ok(Written {
                status: reply.status,
                body: reply.body,
                request_id: reply.request_id,
            }),
            Err(failure) => Err(WriteError {
                error: failure.error,
                request_id: failure.request_id,
            }),
        }
    }
}
