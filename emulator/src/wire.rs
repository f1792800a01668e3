//! Switchable wire behaviours: answers Microsoft documents (or real tenants were seen to give)
//! that the default emulator does not give, because they need a particular tenant or moment.
//! Each switch makes the emulator answer one such way, so a test (or the random property test)
//! can prove the worker copes with it. All are off by default.

use std::time::Duration;

/// Which documented behaviours the emulator shows. Cheap to clone; read per request.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct WireBehaviours {
    /// ARM serves the management-group tree from a cache unless the request says
    /// `Cache-Control: no-cache` (Management Groups - Get: the header "indicates whether the
    /// request should utilize any caches"): the cache holds the tree as first served after the
    /// switch was turned on.
    pub management_group_cache: bool,
    /// The tenant is in a national cloud, where PIM for Groups does not exist
    /// (privilegedaccessgroup-list-eligibilityschedules: "global service" only): its endpoints
    /// answer 400 as an unknown segment.
    pub national_cloud: bool,
    /// Graph answers only what its delta pages document for service principals:
    /// `$deltatoken=latest` is refused with 400 (servicePrincipal-delta documents neither it nor
    /// `Prefer: return=minimal`, which is ignored).
    pub service_principal_delta_as_documented: bool,
    /// `/subscriptions` also lists this many subscriptions of another tenant, delegated through
    /// Azure Lighthouse (Subscriptions - List's recorded example holds two tenant ids).
    pub foreign_subscriptions: usize,
    /// Directory list `$skiptoken`s older than this (emulator clock) are refused with
    /// `400 Directory_ExpiredPageToken`, as large tenants see mid-pass (msgraph-sdk-dotnet#2254).
    pub page_token_max_age: Option<Duration>,
    /// ARM's eligibility instance lists also return, for a group's eligibility, one row per
    /// user member with `memberType: Group` (RoleEligibilityScheduleInstance's `memberType`).
    pub group_member_eligibility_rows: bool,
    /// The caller lacks Management Group Reader: the management group tree and everything at
    /// management group or root scope answers 403 `AuthorizationFailed`.
    pub management_groups_forbidden: bool,
    /// The worker's app was consented read permissions only: every Graph write (any method but
    /// GET, `$batch` itself excepted; its inner writes are refused one by one) answers 403
    /// `Authorization_RequestDenied`, and every ARM write (PUT/DELETE under
    /// `Microsoft.Authorization`: role assignments, eligibility requests) answers 403
    /// `AuthorizationFailed`. Nothing is changed in the tenant.
    pub read_only_app: bool,
}
