//! The service principal owners feed (`ServicePrincipalOwner` items, id `<spId>/<ownerId>`).
//! Owners are not tracked by `servicePrincipals/delta`, so they are polled with
//! `servicePrincipals/{id}/owners?$select=id`, 20 to a `$batch`, every nextLink followed: in a
//! delta round only for the service principals the SP delta hinted (created or changed), and
//! for all of them in the baseline, on every scheduled poll (`poll_every`: an owner change does
//! not show in the SP delta, so only a poll sees it; a few calls per 20 SPs) and every
//! `full_pass_every`.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::graph::link_value;
use super::per_object::{PerObjectRound, PerObjectSource, Targets, nested_id};
use super::{Collection, Feed, FeedContext, FeedError, Page, Position, decode_state, encode_state};

pub struct ServicePrincipalOwnersFeed;

const SOURCE: PerObjectSource = PerObjectSource {
    feed: "service_principal_owners",
    objects: Collection::ServicePrincipal,
    accept: None,
    collection: Collection::ServicePrincipalOwner,
    url: owners_url,
    item_id: nested_id,
    item_value: link_value,
    scope_per_object: true,
};

fn owners_url(sp: &str) -> String {
    format!("/servicePrincipals/{sp}/owners?$select=id")
}

/// The cursor: when the last full pass started (unix seconds).
#[derive(Serialize, Deserialize)]
pub(crate) struct FullPassCursor {
    pub last_full: i64,
}

impl FullPassCursor {
    /// Whether a full pass is due at `now` (unix seconds) after `every`.
    pub(crate) fn due(&self, every: std::time::Duration, now: i64) -> bool {
        now - self.last_full >= every.as_secs() as i64
    }
}

impl Feed for ServicePrincipalOwnersFeed {
    fn name(&self) -> String {
        SOURCE.feed.into()
    }

    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        vec![(Collection::ServicePrincipalOwner, None)]
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let now = (ctx.clock)().unix_timestamp();
            let round = match position {
                Position::Continue(state) => SOURCE.decode(state)?,
                Position::Baseline => full_round(now)?,
                // A feed that was off (mailbox option, say) ended its rounds with no cursor.
                Position::Delta(Value::Null) => full_round(now)?,
                Position::Delta(cursor) => {
                    let cursor: FullPassCursor = decode_state(SOURCE.feed, cursor)?;
                    let every = ctx.options.full_pass_every.min(ctx.options.poll_every);
                    if cursor.due(every, now) {
                        full_round(now)?
                    } else {
                        PerObjectRound {
                            targets: Targets::Listed {
                                ids: ctx.hints.service_principals.iter().cloned().collect(),
                            },
                            follow: Default::default(),
                            full: false,
                            cursor: encode_state(&cursor)?,
                        }
                    }
                }
            };
            SOURCE.page(ctx, round).await
        })
    }
}

fn full_round(now: i64) -> Result<PerObjectRound, FeedError> {
    Ok(PerObjectRound {
        targets: Targets::all(),
        follow: Default::default(),
        full: true,
        cursor: encode_state(&FullPassCursor { last_full: now })?,
    })
}
