//! The mailbox feed (`Mailbox` items, id = user id; only with the `mailbox` option): each
//! user's `mailboxSettings.userPurpose`, which has no bulk or delta form, so it is read per user,
//! 20 users to a `$batch` (Graph forwards at most 4 at a time to Outlook, inside its per-mailbox
//! concurrency limit). A delta round reads only the users the users feed hinted (created, or
//! `mail` changed); the baseline and every `full_pass_every` read them all.
//!
//! A 404 (`MailboxNotEnabledForRESTAPI`: no Exchange Online mailbox) is stored as
//! `{"noMailbox": true}`, a real state, so the user is not asked again each round and stays
//! HUMAN; it is never dropped. A 403 (an application access policy shields that mailbox) leaves
//! the user's item as it was, with a warning.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::graph::{self, BATCH_LIMIT};
use super::per_object::Targets;
use super::sp_owners::FullPassCursor;
use super::{
    Change, Collection, Feed, FeedContext, FeedError, ItemKey, Next, Page, Position, decode_state,
    encode_state,
};
use crate::azure::BatchRequest;

const FEED: &str = "mailbox";

pub struct MailboxFeed;

#[derive(Serialize, Deserialize)]
struct MailboxRound {
    targets: Targets,
    full: bool,
    cursor: Value,
}

impl Feed for MailboxFeed {
    fn name(&self) -> String {
        FEED.into()
    }

    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        vec![(Collection::Mailbox, None)]
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let now = (ctx.clock)().unix_timestamp();
            let mut round = match position {
                Position::Continue(state) => decode_state::<MailboxRound>(FEED, state)?,
                _ if !ctx.options.mailbox => return Ok(Page::default()),
                Position::Baseline => full_round(now)?,
                // A feed that was off (mailbox option, say) ended its rounds with no cursor.
                Position::Delta(Value::Null) => full_round(now)?,
                Position::Delta(cursor) => {
                    let cursor: FullPassCursor = decode_state(FEED, cursor)?;
                    // Mailbox purposes rarely change and cost one call per user: they wait
                    // for the full pass, not for every poll.
                    if cursor.due(ctx.options.full_pass_every, now) {
                        full_round(now)?
                    } else {
                        MailboxRound {
                            targets: Targets::Listed {
                                ids: ctx.hints.mailbox_users.iter().cloned().collect(),
                            },
                            full: false,
                            cursor: encode_state(&cursor)?,
                        }
                    }
                }
            };
            let mut page = Page::default();
            let users = round
                .targets
                .take(ctx, Collection::User, None, BATCH_LIMIT)?;
            if !users.is_empty() {
                let requests = users
                    .iter()
                    .enumerate()
                    .map(|(index, user)| BatchRequest {
                        id: index.to_string(),
                        url: format!("/users/{user}/mailboxSettings"),
                        headers: Vec::new(),
                    })
                    .collect();
                for response in graph::batch(ctx, requests).await? {
                    let Some(user) = response.id.parse::<usize>().ok().and_then(|i| users.get(i))
                    else {
                        return Err(FeedError::Malformed(format!(
                            "{FEED}: $batch answered an unknown request id {:?}",
                            response.id
                        )));
                    };
                    let key = ItemKey::new(Collection::Mailbox, user.clone());
                    match response.status {
                        200..=299 => page.changes.push(Change::Upsert {
                            key,
                            value: json!({
                                "userPurpose": response.body.get("userPurpose").cloned().unwrap_or(Value::Null)
                            }),
                        }),
                        404 => page.changes.push(Change::Upsert {
                            key,
                            value: json!({"noMailbox": true}),
                        }),
                        403 => tracing::warn!(
                            user = %user,
                            "mailbox settings are not readable for this user (403); its account type stays as it was"
                        ),
                        _ => {
                            return Err(graph::batch_error(
                                &response,
                                &format!("/users/{user}/mailboxSettings"),
                            ));
                        }
                    }
                }
            }
            page.next = if round.targets.is_exhausted() {
                if round.full {
                    page.completed.push((Collection::Mailbox, None));
                }
                Next::RoundDone(round.cursor)
            } else {
                Next::Continue(encode_state(&round)?)
            };
            Ok(page)
        })
    }
}

fn full_round(now: i64) -> Result<MailboxRound, FeedError> {
    Ok(MailboxRound {
        targets: Targets::all(),
        full: true,
        cursor: encode_state(&FullPassCursor { last_full: now })?,
    })
}
