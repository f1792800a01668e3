//! Azure Resource Manager calls: GET (one page, or every page following `nextLink`), PUT, DELETE.

use async_stream::try_stream;
use futures::Stream;
use reqwest::Method;
use serde_json::Value;

use super::counters::Api;
use super::pipeline::Call;
use super::{ApiError, AzureClient};

impl AzureClient {
    /// GET an ARM URL: path+query relative to the ARM endpoint (with its `api-version`), or an
    /// absolute `nextLink` as ARM returned it.
    pub async fn arm_get(&self, url: &str) -> Result<Value, ApiError> {
        self.arm_call(Method::GET, url, &[], None).await
    }

    /// GET with request headers, e.g. `Cache-Control: no-cache` where ARM would serve a cache.
    pub async fn arm_get_with_headers(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        self.arm_call(Method::GET, url, headers, None).await
    }

    /// PUT (create or replace) an ARM resource; PUT is idempotent, so it is retried.
    pub async fn arm_put(&self, url: &str, body: &Value) -> Result<Value, ApiError> {
        self.arm_call(Method::PUT, url, &[], Some(body)).await
    }

    /// DELETE an ARM resource.
    pub async fn arm_delete(&self, url: &str) -> Result<(), ApiError> {
        self.arm_call(Method::DELETE, url, &[], None)
            .await
            .map(drop)
    }

    async fn arm_call(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        let call = Call {
            api: Api::Arm,
            method,
            url: self.pipeline.resolve(Api::Arm, url)?,
            headers,
            body,
            idempotent: true,
        };
        Ok(self.pipeline.send(call).await?.body)
    }

    /// Every page of an ARM list, following `nextLink` until a page has none.
    pub fn arm_pages<'a>(&'a self, url: &str) -> impl Stream<Item = Result<Value, ApiError>> + 'a {
        let first = url.to_owned();
        try_stream! {
            let mut next = Some(first);
            while let Some(url) = next.take() {
                let page = self.arm_get(&url).await?;
                next = page
                    .get("nextLink")
                    .and_then(Value::as_str)
                    .filter(|link| !link.is_empty())
                    .map(str::to_owned);
                yield page;
            }
        }
    }
}
