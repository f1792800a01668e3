//! The round state machine shared by the Graph delta feeds (users, groups, service principals):
//! a baseline (either `$deltatoken=latest` then a plain list, or one full delta round), then
//! delta rounds replaying the stored deltaLink, with `Prefer: return=minimal` where documented.
//!
//! A page with a nextLink continues the round (even when `value` is empty); a page with a
//! deltaLink ends it, and the deltaLink is the cursor (delta-query-overview).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::CollectionPage;
use super::{FeedContext, FeedError, Next, Position, decode_state, encode_state};

/// How a delta feed reads its baseline.
pub(crate) enum Baseline {
    /// `$deltatoken=latest` (one call, no data, a deltaLink), then the plain collection listed
    /// with `$top=999`: cheaper than delta pages where those are capped far below 999.
    LatestThenList { list_url: String },
    /// The first delta round itself (full objects and relationships in one pass).
    FullDelta,
}

pub(crate) struct DeltaSource {
    pub feed: &'static str,
    /// The initial delta request, with `$select` (Graph folds it into every later link).
    pub delta_url: String,
    pub baseline: Baseline,
    /// Delta rounds ask for `Prefer: return=minimal` (documented for users and groups only):
    /// their items carry only what changed and are merged. Without it, every changed object
    /// comes whole, with every selected property, and replaces the stored one.
    pub minimal: bool,
}

/// The stored cursor of a delta feed.
#[derive(Serialize, Deserialize)]
struct DeltaCursor {
    delta_link: String,
}

/// Where a round is between pages.
#[derive(Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    /// Baseline: listing the plain collection; `delta_link` was taken before the list began,
    /// so changes made while listing come back in the first delta round.
    List { url: String, delta_link: String },
    /// A delta round; `initial` when it is the baseline's full delta round.
    Delta { url: String, initial: bool },
}

/// What the items of a page are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Whole objects (a plain list, or the initial delta round): upsert them.
    Full,
    /// `return=minimal` delta items: the id plus changed properties; merge them.
    Minimal,
}

pub(crate) struct DeltaPage {
    pub items: Vec<Value>,
    pub shape: Shape,
    /// This page belongs to a baseline round (a list, or the initial delta round).
    pub baseline: bool,
    /// This page ends a baseline round: the feed's baseline scopes are now complete.
    pub baseline_done: bool,
    pub next: Next,
}

impl DeltaSource {
    pub(crate) async fn fetch(
        &self,
        ctx: &FeedContext,
        position: &Position,
    ) -> Result<DeltaPage, FeedError> {
        let step = match position {
            Position::Baseline => match &self.baseline {
                Baseline::LatestThenList { list_url } => {
                    return self.start_from_latest(ctx, list_url).await;
                }
                Baseline::FullDelta => Step::Delta {
                    url: self.delta_url.clone(),
                    initial: true,
                },
            },
            Position::Delta(cursor) => {
                let cursor: DeltaCursor = decode_state(self.feed, cursor)?;
                Step::Delta {
                    url: cursor.delta_link,
                    initial: false,
                }
            }
            Position::Continue(state) => decode_state(self.feed, state)?,
        };
        match step {
            Step::List { url, delta_link } => {
                let body = ctx.api.graph_get(&url, &[]).await?;
                let page = CollectionPage::graph(body, self.feed)?;
                let (next, baseline_done) = match page.next_link {
                    Some(next) => (
                        Next::Continue(encode_state(&Step::List {
                            url: next,
                            delta_link,
                        })?),
                        false,
                    ),
                    None => (
                        Next::RoundDone(encode_state(&DeltaCursor { delta_link })?),
                        true,
                    ),
                };
                Ok(DeltaPage {
                    items: page.items,
                    shape: Shape::Full,
                    baseline: true,
                    baseline_done,
                    next,
                })
            }
            Step::Delta { url, initial } => {
                let minimal = !initial && self.minimal;
                let prefer = [("Prefer", "return=minimal")];
                let headers: &[(&str, &str)] = if minimal { &prefer } else { &[] };
                let body = ctx.api.graph_get(&url, headers).await?;
                let page = CollectionPage::graph(body, self.feed)?;
                let next = match (page.next_link, page.delta_link) {
                    (Some(next), _) => {
                        Next::Continue(encode_state(&Step::Delta { url: next, initial })?)
                    }
                    (None, Some(delta_link)) => {
                        Next::RoundDone(encode_state(&DeltaCursor { delta_link })?)
                    }
                    (None, None) => {
                        return Err(FeedError::Malformed(format!(
                            "{}: a delta page has neither @odata.nextLink nor @odata.deltaLink",
                            self.feed
                        )));
                    }
                };
                Ok(DeltaPage {
                    items: page.items,
                    shape: if minimal { Shape::Minimal } else { Shape::Full },
                    baseline: initial,
                    baseline_done: initial && matches!(next, Next::RoundDone(_)),
                    next,
                })
            }
        }
    }

    async fn start_from_latest(
        &self,
        ctx: &FeedContext,
        list_url: &str,
    ) -> Result<DeltaPage, FeedError> {
        let url = format!("{}&$deltatoken=latest", self.delta_url);
        let body = ctx.api.graph_get(&url, &[]).await?;
        // The documented answer carries only the deltaLink (`value` may be absent).
        let Some(delta_link) = body.get("@odata.deltaLink").and_then(Value::as_str) else {
            return Err(FeedError::Malformed(format!(
                "{}: `$deltatoken=latest` returned no @odata.deltaLink",
                self.feed
            )));
        };
        Ok(DeltaPage {
            items: Vec::new(),
            shape: Shape::Full,
            baseline: true,
            baseline_done: false,
            next: Next::Continue(encode_state(&Step::List {
                url: list_url.to_string(),
                delta_link: delta_link.to_string(),
            })?),
        })
    }
}
