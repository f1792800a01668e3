//! Azure Resource Manager reads: GET (one page, or every page following `nextLink`). Writes go
//! through [`AzureClient::write`] (`write.rs`).

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
        self.arm_get_with_headers(url, &[]).await
    }

    /// GET with request headers, e.g. `Cache-Control: no-cache` where ARM would serve a cache.
    pub async fn arm_get_with_headers(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        let call = Call {
            api: Api::Arm,
            method: Method::GET,
            url: self.pipeline.resolve(Api::Arm, url)?,
            headers,
            body: None,
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
