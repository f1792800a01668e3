//! The mailbox feed (`Mailbox` items, id = user id; only with the `mailbox` option): each
//! user's `mailboxSettings.userPurpose`, which has no bulk or delta form, so it is read per user,
//! 20 users to a `$batch` (Graph forwards at most 4 at a time to Outlook, inside its per-mailbox
//! concurrency limit). A delta round reads only the users the users feed hinted (created, or
//! `mail` changed); the baseline and every `full_pass_every` read them all.
//!
//! What an answer means for the user:
//!
//! - a 404, whatever its code, is "no mailbox": `MailboxNotEnabledForRESTAPI` or
//!   `MailboxNotSupportedForRESTAPI` (no Exchange Online mailbox: unlicensed, on-premises, soft
//!   deleted; Exchange KB 4462988), `ResourceNotFound`/`ErrorItemNotFound`/`UnknownError` as
//!   reported for users without one, or a user deleted meanwhile. So is a mailbox code of
//!   Exchange's that says it outright (`ErrorNonExistentMailbox`) whatever the status. It is
//!   stored as `{"noMailbox": true}`, a real state, so the user is not asked again each round
//!   and stays HUMAN; the user is never dropped;
//! - a 403 (`ErrorAccessDenied`: an application access policy shields that mailbox,
//!   auth-limit-mailbox-access), a 5xx that outlived the batch's retries, or a 2xx without a
//!   readable body says nothing about the mailbox: the user's item stays as it was (re-marked,
//!   so a full pass does not sweep it), with a warning;
//! - anything else (a 400, say) fails the page.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::graph::{self, BATCH_LIMIT};
use super::per_object::Targets;
use super::sp_owners::FullPassCursor;
use super::{
    Change, Collection, Feed, FeedContext, FeedError, ItemKey, Next, Page, Position, decode_state,
    encode_state, store_error,
};
use crate::azure::{BatchRequest, BatchResponse};

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
                    let url = format!("/users/{user}/mailboxSettings");
                    match answer_kind(&response) {
                        Answer::Purpose(purpose) => page.changes.push(Change::Upsert {
                            key,
                            value: json!({ "userPurpose": purpose }),
                        }),
                        Answer::NoMailbox => page.changes.push(Change::Upsert {
                            key,
                            value: json!({"noMailbox": true}),
                        }),
                        Answer::Unknown(why) => {
                            tracing::warn!(
                                user = %user,
                                status = response.status,
                                "mailbox settings are not readable for this user ({why}); its account type stays as it was"
                            );
                            // Re-mark the stored item, so that a full pass does not sweep
                            // what it knew.
                            if let Some(stored) = ctx.items.item(&key).map_err(store_error)? {
                                page.changes.push(Change::Upsert { key, value: stored });
                            }
                        }
                        Answer::Failed => return Err(graph::batch_error(&response, &url)),
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

/// Exchange error codes that say the user has no (Exchange Online) mailbox, whatever the status
/// they come with (Exchange KB 4462988; `ErrorNonExistentMailbox` is Exchange's "mailbox does
/// not exist").
const NO_MAILBOX_CODES: [&str; 3] = [
    "MailboxNotEnabledForRESTAPI",
    "MailboxNotSupportedForRESTAPI",
    "ErrorNonExistentMailbox",
];

/// What one `mailboxSettings` answer says about the user's mailbox.
enum Answer {
    Purpose(Value),
    NoMailbox,
    /// Nothing: keep what is stored.
    Unknown(&'static str),
    Failed,
}

fn answer_kind(response: &BatchResponse) -> Answer {
    let code_says_no_mailbox = response
        .body
        .get("error")
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .is_some_and(|code| {
            NO_MAILBOX_CODES
                .iter()
                .any(|c| c.eq_ignore_ascii_case(code))
        });
    match response.status {
        _ if code_says_no_mailbox => Answer::NoMailbox,
        200..=299 => match &response.body {
            Value::Object(settings) => {
                Answer::Purpose(settings.get("userPurpose").cloned().unwrap_or(Value::Null))
            }
            _ => Answer::Unknown("an answer without a settings object"),
        },
        404 => Answer::NoMailbox,
        403 => Answer::Unknown("403, an application access policy may shield the mailbox"),
        status if graph::is_server_error(status) => Answer::Unknown("server errors"),
        _ => Answer::Failed,
    }
}

fn full_round(now: i64) -> Result<MailboxRound, FeedError> {
    Ok(MailboxRound {
        targets: Targets::all(),
        full: true,
        cursor: encode_state(&FullPassCursor { last_full: now })?,
    })
}
