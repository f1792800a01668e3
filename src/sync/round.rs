//! One feed's round as a state machine without I/O, the way kube-runtime's watcher steps its
//! list-then-watch state: [`step`] takes where the round stands and what the feed's last call
//! gave, and returns what to commit and where the round goes next. The engine
//! (`engine.rs`) is the thin async loop around it (fetch a page, commit what `step` asks,
//! repeat); the feed tests drive the same `step`.
//!
//! ```text
//!   (no cursor) --Baseline--> InRound{baseline} --...pages...--> Idle{cursor}
//!   Idle{cursor} --Delta(cursor)--> InRound{delta} --...pages...--> Idle{cursor'}
//!   any state --DeltaTokenExpired--> InRound{baseline} (this feed only; mark and sweep)
//!   InRound --continuation link refused--> InRound{baseline} (this feed only)
//! ```
//!
//! A stored nextLink is not forever: Graph refuses an expired directory page token with
//! `400 Directory_ExpiredPageToken` (msgraph-sdk-dotnet issue 2254), and a link may answer 404
//! or 410 once its object or session is gone. A round interrupted by a stop or a crash resumes
//! its stored link, so such a refusal restarts the feed's round as a baseline
//! ([`refuses_continuation`]). A round that failed is not resumed at all: the engine forgets
//! its generation, so the next round of that feed starts over.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::azure::ApiError;
use crate::feeds::{FeedError, Next, Page, Position};
use crate::item::Collection;

/// A feed's persisted position, stored as its cursor in the store after every page, so that
/// `kill -9` at any point resumes where the last commit left off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum FeedCursor {
    /// A round in progress; resume it with `Position::Continue(next)`.
    InRound { baseline: bool, next: Value },
    /// Between rounds; the next round starts with `Position::Delta(cursor)`.
    Idle { cursor: Value },
}

/// Where a round stands before its next page.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundState {
    /// The round lists everything (first run, reset, a refused cursor), so its last page sweeps
    /// the feed's baseline scopes: what it did not see is gone.
    pub baseline: bool,
    /// Where the feed's next page starts.
    pub position: Position,
    /// A refused delta cursor already turned this round into a baseline; another refusal fails
    /// the round instead of looping.
    pub recovered: bool,
}

impl RoundState {
    /// A full listing from scratch.
    pub fn baseline() -> RoundState {
        RoundState {
            baseline: true,
            position: Position::Baseline,
            recovered: false,
        }
    }

    /// Changes since `cursor`, the one the last round ended with.
    pub fn delta(cursor: Value) -> RoundState {
        RoundState {
            baseline: false,
            position: Position::Delta(cursor),
            recovered: false,
        }
    }

    /// An interrupted round, from its last committed page.
    pub fn resume(baseline: bool, next: Value) -> RoundState {
        RoundState {
            baseline,
            position: Position::Continue(next),
            recovered: false,
        }
    }
}

/// What the round does with a page outcome.
#[derive(Debug)]
pub enum Step {
    /// Commit the page's changes, the scopes to sweep (the page's completed scopes, and on a
    /// baseline's last page the feed's baseline scopes) and the cursor in one transaction; then
    /// go on from `next`, or end the round when it is `None`.
    Commit {
        page: Page,
        sweep: Vec<(Collection, Option<String>)>,
        cursor: FeedCursor,
        next: Option<RoundState>,
    },
    /// Microsoft refused the delta cursor: this feed starts over as a baseline, with a fresh
    /// generation, so its sweep removes what Microsoft no longer returns.
    Rebaseline(RoundState),
    /// The tenant lacks the licence the feed needs: turn the P2 feeds off; the round ends.
    LicenseRequired(String),
    /// The round failed; it resumes from its last committed page next time.
    Failed(FeedError),
}

/// The next step of a round in `state`, given the outcome of the feed's call for the next
/// page and the feed's baseline scopes. Pure: the caller does the I/O.
pub fn step(
    state: &RoundState,
    outcome: Result<Page, FeedError>,
    baseline_scopes: &[(Collection, Option<String>)],
) -> Step {
    let page = match outcome {
        Ok(page) => page,
        Err(error)
            if !state.recovered
                && (error == FeedError::DeltaTokenExpired
                    || refuses_continuation(&state.position, &error)) =>
        {
            return Step::Rebaseline(RoundState {
                recovered: true,
                ..RoundState::baseline()
            });
        }
        Err(FeedError::LicenseRequired(message)) => return Step::LicenseRequired(message),
        Err(error) => return Step::Failed(error),
    };
    let mut sweep = page.completed.clone();
    let (cursor, next) = match &page.next {
        Next::Continue(after) => (
            FeedCursor::InRound {
                baseline: state.baseline,
                next: after.clone(),
            },
            Some(RoundState {
                position: Position::Continue(after.clone()),
                ..state.clone()
            }),
        ),
        Next::RoundDone(cursor) => {
            if state.baseline {
                sweep.extend(baseline_scopes.iter().cloned());
            }
            (
                FeedCursor::Idle {
                    cursor: cursor.clone(),
                },
                None,
            )
        }
    };
    Step::Commit {
        page,
        sweep,
        cursor,
        next,
    }
}

/// Whether Microsoft refused a stored continuation link itself, rather than failing to answer
/// it: a 400 (`Directory_ExpiredPageToken` and other dead `$skiptoken`s), 404 or 410 on the page
/// a round resumed from. Restarting the round is the only way forward.
fn refuses_continuation(position: &Position, error: &FeedError) -> bool {
    matches!(position, Position::Continue(_))
        && matches!(
            error,
            FeedError::Api(
                ApiError::NotFound { .. }
                    | ApiError::Other {
                        status: Some(400 | 404 | 410),
                        ..
                    }
            )
        )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scopes() -> Vec<(Collection, Option<String>)> {
        vec![(Collection::User, None)]
    }

    fn page(next: Next) -> Page {
        Page {
            completed: vec![(Collection::GroupMember, Some("g1/".into()))],
            next,
            ..Page::default()
        }
    }

    #[test]
    fn a_middle_page_commits_its_own_sweeps_and_continues_where_it_ended() {
        let state = RoundState::baseline();
        let Step::Commit {
            sweep,
            cursor,
            next,
            ..
        } = step(&state, Ok(page(Next::Continue(json!("p2")))), &scopes())
        else {
            panic!("a page is committed");
        };
        assert_eq!(sweep, [(Collection::GroupMember, Some("g1/".into()))]);
        assert_eq!(
            cursor,
            FeedCursor::InRound {
                baseline: true,
                next: json!("p2")
            }
        );
        assert_eq!(
            next.map(|n| n.position),
            Some(Position::Continue(json!("p2")))
        );
    }

    #[test]
    fn a_baseline_s_last_page_sweeps_the_baseline_scopes_a_delta_s_does_not() {
        for (state, swept) in [
            (RoundState::baseline(), true),
            (RoundState::delta(json!("d1")), false),
        ] {
            let Step::Commit {
                sweep,
                cursor,
                next,
                ..
            } = step(&state, Ok(page(Next::RoundDone(json!("d2")))), &scopes())
            else {
                panic!("a page is committed");
            };
            assert_eq!(
                sweep.contains(&(Collection::User, None)),
                swept,
                "{state:?}"
            );
            assert_eq!(
                cursor,
                FeedCursor::Idle {
                    cursor: json!("d2")
                }
            );
            assert!(next.is_none(), "the round ends");
        }
    }

    #[test]
    fn a_refused_cursor_rebaselines_once_then_fails() {
        let state = RoundState::delta(json!("old"));
        let Step::Rebaseline(again) = step(&state, Err(FeedError::DeltaTokenExpired), &scopes())
        else {
            panic!("a refused cursor starts a baseline");
        };
        assert!(again.baseline && again.recovered);
        assert_eq!(again.position, Position::Baseline);
        assert!(matches!(
            step(&again, Err(FeedError::DeltaTokenExpired), &scopes()),
            Step::Failed(FeedError::DeltaTokenExpired)
        ));
    }

    #[test]
    fn a_missing_licence_and_other_errors_end_the_round() {
        let state = RoundState::baseline();
        assert!(matches!(
            step(&state, Err(FeedError::LicenseRequired("P2".into())), &scopes()),
            Step::LicenseRequired(m) if m == "P2"
        ));
        let failed = step(&state, Err(FeedError::Store("disk".into())), &scopes());
        assert!(matches!(failed, Step::Failed(FeedError::Store(_))));
    }

    #[test]
    fn a_refused_continuation_link_restarts_the_round_but_a_first_page_error_fails_it() {
        let expired_page = || {
            Err(FeedError::Api(ApiError::Other {
                status: Some(400),
                code: "Directory_ExpiredPageToken".into(),
                message: "The specified page token value has expired".into(),
            }))
        };
        let resumed = RoundState::resume(false, json!("https://graph/users?$skiptoken=x"));
        let Step::Rebaseline(again) = step(&resumed, expired_page(), &scopes()) else {
            panic!("a refused continuation link starts a baseline");
        };
        assert!(again.baseline && again.recovered);
        // A 400 on a round's first request is a bad request of ours, not a dead link.
        assert!(matches!(
            step(&RoundState::baseline(), expired_page(), &scopes()),
            Step::Failed(_)
        ));
        // Throttling or an outage on a resumed page is retried next round, not re-read.
        let unavailable = Err(FeedError::Api(ApiError::Other {
            status: Some(503),
            code: "ServiceUnavailable".into(),
            message: "try later".into(),
        }));
        assert!(matches!(
            step(&resumed, unavailable, &scopes()),
            Step::Failed(_)
        ));
    }
}
