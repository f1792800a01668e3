//! One subscription's feed: resource groups, Azure role definitions, role assignments, PIM
//! eligibility (P2), storage accounts and their blob containers. ARM has no delta, so the feed
//! lists; what it saves is *when*: after the baseline, a delta round reads only the Activity Log
//! window since its last read (one call when nothing happened), at most every
//! `activity_log_every` in the subscription's own minute slot (so hundreds of subscriptions
//! spread their reads instead of costing one call each per round), and re-lists just the RBAC
//! lists a succeeded write or delete made stale. Everything is re-listed every `full_pass_every`
//! (resource groups, storage and containers change without Authorization events), and when the
//! cursor is older than the log's 90 days.
//!
//! Role assignments: ARM's list at a subscription also returns those inherited from above. Each
//! is keyed by its own lower-cased id, and this feed keeps only ids under its own subscription
//! (the tenant feed owns management group and root assignments), so each item has one owner
//! feed and one sweep scope.
//!
//! Every list sweeps its own scope when it was read to the end, in baselines and delta rounds
//! alike, so a forbidden list keeps its stored items in both. Containers are swept per storage
//! account (a forbidden account keeps its stored containers); the containers of an account the
//! listing no longer returns are removed with it.

use std::collections::{BTreeSet, VecDeque};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::activity_log::{self, RETENTION, Seen, Stale};
use super::arm_tenant::{AUTHORIZATION_API, ELIGIBILITY_API, string_field};
use super::graph::CollectionPage;
use super::schedules;
use super::{
    Change, Collection, Feed, FeedContext, FeedError, ItemKey, Next, Page, Position, decode_state,
    encode_state, store_error,
};
use crate::azure::ApiError;

const RESOURCES_API: &str = "2021-04-01";
const STORAGE_API: &str = "2023-05-01";

pub struct SubscriptionFeed {
    subscription: String,
}

impl SubscriptionFeed {
    pub fn new(subscription: &str) -> SubscriptionFeed {
        SubscriptionFeed {
            subscription: subscription.to_ascii_lowercase(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
enum SubscriptionJob {
    ActivityLog,
    ResourceGroups,
    RoleDefinitions,
    RoleAssignments,
    RoleEligibility,
    StorageAccounts,
    /// One storage account's blob containers: its ARM id and its item id.
    Containers {
        account: String,
        key: String,
    },
}

/// The cursor between rounds.
#[derive(Clone, Serialize, Deserialize)]
struct SubscriptionCursor {
    /// The end of the last Activity Log window, or the start of the last full listing (unix s).
    checked_until: i64,
    /// Event ids already acted on that the next (overlapping) window may return again.
    seen: Seen,
    /// When the last full listing started (unix s).
    last_full: i64,
}

#[derive(Serialize, Deserialize)]
struct SubscriptionRound {
    jobs: VecDeque<SubscriptionJob>,
    /// The nextLink of the job at the head of `jobs`, once its first page was read.
    next_link: Option<String>,
    /// The Activity Log window of a delta round: `[from, to]` (unix s).
    window: Option<(i64, i64)>,
    /// The storage accounts this round's listing returned (their containers are re-listed;
    /// the containers of the others are forgotten).
    #[serde(default)]
    accounts_seen: Vec<String>,
    cursor: SubscriptionCursor,
}

impl SubscriptionFeed {
    fn full_round(&self, ctx: &FeedContext, now: i64) -> SubscriptionRound {
        let mut jobs = VecDeque::from([
            SubscriptionJob::ResourceGroups,
            SubscriptionJob::RoleDefinitions,
            SubscriptionJob::RoleAssignments,
        ]);
        if !ctx.options.skip_p2 {
            jobs.push_back(SubscriptionJob::RoleEligibility);
        }
        jobs.push_back(SubscriptionJob::StorageAccounts);
        SubscriptionRound {
            jobs,
            next_link: None,
            window: None,
            accounts_seen: Vec::new(),
            cursor: SubscriptionCursor {
                // Set before listing, so changes made during the listing are in the next window.
                checked_until: now,
                seen: Seen::new(),
                last_full: now,
            },
        }
    }

    fn start(
        &self,
        ctx: &FeedContext,
        position: &Position,
    ) -> Result<SubscriptionRound, FeedError> {
        let now = (ctx.clock)().unix_timestamp();
        let feed = self.name();
        Ok(match position {
            Position::Continue(state) => decode_state(&feed, state)?,
            Position::Baseline => self.full_round(ctx, now),
            Position::Delta(cursor) => {
                let cursor: SubscriptionCursor = decode_state(&feed, cursor)?;
                let overlap = ctx.options.activity_log_overlap.as_secs() as i64;
                let from = cursor.checked_until - overlap;
                let too_old = now - from >= RETENTION.as_secs() as i64;
                let full_due =
                    now - cursor.last_full >= ctx.options.full_pass_every.as_secs() as i64;
                if too_old || full_due {
                    self.full_round(ctx, now)
                } else if !self.activity_log_due(
                    ctx.options.activity_log_every,
                    now - cursor.checked_until,
                    now,
                ) {
                    // Not this subscription's turn: the round ends at once, without a call.
                    SubscriptionRound {
                        jobs: VecDeque::new(),
                        next_link: None,
                        window: None,
                        accounts_seen: Vec::new(),
                        cursor,
                    }
                } else {
                    SubscriptionRound {
                        jobs: VecDeque::from([SubscriptionJob::ActivityLog]),
                        next_link: None,
                        window: Some((from, now)),
                        accounts_seen: Vec::new(),
                        cursor: SubscriptionCursor {
                            checked_until: now,
                            ..cursor
                        },
                    }
                }
            }
        })
    }

    /// Whether to read the Activity Log now, `waited` seconds after the last read. Each
    /// subscription has its own minute slot in the period, so a worker with hundreds of them
    /// spreads the reads over the period instead of making them all in one round; one that has
    /// waited two periods (rounds less often than every minute) reads whatever the slot.
    fn activity_log_due(&self, every: std::time::Duration, waited: i64, now: i64) -> bool {
        let every = every.as_secs() as i64;
        let minutes = every / 60;
        if waited < every {
            return false;
        }
        if minutes <= 1 || waited >= 2 * every {
            return true;
        }
        // FNV-1a: a slot that is the same in every process and release.
        let slot = self
            .subscription
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        (now / 60 + (slot % minutes as u64) as i64) % minutes == 0
    }

    fn first_url(
        &self,
        job: &SubscriptionJob,
        window: Option<(i64, i64)>,
    ) -> Result<String, FeedError> {
        let s = &self.subscription;
        Ok(match job {
            SubscriptionJob::ActivityLog => {
                let (from, to) = window.ok_or_else(|| {
                    FeedError::Malformed(format!(
                        "{}: an Activity Log job without a window",
                        self.name()
                    ))
                })?;
                let time = |t: i64| {
                    OffsetDateTime::from_unix_timestamp(t).map_err(|e| {
                        FeedError::Malformed(format!("{}: bad window time: {e}", self.name()))
                    })
                };
                activity_log::query_url(s, time(from)?, time(to)?)?
            }
            SubscriptionJob::ResourceGroups => {
                format!("/subscriptions/{s}/resourcegroups?api-version={RESOURCES_API}")
            }
            SubscriptionJob::RoleDefinitions => format!(
                "/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions?api-version={AUTHORIZATION_API}&$filter=atScopeAndBelow()"
            ),
            SubscriptionJob::RoleAssignments => format!(
                "/subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments?api-version={AUTHORIZATION_API}"
            ),
            SubscriptionJob::RoleEligibility => format!(
                "/subscriptions/{s}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances?api-version={ELIGIBILITY_API}"
            ),
            SubscriptionJob::StorageAccounts => format!(
                "/subscriptions/{s}/providers/Microsoft.Storage/storageAccounts?api-version={STORAGE_API}"
            ),
            SubscriptionJob::Containers { account, .. } => {
                format!("{account}/blobServices/default/containers?api-version={STORAGE_API}")
            }
        })
    }

    /// Reads one listed item into `page` (and new jobs into `round`).
    fn read_item(
        &self,
        ctx: &FeedContext,
        job: &SubscriptionJob,
        item: &Value,
        round: &mut SubscriptionRound,
        stale: &mut BTreeSet<Stale>,
        page: &mut Page,
    ) -> Result<(), FeedError> {
        let s = &self.subscription;
        let what = self.name();
        let mut upsert = |collection, id: String| {
            page.changes.push(Change::Upsert {
                key: ItemKey::new(collection, id),
                value: item.clone(),
            })
        };
        match job {
            SubscriptionJob::ActivityLog => {
                let event = activity_log::read_event(item)?;
                if round.cursor.seen.contains_key(&event.id) {
                    return Ok(());
                }
                if let Some(list) = event.stale {
                    stale.insert(list);
                }
                round
                    .cursor
                    .seen
                    .insert(event.id, event.timestamp.unix_timestamp());
            }
            SubscriptionJob::ResourceGroups => {
                upsert(
                    Collection::ResourceGroup,
                    format!("{s}:{}", string_field(item, "name", &what)?),
                );
            }
            SubscriptionJob::RoleDefinitions => {
                upsert(
                    Collection::RoleDefinition,
                    format!("{s}:{}", string_field(item, "name", &what)?),
                );
            }
            SubscriptionJob::RoleAssignments | SubscriptionJob::RoleEligibility => {
                let id = string_field(item, "id", &what)?.to_ascii_lowercase();
                if id.starts_with(&format!("/subscriptions/{s}/")) && schedules::is_direct(item) {
                    let collection = if *job == SubscriptionJob::RoleAssignments {
                        Collection::RoleAssignment
                    } else {
                        Collection::RoleEligibility
                    };
                    upsert(collection, id);
                }
            }
            SubscriptionJob::StorageAccounts => {
                let arm_id = string_field(item, "id", &what)?;
                let name = string_field(item, "name", &what)?;
                let group = resource_group_of(&arm_id).ok_or_else(|| {
                    FeedError::Malformed(format!(
                        "{what}: storage account id {arm_id} names no resource group"
                    ))
                })?;
                let group = listed_group_spelling(ctx, s, group)?;
                let key = format!("{s}:{group}:{name}");
                upsert(Collection::StorageAccount, key.clone());
                round.accounts_seen.push(key.clone());
                if !ctx.options.skip_storage_containers && has_blob_service(item) {
                    round.jobs.push_back(SubscriptionJob::Containers {
                        account: arm_id,
                        key,
                    });
                }
            }
            SubscriptionJob::Containers { key, .. } => {
                upsert(
                    Collection::Container,
                    format!("{key}:{}", string_field(item, "name", &what)?),
                );
            }
        }
        Ok(())
    }

    /// The scope a job has listed completely when its last page is read.
    fn completed_scope(&self, job: &SubscriptionJob) -> Option<(Collection, Option<String>)> {
        let s = &self.subscription;
        let keyed = Some(format!("{s}:"));
        let by_arm_id = Some(format!("/subscriptions/{s}/"));
        match job {
            SubscriptionJob::ActivityLog => None,
            SubscriptionJob::Containers { key, .. } => {
                Some((Collection::Container, Some(format!("{key}:"))))
            }
            SubscriptionJob::ResourceGroups => Some((Collection::ResourceGroup, keyed)),
            SubscriptionJob::RoleDefinitions => Some((Collection::RoleDefinition, keyed)),
            SubscriptionJob::RoleAssignments => Some((Collection::RoleAssignment, by_arm_id)),
            SubscriptionJob::RoleEligibility => Some((Collection::RoleEligibility, by_arm_id)),
            SubscriptionJob::StorageAccounts => Some((Collection::StorageAccount, keyed)),
        }
    }
}

impl SubscriptionFeed {
    /// Containers are swept per account, so a storage account that is gone would leave its
    /// containers behind: forget them when the account list is complete.
    fn forget_containers_of_gone_accounts(
        &self,
        ctx: &FeedContext,
        round: &SubscriptionRound,
        page: &mut Page,
    ) -> Result<(), FeedError> {
        let stored = ctx
            .items
            .item_ids(
                Collection::StorageAccount,
                &format!("{}:", self.subscription),
            )
            .map_err(store_error)?;
        for account in stored {
            if !round.accounts_seen.contains(&account) {
                page.changes.push(Change::RemovePrefix {
                    collection: Collection::Container,
                    prefix: format!("{account}:"),
                });
            }
        }
        Ok(())
    }
}

/// The spelling of resource group `group` of subscription `s` that the resource group list
/// gave, so that a storage account (and its containers) is keyed under the group item that
/// exists. Resource group names are case-insensitive in ARM, and the ids of the resources in a
/// group do not always spell it as the list does. A group not (yet) listed keeps `group`.
fn listed_group_spelling(ctx: &FeedContext, s: &str, group: &str) -> Result<String, FeedError> {
    let prefix = format!("{s}:");
    let listed = ctx
        .items
        .item_ids(Collection::ResourceGroup, &prefix)
        .map_err(store_error)?;
    Ok(listed
        .iter()
        .filter_map(|id| id.strip_prefix(&prefix))
        .find(|name| name.eq_ignore_ascii_case(group))
        .unwrap_or(group)
        .to_string())
}

/// Whether a storage account has a Blob service whose containers can be listed. A `FileStorage`
/// account holds only Azure Files shares (storage-account-overview, "Types of storage
/// accounts"), and listing its blob containers answers 400 `FeatureNotSupportedForAccount`.
fn has_blob_service(account: &Value) -> bool {
    !account
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|kind| kind.eq_ignore_ascii_case("FileStorage"))
}

/// Whether an error says the account does not support what was asked
/// (`FeatureNotSupportedForAccount`, "Blob is not supported for the account."): for a container
/// list, that the account has none.
fn feature_not_supported(error: &ApiError) -> bool {
    matches!(error, ApiError::Other { code, .. } if code.eq_ignore_ascii_case("FeatureNotSupportedForAccount"))
}

/// The resource group segment of an ARM id, as ARM spells it.
fn resource_group_of(arm_id: &str) -> Option<&str> {
    let mut segments = arm_id.split('/');
    while let Some(segment) = segments.next() {
        if segment.eq_ignore_ascii_case("resourceGroups") {
            return segments.next().filter(|g| !g.is_empty());
        }
    }
    None
}

impl Feed for SubscriptionFeed {
    fn name(&self) -> String {
        format!("arm_subscription:{}", self.subscription)
    }

    /// None beyond what each list completes: a baseline lists the same jobs as a delta round's
    /// full pass, and each list sweeps its own scope when it was read to the end
    /// ([`SubscriptionFeed::completed_scope`]). One rule for both kinds of round: a list the
    /// caller may not read (403) sweeps nothing, so its stored items stay.
    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)> {
        Vec::new()
    }

    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>> {
        Box::pin(async move {
            let mut round = self.start(ctx, position)?;
            let mut page = Page::default();
            let Some(job) = round.jobs.front().cloned() else {
                page.next = Next::RoundDone(encode_state(&round.cursor)?);
                return Ok(page);
            };
            let url = match round.next_link.take() {
                Some(link) => link,
                None => self.first_url(&job, round.window)?,
            };
            let listing = match ctx.api.arm_get(&url).await {
                Ok(body) => Some(CollectionPage::arm(body, &self.name())?),
                // A container list whose account vanished meanwhile, or whose account has no
                // Blob service: nothing to list.
                Err(ref error)
                    if matches!(job, SubscriptionJob::Containers { .. })
                        && (matches!(error, ApiError::NotFound { .. })
                            || feature_not_supported(error)) =>
                {
                    Some(CollectionPage {
                        items: Vec::new(),
                        next_link: None,
                        delta_link: None,
                    })
                }
                // The Activity Log refused the window: 400 for a start time past its retention
                // (about 90 days; azure-cli #4885 shows "Bad Request" just past it), which a
                // round resumed long after it was planned can ask for. The log cannot say what
                // changed, so everything is listed again, as for a cursor that is too old.
                Err(ApiError::Other {
                    status: Some(400),
                    code,
                    message,
                }) if job == SubscriptionJob::ActivityLog => {
                    tracing::warn!(feed = %self.name(), code = %code, message = %message, "the Activity Log refused the query window; listing everything instead");
                    let now = (ctx.clock)().unix_timestamp();
                    page.next = Next::Continue(encode_state(&self.full_round(ctx, now))?);
                    return Ok(page);
                }
                // Not allowed to read this list: keep what the store has, say so once a round.
                Err(ApiError::Forbidden { code, .. }) => {
                    tracing::warn!(feed = %self.name(), job = ?job, code = %code, "listing forbidden; keeping the stored items");
                    None
                }
                Err(other) => return Err(other.into()),
            };
            let mut stale = BTreeSet::new();
            let mut next_link = None;
            if let Some(listing) = listing {
                for item in &listing.items {
                    self.read_item(ctx, &job, item, &mut round, &mut stale, &mut page)?;
                }
                next_link = listing.next_link;
                if next_link.is_none() {
                    page.completed.extend(self.completed_scope(&job));
                    if job == SubscriptionJob::StorageAccounts {
                        self.forget_containers_of_gone_accounts(ctx, &round, &mut page)?;
                    }
                }
            }
            round.next_link = next_link;
            if round.next_link.is_none() {
                round.jobs.pop_front();
                if job == SubscriptionJob::ActivityLog
                    && let Some((_, to)) = round.window
                    && let Ok(end) = OffsetDateTime::from_unix_timestamp(to)
                {
                    activity_log::prune(
                        &mut round.cursor.seen,
                        end,
                        ctx.options.activity_log_overlap,
                    );
                }
            }
            // Stale lists found in this Activity Log page, each queued once.
            for list in &stale {
                let job = match list {
                    Stale::RoleAssignments => SubscriptionJob::RoleAssignments,
                    Stale::RoleDefinitions => SubscriptionJob::RoleDefinitions,
                    Stale::RoleEligibility if ctx.options.skip_p2 => continue,
                    Stale::RoleEligibility => SubscriptionJob::RoleEligibility,
                };
                if !round.jobs.contains(&job) {
                    round.jobs.push_back(job);
                }
            }
            page.next = if round.jobs.is_empty() {
                Next::RoundDone(encode_state(&round.cursor)?)
            } else {
                Next::Continue(encode_state(&round)?)
            };
            Ok(page)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resource_group_is_read_from_the_arm_id_whatever_its_case() {
        assert_eq!(
            resource_group_of(
                "/subscriptions/s/resourceGroups/rg-1/providers/Microsoft.Storage/storageAccounts/a"
            ),
            Some("rg-1")
        );
        assert_eq!(
            resource_group_of("/subscriptions/s/resourcegroups/RG2/x"),
            Some("RG2")
        );
        assert_eq!(resource_group_of("/subscriptions/s"), None);
    }
}

#[cfg(test)]
mod activity_log_turns {
    use super::*;

    const FIVE_MINUTES: std::time::Duration = std::time::Duration::from_secs(300);

    #[test]
    fn subscriptions_take_turns_reading_the_activity_log() {
        let feeds: Vec<SubscriptionFeed> = (0..200)
            .map(|n| SubscriptionFeed::new(&format!("00000000-0000-0000-0000-{n:012}")))
            .collect();
        // All read at minute 0 (a baseline); then a round every minute.
        let mut last = vec![0_i64; feeds.len()];
        let mut reads_per_round = vec![];
        for minute in 1..=30_i64 {
            let now = minute * 60;
            let mut reads = 0;
            for (feed, last) in feeds.iter().zip(last.iter_mut()) {
                if feed.activity_log_due(FIVE_MINUTES, now - *last, now) {
                    *last = now;
                    reads += 1;
                }
            }
            reads_per_round.push(reads);
        }
        // Nobody reads before five minutes have passed.
        assert!(
            reads_per_round[..4].iter().all(|&r| r == 0),
            "{reads_per_round:?}"
        );
        // Afterwards every subscription reads once per five rounds, spread over the rounds.
        let steady = &reads_per_round[10..30];
        assert_eq!(steady.iter().sum::<usize>(), 200 * 20 / 5);
        assert!(
            steady.iter().all(|&r| r < 100),
            "spread, not all at once: {steady:?}"
        );
        assert!(
            last.iter().all(|&l| l >= 25 * 60),
            "nobody starves: {last:?}"
        );
    }

    #[test]
    fn a_subscription_that_waited_two_periods_reads_whatever_its_slot() {
        let feed = SubscriptionFeed::new("00000000-0000-0000-0000-000000000001");
        let now = 10_000 * 60;
        assert!(feed.activity_log_due(FIVE_MINUTES, 600, now));
        assert!(!feed.activity_log_due(FIVE_MINUTES, 200, now));
    }
}
