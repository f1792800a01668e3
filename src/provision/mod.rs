//! Grant and revoke: the one surface the command line's one-shots (`--grant-entitlement`,
//! `--revoke-grant`) and ConductorOne's grant and revoke tasks both call.
//!
//! A request names baton ids (DATA_MODEL.md). They are resolved against the store, never by a
//! re-sync (`target`); the write Microsoft documents for that entitlement is sent through the
//! client's one pipeline (`entra`, `arm`); its answer becomes an outcome (granted or already
//! there; revoked or already gone: baton's `GrantAlreadyExists` / `GrantAlreadyRevoked`) or a
//! typed error carrying Microsoft's request id. A write that succeeded is recorded in the store
//! at once, as a page of the same item changes the feeds would make, so the change log (and the
//! next diff) carries it, and the next round finds the store already agreeing with Microsoft.
//!
//! It must not print, parse a command line, or read the tenant beyond what one write needs.

mod arm;
mod entra;
mod target;

use std::fmt;
use std::sync::Arc;

use crate::azure::{ApiError, AzureClient, WriteError};
use crate::feeds::Change;
use crate::model::proto;
use crate::store::Store;

pub use target::PrincipalRef;
use target::{Principal, Slug, Target};

/// The store "feed" a provisioning write commits as: a round of its own, begun and forgotten
/// around each commit, so it leaves no cursor behind.
const FEED: &str = "provisioning";

/// What a grant did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantOutcome {
    Granted,
    /// The principal already held the entitlement; nothing was written.
    AlreadyExists,
}

/// What a revoke did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevokeOutcome {
    Revoked,
    /// The grant was already gone; nothing was written.
    AlreadyRevoked,
}

impl GrantOutcome {
    /// The annotations baton's Grant answer carries.
    pub fn annotations(self) -> Vec<proto::Any> {
        match self {
            GrantOutcome::Granted => Vec::new(),
            GrantOutcome::AlreadyExists => vec![proto::any(&proto::GrantAlreadyExists {})],
        }
    }
}

impl RevokeOutcome {
    /// The annotations baton's Revoke answer carries.
    pub fn annotations(self) -> Vec<proto::Any> {
        match self {
            RevokeOutcome::Revoked => Vec::new(),
            RevokeOutcome::AlreadyRevoked => vec![proto::any(&proto::GrantAlreadyRevoked {})],
        }
    }
}

/// Grant or revoke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Grant,
    Revoke,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Grant => "grant",
            Action::Revoke => "revoke",
        })
    }
}

/// A write Microsoft refused: which, to whom, why, and Microsoft's request id.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub action: Action,
    pub entitlement: String,
    /// `<resource type>:<id>` of the principal.
    pub principal: String,
    pub error: ApiError,
    pub request_id: Option<String>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} for {} failed: {}; request id {}",
            self.action,
            self.entitlement,
            self.principal,
            self.error,
            self.request_id.as_deref().unwrap_or("(none sent)")
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "provisioning is disabled: grant and revoke need --provisioning (BATON_PROVISIONING=true); nothing was written"
    )]
    Disabled,
    #[error("{0}")]
    UnknownId(String),
    #[error("entitlement {entitlement} cannot be granted or revoked by this connector: {reason}")]
    NotProvisionable { entitlement: String, reason: String },
    /// Microsoft refused the principal for this entitlement (a 400: e.g. a group as a group's
    /// owner, a group that is not role-assignable for a directory role).
    #[error("the principal is refused: {0}")]
    Refused(Box<Rejection>),
    /// 403: the app lacks a write permission (or a policy blocks it).
    #[error("permission missing: {0}")]
    Forbidden(Box<Rejection>),
    /// The tenant lacks the licence the call needs (`AadPremiumLicenseRequired`).
    #[error("licence missing: {0}")]
    LicenseRequired(Box<Rejection>),
    /// Anything else: the object is gone from the tenant, Microsoft is unavailable, ...
    #[error("{0}")]
    Failed(Box<Rejection>),
    /// The write went through but the store could not record it; the next round will.
    #[error(
        "the {action} was applied in the tenant, but recording it in the store failed (the next sync round records it): {error:#}"
    )]
    NotRecorded {
        action: Action,
        error: anyhow::Error,
    },
    #[error("reading the store: {0:#}")]
    Store(anyhow::Error),
}

impl ProvisionError {
    fn rejected(rejection: Rejection) -> ProvisionError {
        let rejection = Box::new(rejection);
        match (&rejection.error, rejection.action) {
            (ApiError::Forbidden { .. }, _) => ProvisionError::Forbidden(rejection),
            (ApiError::LicenseRequired { .. }, _) => ProvisionError::LicenseRequired(rejection),
            (
                ApiError::Other {
                    status: Some(400), ..
                },
                Action::Grant,
            ) => ProvisionError::Refused(rejection),
            _ => ProvisionError::Failed(rejection),
        }
    }
}

/// Grants and revokes through `client`, recording each success in `store`.
#[derive(Clone)]
pub struct Provisioner {
    client: AzureClient,
    store: Arc<Store>,
    enabled: bool,
}

/// One resolved request: what to write, and to whom.
pub(crate) struct Request<'a> {
    pub(crate) client: &'a AzureClient,
    pub(crate) store: &'a Store,
    pub(crate) action: Action,
    pub(crate) entitlement: &'a str,
    pub(crate) target: &'a Target,
    pub(crate) principal: &'a Principal,
}

impl Request<'_> {
    /// The typed error for a write Microsoft refused.
    pub(crate) fn rejected(&self, failure: WriteError) -> ProvisionError {
        ProvisionError::rejected(Rejection {
            action: self.action,
            entitlement: self.entitlement.to_string(),
            principal: self.principal.baton_id(),
            error: failure.error,
            request_id: failure.request_id,
        })
    }
}

/// What a write did, and the item changes that bring the store in line with it.
pub(crate) struct Applied<O> {
    pub(crate) outcome: O,
    pub(crate) changes: Vec<Change>,
}

impl Provisioner {
    /// `enabled` is the `provisioning` setting: without it every call is refused before any
    /// request is sent.
    pub fn new(client: AzureClient, store: Arc<Store>, enabled: bool) -> Provisioner {
        Provisioner {
            client,
            store,
            enabled,
        }
    }

    /// Grants `entitlement_id` to `principal`.
    pub async fn grant(
        &self,
        entitlement_id: &str,
        principal: &PrincipalRef,
    ) -> Result<GrantOutcome, ProvisionError> {
        if !self.enabled {
            return Err(ProvisionError::Disabled);
        }
        let (target, principal) = self.resolve(entitlement_id, principal)?;
        let request = self.request(Action::Grant, entitlement_id, &target, &principal);
        let applied = match &target.slug {
            Slug::AzureRole(_) | Slug::AzureEligible(_) => arm::grant(&request).await?,
            _ => entra::grant(&request).await?,
        };
        self.record(Action::Grant, applied.changes).await?;
        Ok(applied.outcome)
    }

    /// Revokes `grant_id` (`<entitlement id>:<principal type>:<principal id>`). Its entitlement
    /// and principal must be known to the store; the grant itself need not be (a second revoke
    /// answers `AlreadyRevoked`).
    pub async fn revoke(&self, grant_id: &str) -> Result<RevokeOutcome, ProvisionError> {
        if !self.enabled {
            return Err(ProvisionError::Disabled);
        }
        let (entitlement_id, principal) = target::split_grant_id(grant_id)?;
        let (target, principal) = self.resolve(entitlement_id, &principal)?;
        let request = self.request(Action::Revoke, entitlement_id, &target, &principal);
        let applied = match &target.slug {
            Slug::AzureRole(_) | Slug::AzureEligible(_) => arm::revoke(&request).await?,
            _ => entra::revoke(&request).await?,
        };
        self.record(Action::Revoke, applied.changes).await?;
        Ok(applied.outcome)
    }

    fn resolve(
        &self,
        entitlement_id: &str,
        principal: &PrincipalRef,
    ) -> Result<(Target, Principal), ProvisionError> {
        let target = target::entitlement(&self.store, entitlement_id)?;
        let principal = target::principal(&self.store, principal)?;
        Ok((target, principal))
    }

    fn request<'a>(
        &'a self,
        action: Action,
        entitlement: &'a str,
        target: &'a Target,
        principal: &'a Principal,
    ) -> Request<'a> {
        Request {
            client: &self.client,
            store: &self.store,
            action,
            entitlement,
            target,
            principal,
        }
    }

    /// Commits `changes` as one page, so the store's records and change log follow at once.
    async fn record(&self, action: Action, changes: Vec<Change>) -> Result<(), ProvisionError> {
        if changes.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let committed = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let generation = store.begin_round(FEED)?;
            let committed = store.commit_page(FEED, &changes, generation, &[], None);
            store.forget_feed(FEED)?;
            committed.map(drop)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|result| result);
        committed.map_err(|error| ProvisionError::NotRecorded { action, error })
    }
}
