//! Feeds: one per collection of the data model, each turning API pages into [`Change`]s and a
//! cursor. A feed never writes the store itself; the sync engine commits each page's changes
//! together with the feed's next cursor.
//!
//! A feed is a small state machine driven one page at a time (like kube-rs's watcher):
//! `Position::Baseline` or `Position::Delta(cursor)` starts a round, each [`Page`] says either
//! `Next::Continue(state)` (call again with `Position::Continue(state)`) or
//! `Next::RoundDone(cursor)` (store it; the next round starts from `Position::Delta(cursor)`).
//! Every state and cursor is plain JSON, so a crash between pages resumes from the last commit.
//!
//! Feeds talk to Microsoft through [`Api`] and read the store through [`ItemReader`], two small
//! traits the engine implements for `azure::AzureClient` and `store::Store`.

pub mod activity_log;
pub mod app_role_assignments;
pub mod arm_tenant;
mod delta;
pub mod graph;
pub mod groups;
pub mod lists;
pub mod mailbox;
mod per_object;
pub mod schedules;
pub mod service_principals;
pub mod sp_owners;
pub mod subscription;
pub mod users;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::azure::{ApiError, BatchRequest, BatchResponse};
// The vocabulary feeds speak, re-exported so that a feed's `use super::...` names it.
pub use crate::item::{Change, Collection, ItemKey};

/// The calls a feed makes to Microsoft; implemented by `crate::azure::AzureClient`.
///
/// URLs are relative to the Graph root (`/v1.0/users/delta?...`) or the ARM root
/// (`/subscriptions?api-version=...`), or absolute nextLinks/deltaLinks replayed unchanged.
pub trait Api: Send + Sync {
    fn graph_get<'a>(
        &'a self,
        url: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Value, ApiError>>;
    /// Up to 20 requests; URLs relative to the version root (`/users/{id}/mailboxSettings`).
    fn graph_batch<'a>(
        &'a self,
        requests: Vec<BatchRequest>,
    ) -> BoxFuture<'a, Result<Vec<BatchResponse>, ApiError>>;
    fn arm_get<'a>(&'a self, url: &'a str) -> BoxFuture<'a, Result<Value, ApiError>>;
    /// GET with request headers (`Cache-Control: no-cache`). A double that cannot send headers
    /// may keep this default, which drops them.
    fn arm_get_with_headers<'a>(
        &'a self,
        url: &'a str,
        _headers: &'a [(&'a str, &'a str)],
    ) -> BoxFuture<'a, Result<Value, ApiError>> {
        self.arm_get(url)
    }
}

/// Read access to the items other feeds stored; implemented by `crate::store::Store`.
pub trait ItemReader: Send + Sync {
    fn item(&self, key: &ItemKey) -> anyhow::Result<Option<Value>>;
    fn item_ids(&self, collection: Collection, prefix: &str) -> anyhow::Result<Vec<String>>;
    /// Up to `limit` ids of `collection` greater than `after`, ascending: how a full pass over
    /// many objects resumes. Required, not derived from `item_ids`: a page must cost about
    /// `limit` reads, not a listing of the whole collection.
    fn item_ids_after(
        &self,
        collection: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<String>>;
}

/// The options that change what the feeds fetch. Read from the context on every round, so the
/// engine can turn the P2 feeds off (`skip_p2 = true`) after a `LicenseRequired`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeedOptions {
    /// Read `mailboxSettings.userPurpose` (the `--mailboxSettings` option).
    pub mailbox: bool,
    /// No PIM or other P2-only calls.
    pub skip_p2: bool,
    /// No blob container listing.
    pub skip_storage_containers: bool,
    /// PIM for Groups exists: false in national clouds, where its API pages say it is
    /// available in the global service only.
    pub pim_for_groups: bool,
    /// How often the hint-driven feeds (service principal owners, mailboxes) and the ARM
    /// subscription feeds re-read everything instead of only what hints or the Activity Log name.
    pub full_pass_every: Duration,
    /// How far each Activity Log query reaches back before the previous window's end, because
    /// events become queryable after their `eventTimestamp`.
    pub activity_log_overlap: Duration,
    /// How often each subscription reads its Activity Log. Events become queryable minutes
    /// after they happen anyway, and with hundreds of subscriptions one read each per round
    /// would dominate a quiet round's calls; the reads are spread over this period.
    pub activity_log_every: Duration,
    /// The least time between two polls of the per-object feeds that have no change signal at
    /// all (app role assignments, PIM for Groups eligibility), which dominate a quiet round's
    /// calls. Zero (the default) polls them every round; a round sooner than this is skipped
    /// without a call.
    pub poll_every: Duration,
}

impl Default for FeedOptions {
    fn default() -> FeedOptions {
        FeedOptions {
            mailbox: false,
            skip_p2: false,
            skip_storage_containers: false,
            pim_for_groups: true,
            full_pass_every: Duration::from_secs(24 * 3600),
            activity_log_overlap: Duration::from_secs(30 * 60),
            activity_log_every: Duration::from_secs(5 * 60),
            poll_every: Duration::ZERO,
        }
    }
}

/// Objects one feed learned about that another feed should re-read soon. A page reports the
/// hints it found; the engine accumulates them and passes, in the consumer's context, those
/// gathered since the consumer's last finished round. A consumer copies them into its round
/// state when the round starts, so a resumed round reads the same set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hints {
    /// Users created, or whose `mail` changed: their mailbox settings may have changed.
    pub mailbox_users: BTreeSet<String>,
    /// Service principals created or changed: their owners may have changed.
    pub service_principals: BTreeSet<String>,
}

impl Hints {
    pub fn is_empty(&self) -> bool {
        self.mailbox_users.is_empty() && self.service_principals.is_empty()
    }

    pub fn extend(&mut self, other: Hints) {
        self.mailbox_users.extend(other.mailbox_users);
        self.service_principals.extend(other.service_principals);
    }
}

/// The wall clock, injectable so that tests and the emulator control time.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// Everything a feed may use during one call.
#[derive(Clone)]
pub struct FeedContext {
    pub api: Arc<dyn Api>,
    pub items: Arc<dyn ItemReader>,
    pub options: FeedOptions,
    pub hints: Hints,
    pub clock: Clock,
}

/// Where a call to [`Feed::next_page`] starts.
#[derive(Clone, Debug, PartialEq)]
pub enum Position {
    /// The start of a full round with a fresh store generation.
    Baseline,
    /// The start of a delta round from the cursor the last round ended with.
    Delta(Value),
    /// The middle of a round: the state the previous page returned in `Next::Continue`.
    Continue(Value),
}

/// One page of a round.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Page {
    pub changes: Vec<Change>,
    /// Scopes this round has now listed completely; the engine sweeps what the round did not mark.
    pub completed: Vec<(Collection, Option<String>)>,
    /// What other feeds should re-read soon (see [`Hints`]).
    pub hints: Hints,
    pub next: Next,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// More pages in this round: call again with `Position::Continue(state)`.
    Continue(Value),
    /// The round is over: store this cursor and start the next round from it.
    RoundDone(Value),
}

impl Default for Next {
    fn default() -> Next {
        Next::RoundDone(Value::Null)
    }
}

/// Why a page could not be fetched, by what the engine should do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedError {
    /// Graph no longer accepts the cursor: re-baseline this feed.
    #[error("the delta cursor is no longer accepted; the feed must be re-baselined")]
    DeltaTokenExpired,
    /// The tenant lacks the P2 / ID Governance licence: turn the P2 feeds off.
    #[error("the tenant lacks the licence this feed needs: {0}")]
    LicenseRequired(String),
    #[error(transparent)]
    Api(ApiError),
    /// Microsoft answered with something this feed cannot read (or a stored state is corrupt).
    #[error("malformed response or state: {0}")]
    Malformed(String),
    /// Reading the store's items failed.
    #[error("reading the store failed: {0}")]
    Store(String),
}

impl FeedError {
    /// Whether the same call may succeed later (after throttling or an outage).
    pub fn is_retryable(&self) -> bool {
        matches!(self, FeedError::Api(e) if e.is_retryable())
    }
}

impl From<ApiError> for FeedError {
    fn from(error: ApiError) -> FeedError {
        match error {
            ApiError::DeltaTokenExpired { .. } => FeedError::DeltaTokenExpired,
            ApiError::LicenseRequired { message } => FeedError::LicenseRequired(message),
            other => FeedError::Api(other),
        }
    }
}

/// One collection's reader. A feed knows how to fetch; it never writes the store.
pub trait Feed: Send + Sync {
    /// Stable name: the key of its cursor in the store ("users", "arm_subscription:<sub>").
    fn name(&self) -> String;
    /// The scopes a full (baseline) round lists completely, swept at its end.
    fn baseline_scopes(&self) -> Vec<(Collection, Option<String>)>;
    /// Whether this feed has no change signal and is only re-listed by scheduled polls: a
    /// round that follows change signals only skips it once it has a cursor.
    fn polled(&self) -> bool {
        false
    }
    /// Fetches ONE page (at most one API call or one `$batch`).
    fn next_page<'a>(
        &'a self,
        ctx: &'a FeedContext,
        position: &'a Position,
    ) -> BoxFuture<'a, Result<Page, FeedError>>;
}

/// The tenant-wide feeds, in the order a baseline should run them (users before the mailbox
/// feed, service principals before their owners and assignments). Every feed is listed whatever
/// the options: a disabled feed (mailbox off, P2 skipped) ends its rounds at once with no
/// changes, so the engine can switch options at run time.
pub fn tenant_feeds() -> Vec<Box<dyn Feed>> {
    vec![
        Box::new(lists::organization()),
        Box::new(users::UsersFeed),
        Box::new(groups::GroupsFeed),
        Box::new(service_principals::ServicePrincipalsFeed),
        Box::new(sp_owners::ServicePrincipalOwnersFeed),
        Box::new(app_role_assignments::AppRoleAssignmentsFeed),
        Box::new(lists::directory_role_definitions()),
        Box::new(lists::directory_role_assignments()),
        Box::new(lists::directory_role_eligibility()),
        Box::new(lists::GroupEligibilityFeed),
        Box::new(mailbox::MailboxFeed),
        Box::new(arm_tenant::ArmTenantFeed),
    ]
}

/// The feed of one subscription (resource groups, RBAC, PIM, storage), for each subscription
/// the `arm_tenant` feed stored.
pub fn subscription_feed(subscription_id: &str) -> Box<dyn Feed> {
    Box::new(subscription::SubscriptionFeed::new(subscription_id))
}

/// The changes that forget a subscription the `arm_tenant` feed no longer lists: every item its
/// feed stored (the engine commits them, and drops that feed and its cursor).
pub fn subscription_removed(subscription_id: &str) -> Vec<Change> {
    let s = subscription_id.to_ascii_lowercase();
    let keyed = [
        Collection::ResourceGroup,
        Collection::RoleDefinition,
        Collection::StorageAccount,
        Collection::Container,
    ]
    .map(|collection| Change::RemovePrefix {
        collection,
        prefix: format!("{s}:"),
    });
    let by_arm_id = [Collection::RoleAssignment, Collection::RoleEligibility].map(|collection| {
        Change::RemovePrefix {
            collection,
            prefix: format!("/subscriptions/{s}/"),
        }
    });
    keyed.into_iter().chain(by_arm_id).collect()
}

/// Decodes a stored state or cursor, naming the feed when it is unreadable.
pub(crate) fn decode_state<T: serde::de::DeserializeOwned>(
    feed: &str,
    state: &Value,
) -> Result<T, FeedError> {
    serde_json::from_value(state.clone())
        .map_err(|e| FeedError::Malformed(format!("{feed}: unreadable cursor or state: {e}")))
}

pub(crate) fn encode_state<T: Serialize>(state: &T) -> Result<Value, FeedError> {
    serde_json::to_value(state)
        .map_err(|e| FeedError::Malformed(format!("cannot encode feed state: {e}")))
}

pub(crate) fn store_error(error: anyhow::Error) -> FeedError {
    FeedError::Store(format!("{error:#}"))
}
