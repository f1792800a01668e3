//! The expected access graph: what a correct worker must export for the emulator's tenant,
//! computed from the tenant alone, by ../shared/DATA_MODEL.md. Direct grants only.

use std::collections::{BTreeMap, BTreeSet};

use super::tenant::Tenant;

/// The worker options that change what is exported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedOptions {
    pub mailbox_settings: bool,
    pub skip_ad_groups: bool,
    pub skip_unused_roles: bool,
    pub skip_storage_containers: bool,
    pub skip_p2: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedResource {
    /// `"<type>:<id>"` of the parent resource.
    pub parent: Option<String>,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEntitlement {
    /// `"<type>:<id>"` of the resource it belongs to.
    pub resource: String,
    pub slug: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedGrant {
    pub entitlement: String,
    /// `"<type>:<id>"` of the principal.
    pub principal: String,
    /// Entitlement ids of `GrantExpandable`.
    pub expandable: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedGraph {
    pub resource_types: BTreeSet<String>,
    /// Keyed by `"<type>:<id>"`.
    pub resources: BTreeMap<String, ExpectedResource>,
    /// Keyed by entitlement id.
    pub entitlements: BTreeMap<String, ExpectedEntitlement>,
    /// Keyed by grant id.
    pub grants: BTreeMap<String, ExpectedGrant>,
}

impl ExpectedGraph {
    /// The graph a correct worker exports for `tenant` with `options`.
    pub fn compute(tenant: &Tenant, options: &ExpectedOptions) -> ExpectedGraph {
        let _ = (tenant, options);
        todo!("emu-core: in progress")
    }
}
