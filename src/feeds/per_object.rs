//! The round shared by the feeds that list one small collection per object (a service
//! principal's owners or app role assignments, a group's PIM eligibility): up to 20 objects per
//! `$batch`, then every `@odata.nextLink` a batch answer carried, one call each, until each
//! object's collection is read to its end. Reading stops at nothing less: a truncated list is
//! the bug the anchor connector had.
//!
//! When an object's collection is complete, its scope is swept (stale links removed); a 404
//! means the object is gone, which completes its scope empty. A full pass also completes the
//! whole collection, sweeping the items of objects that no longer exist.
//!
//! A full pass walks the stored objects in id order and keeps only its position in the round
//! state, so the state committed with every page stays small however big the tenant is.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::{self, BATCH_LIMIT, CollectionPage};
use super::schedules;
use super::{
    Change, Collection, FeedContext, FeedError, ItemKey, Next, Page, Position, decode_state,
    encode_state, store_error,
};
use crate::azure::BatchRequest;

pub(crate) struct PerObjectSource {
    pub feed: &'static str,
    /// The stored objects a full pass reads, and which of them it asks about.
    pub objects: Collection,
    pub accept: Option<fn(&Value) -> bool>,
    pub collection: Collection,
    /// The request for one object's collection, relative to the version root.
    pub url: fn(&str) -> String,
    /// The stored id of one listed item of `object`.
    pub item_id: fn(object: &str, item: &Value) -> Result<String, FeedError>,
    /// The stored value of one listed item.
    pub item_value: fn(item: &Value) -> Value,
    /// Whether each object's items are a scope of their own (`<object>/` prefix).
    pub scope_per_object: bool,
}

/// The objects a round still has to ask about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Targets {
    /// Named objects (hints), in order.
    Listed { ids: VecDeque<String> },
    /// Every stored object (that the feed accepts) after `after`, in id order.
    All { after: Option<String>, done: bool },
}

/// How many ids one store read returns while a full pass looks for accepted objects.
const ID_SCAN: usize = 500;

impl Targets {
    pub(crate) fn all() -> Targets {
        Targets::All {
            after: None,
            done: false,
        }
    }

    pub(crate) fn is_exhausted(&self) -> bool {
        match self {
            Targets::Listed { ids } => ids.is_empty(),
            Targets::All { done, .. } => *done,
        }
    }

    /// Takes the next `limit` objects: named ones, or stored `collection` items `accept`ed.
    pub(crate) fn take(
        &mut self,
        ctx: &FeedContext,
        collection: Collection,
        accept: Option<fn(&Value) -> bool>,
        limit: usize,
    ) -> Result<Vec<String>, FeedError> {
        let (after, done) = match self {
            Targets::Listed { ids } => {
                let take = ids.len().min(limit);
                return Ok(ids.drain(..take).collect());
            }
            Targets::All { after, done } => (after, done),
        };
        let mut taken = Vec::new();
        while taken.len() < limit {
            let ids = ctx
                .items
                .item_ids_after(collection, after.as_deref(), ID_SCAN)
                .map_err(store_error)?;
            if ids.is_empty() {
                *done = true;
                break;
            }
            for id in ids {
                *after = Some(id.clone());
                let accepted = match accept {
                    None => true,
                    Some(accept) => ctx
                        .items
                        .item(&ItemKey::new(collection, id.clone()))
                        .map_err(store_error)?
                        .is_some_and(|item| accept(&item)),
                };
                if accepted {
                    taken.push(id);
                    if taken.len() == limit {
                        break;
                    }
                }
            }
        }
        Ok(taken)
    }
}

/// A round in progress: objects still to ask about, and nextLinks still to follow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PerObjectRound {
    pub targets: Targets,
    pub follow: VecDeque<(String, String)>,
    /// Whether this round reads every object (and so completes the whole collection).
    pub full: bool,
    /// The cursor to end the round with.
    pub cursor: Value,
}

impl PerObjectSource {
    pub(crate) fn decode(&self, state: &Value) -> Result<PerObjectRound, FeedError> {
        decode_state(self.feed, state)
    }

    /// Fetches one page of `round`: one followed nextLink, or one `$batch` of new objects.
    pub(crate) async fn page(
        &self,
        ctx: &FeedContext,
        mut round: PerObjectRound,
    ) -> Result<Page, FeedError> {
        let mut page = Page::default();
        if let Some((object, link)) = round.follow.pop_front() {
            let body = ctx.api.graph_get(&link, &[]).await?;
            self.read_listing(&object, body, &mut round, &mut page)?;
        } else {
            let objects = round
                .targets
                .take(ctx, self.objects, self.accept, BATCH_LIMIT)?;
            let requests = objects
                .iter()
                .enumerate()
                .map(|(index, object)| BatchRequest {
                    id: index.to_string(),
                    url: (self.url)(object),
                    headers: Vec::new(),
                })
                .collect::<Vec<_>>();
            let urls: Vec<String> = requests.iter().map(|r| r.url.clone()).collect();
            let responses = if requests.is_empty() {
                Vec::new()
            } else {
                graph::batch(ctx, requests).await?
            };
            for response in responses {
                let index: usize = response.id.parse().unwrap_or(usize::MAX);
                let (Some(object), Some(url)) = (objects.get(index), urls.get(index)) else {
                    return Err(FeedError::Malformed(format!(
                        "{}: $batch answered an unknown request id {:?}",
                        self.feed, response.id
                    )));
                };
                if graph::is_success(&response) {
                    self.read_listing(object, response.body, &mut round, &mut page)?;
                } else if response.status == 404 {
                    self.complete(object, &mut page);
                } else {
                    return Err(graph::batch_error(&response, url));
                }
            }
        }
        page.next = self.after(round, &mut page)?;
        Ok(page)
    }

    /// Ends the round when nothing is left, else continues it.
    pub(crate) fn after(&self, round: PerObjectRound, page: &mut Page) -> Result<Next, FeedError> {
        if round.targets.is_exhausted() && round.follow.is_empty() {
            if round.full {
                page.completed.push((self.collection, None));
            }
            Ok(Next::RoundDone(round.cursor))
        } else {
            Ok(Next::Continue(encode_state(&round)?))
        }
    }

    fn read_listing(
        &self,
        object: &str,
        body: Value,
        round: &mut PerObjectRound,
        page: &mut Page,
    ) -> Result<(), FeedError> {
        let listing = CollectionPage::graph(body, self.feed)?;
        for item in listing
            .items
            .iter()
            .filter(|item| schedules::is_direct(item))
        {
            page.changes.push(Change::Upsert {
                key: ItemKey::new(self.collection, (self.item_id)(object, item)?),
                value: (self.item_value)(item),
            });
        }
        match listing.next_link {
            Some(link) => round.follow.push_back((object.to_string(), link)),
            None => self.complete(object, page),
        }
        Ok(())
    }

    fn complete(&self, object: &str, page: &mut Page) {
        if self.scope_per_object {
            page.completed
                .push((self.collection, Some(format!("{object}/"))));
        }
    }
}

/// The cursor of a feed polled every round (or every `poll_every`): when it last polled.
#[derive(Serialize, Deserialize)]
struct PollCursor {
    last_poll: i64,
}

/// Starts a round of a feed that polls every object each time: `None` when the last poll is
/// more recent than `poll_every` (the round is skipped), else a full round.
pub(crate) fn start_poll(
    ctx: &FeedContext,
    position: &Position,
) -> Result<Option<PerObjectRound>, FeedError> {
    let now = (ctx.clock)().unix_timestamp();
    if let Position::Delta(cursor) = position
        && let Ok(PollCursor { last_poll }) = serde_json::from_value::<PollCursor>(cursor.clone())
        && now - last_poll < ctx.options.poll_every.as_secs() as i64
    {
        return Ok(None);
    }
    Ok(Some(PerObjectRound {
        targets: Targets::all(),
        follow: VecDeque::new(),
        full: true,
        cursor: encode_state(&PollCursor { last_poll: now })?,
    }))
}

/// The page of a round [`start_poll`] skipped: no call, the cursor kept.
pub(crate) fn skipped(position: &Position) -> Page {
    Page {
        next: Next::RoundDone(match position {
            Position::Delta(cursor) => cursor.clone(),
            _ => Value::Null,
        }),
        ..Page::default()
    }
}

/// `<object>/<item id>`: the id of a link item.
pub(crate) fn nested_id(object: &str, item: &Value) -> Result<String, FeedError> {
    Ok(format!(
        "{object}/{}",
        graph::object_id(item, "per-object list")?
    ))
}
