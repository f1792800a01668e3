//! The seams between modules written against small traits: the feeds see Microsoft through
//! [`Api`] and the store through [`ItemReader`]; the exporter sees the store through
//! [`ExportSource`]. Here the real client and store implement them.

use anyhow::Context;
use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;

use crate::azure::{ApiError, AzureClient, BatchRequest, BatchResponse};
use crate::c1z::writer::ExportSource;
use crate::feeds::{Api, Collection, ItemKey, ItemReader};
use crate::model::{Record, RecordChange};
use crate::store::Store;

impl Api for AzureClient {
    fn graph_get<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        AzureClient::graph_get(self, url, headers).boxed()
    }

    fn graph_batch<'a>(
        &'a self,
        requests: Vec<BatchRequest>,
    ) -> BoxFuture<'a, Result<Vec<BatchResponse>, ApiError>> {
        AzureClient::graph_batch(self, requests).boxed()
    }

    fn arm_get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Value, ApiError>> {
        AzureClient::arm_get(self, url).boxed()
    }

    fn arm_get_with_headers<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        AzureClient::arm_get_with_headers(self, url, headers).boxed()
    }
}

impl ItemReader for Store {
    fn item(&self, key: &ItemKey) -> anyhow::Result<Option<Value>> {
        Store::item(self, key)
    }

    fn item_ids(&self, collection: Collection, prefix: &str) -> anyhow::Result<Vec<String>> {
        Store::item_ids(self, collection, prefix)
    }

    fn item_ids_after(
        &self,
        collection: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<String>> {
        Store::item_ids_after(self, collection, after, limit)
    }
}

impl ExportSource for Store {
    fn for_each_record(
        &self,
        sink: &mut dyn FnMut(Record) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        Store::for_each_record(self, sink)
    }

    fn changes_since_export(&self, sync_id: &str) -> anyhow::Result<Option<Vec<RecordChange>>> {
        match self
            .export_seq(sync_id)
            .with_context(|| format!("looking up export {sync_id}"))?
        {
            Some(seq) => self.changes_since(seq),
            None => Ok(None),
        }
    }
}
