//! Principals of grants: which resource type an object id is, and whether it is emitted.
//!
//! DATA_MODEL.md: a grant is emitted only when its principal is itself an emitted resource (or,
//! with external principals, a principal of a type the external `.c1z` provides).

use serde_json::Value;

use crate::item::{Collection, ItemKey};

use super::build::{self, ENTERPRISE_APPLICATION, GROUP, MANAGED_IDENTITY, USER};
use super::{ItemLookup, ProjectionOptions};

/// The principal side of a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub resource_type: &'static str,
    pub id: String,
    /// Lives in the external `.c1z` (matched with `ExternalResourceMatchID`).
    pub external: bool,
}

/// What a source says about a principal's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    Group,
    ServicePrincipal,
    /// The source does not say: find the object among the stored users, groups and service
    /// principals.
    Unknown,
}

impl Kind {
    /// From a Graph `@odata.type` (`#microsoft.graph.user`, ...). Other types (devices, contacts)
    /// are never principals here.
    pub fn from_odata(value: &Value) -> Option<Kind> {
        match build::str_field(value, "@odata.type")? {
            "#microsoft.graph.user" => Some(Kind::User),
            "#microsoft.graph.group" => Some(Kind::Group),
            "#microsoft.graph.servicePrincipal" => Some(Kind::ServicePrincipal),
            _ => None,
        }
    }

    /// From a relationship link (`members@delta`, `owners@delta`, an owners list entry): its
    /// `@odata.type` when it has one (another type, a device or a contact, is no principal);
    /// without the annotation the link does not say, so the object is looked up among the
    /// stored principals rather than dropped.
    pub fn from_link(value: &Value) -> Option<Kind> {
        match value.get("@odata.type") {
            None | Some(Value::Null) => Some(Kind::Unknown),
            Some(_) => Kind::from_odata(value),
        }
    }

    /// From an ARM or Graph `principalType` (`User`, `Group`, `ServicePrincipal`). `ForeignGroup`,
    /// `Device` and the like are not principals here.
    pub fn from_principal_type(principal_type: Option<&str>) -> Option<Kind> {
        match principal_type {
            Some("User") => Some(Kind::User),
            Some("Group") => Some(Kind::Group),
            Some("ServicePrincipal") => Some(Kind::ServicePrincipal),
            None => Some(Kind::Unknown),
            Some(_) => None,
        }
    }
}

/// The principal `id` of kind `kind`, if it is emitted under `options`.
pub fn resolve(
    kind: Kind,
    id: &str,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Option<Principal> {
    match kind {
        Kind::User => user(id, items, options),
        Kind::Group => group(id, items, options),
        Kind::ServicePrincipal => service_principal(id, items, options),
        // The kind is the collection that holds the object; external principals cannot help
        // here, since an object held nowhere has no known type.
        Kind::Unknown => {
            let held = |c: Collection| items.exists(&ItemKey::new(c, id));
            if held(Collection::User) {
                user(id, items, options)
            } else if held(Collection::Group) {
                group(id, items, options)
            } else {
                service_principal(id, items, options)
            }
        }
    }
}

fn user(id: &str, items: &dyn ItemLookup, options: &ProjectionOptions) -> Option<Principal> {
    let present = items.exists(&ItemKey::new(Collection::User, id));
    // The external `.c1z` provides users, so one the users feed does not hold can still match.
    (present || options.external_principals).then(|| Principal {
        resource_type: USER,
        id: id.to_string(),
        external: options.external_principals,
    })
}

fn group(id: &str, items: &dyn ItemLookup, options: &ProjectionOptions) -> Option<Principal> {
    match items.item(&ItemKey::new(Collection::Group, id)) {
        Some(g) if !group_hidden(&g, options) => Some(Principal {
            resource_type: GROUP,
            id: id.to_string(),
            external: options.external_principals,
        }),
        Some(_) => None,
        None => options.external_principals.then(|| Principal {
            resource_type: GROUP,
            id: id.to_string(),
            external: true,
        }),
    }
}

fn service_principal(
    id: &str,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Option<Principal> {
    let sp = items.item(&ItemKey::new(Collection::ServicePrincipal, id))?;
    let resource_type = service_principal_type(&sp)?;
    Some(Principal {
        resource_type,
        id: id.to_string(),
        external: options.external_principals && resource_type == MANAGED_IDENTITY,
    })
}

/// The resource type of a service principal item: `Application` and `ManagedIdentity` are
/// emitted; legacy, social-IdP and other service principals are not.
pub fn service_principal_type(sp: &Value) -> Option<&'static str> {
    match build::str_field(sp, "servicePrincipalType")? {
        "Application" => Some(ENTERPRISE_APPLICATION),
        "ManagedIdentity" => Some(MANAGED_IDENTITY),
        _ => None,
    }
}

/// Whether `--skip-ad-groups` hides this group item (synced from on-premises AD).
pub fn group_hidden(group: &Value, options: &ProjectionOptions) -> bool {
    options.skip_ad_groups
        && group
            .get("onPremisesSyncEnabled")
            .and_then(Value::as_bool)
            .unwrap_or(false)
}
