//! Baton ids to what a write needs: an entitlement id (`<type>:<resource id>:<slug>`) to the
//! object and relationship Microsoft knows it by, a principal (`<type>`, `<id>`) to its
//! directory object kind. Both are resolved against the store: an entitlement exists when the
//! projection of its origin emits it, a principal when its resource is emitted, exactly as a
//! `.c1z` written now would show them.

use crate::feeds::{Collection, ItemKey};
use crate::model::projection::Origin;
use crate::model::record::Record;
use crate::store::Store;

use super::ProvisionError;

/// A principal as baton names it: a resource type id and a resource id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalRef {
    pub resource_type: String,
    pub id: String,
}

/// What Microsoft calls a principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Group,
    ServicePrincipal,
}

/// A principal the store knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub resource_type: String,
    /// The Entra object id.
    pub id: String,
    pub kind: PrincipalKind,
}

impl Principal {
    pub fn baton_id(&self) -> String {
        format!("{}:{}", self.resource_type, self.id)
    }

    /// Graph's `@odata.type` of the directory object.
    pub fn odata_type(&self) -> &'static str {
        match self.kind {
            PrincipalKind::User => "#microsoft.graph.user",
            PrincipalKind::Group => "#microsoft.graph.group",
            PrincipalKind::ServicePrincipal => "#microsoft.graph.servicePrincipal",
        }
    }

    /// ARM's `principalType`.
    pub fn arm_type(&self) -> &'static str {
        match self.kind {
            PrincipalKind::User => "User",
            PrincipalKind::Group => "Group",
            PrincipalKind::ServicePrincipal => "ServicePrincipal",
        }
    }
}

/// The entitlement slugs of DATA_MODEL.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Slug {
    Members,
    Owners,
    EligibleMembers,
    EligibleOwners,
    /// `assignment:<appRoleId>`
    AppRole(String),
    Assigned,
    Eligible,
    /// `role:<roleGuid>`
    AzureRole(String),
    /// `eligible:<roleGuid>`
    AzureEligible(String),
}

/// A resolved entitlement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub resource_type: String,
    /// The object id (group, service principal, directory role definition), or for an ARM
    /// scope its ARM path as ARM spells it (`/`, `/subscriptions/<sub>/resourceGroups/<rg>`).
    pub object: String,
    pub slug: Slug,
}

fn unknown(what: String) -> ProvisionError {
    ProvisionError::UnknownId(what)
}

/// Splits a grant id `<entitlement id>:<principal type>:<principal id>`.
pub fn split_grant_id(grant_id: &str) -> Result<(&str, PrincipalRef), ProvisionError> {
    let mut parts = grant_id.rsplitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(resource_type), Some(entitlement))
            if !id.is_empty() && !resource_type.is_empty() && !entitlement.is_empty() =>
        {
            Ok((
                entitlement,
                PrincipalRef {
                    resource_type: resource_type.to_string(),
                    id: id.to_string(),
                },
            ))
        }
        _ => Err(unknown(format!(
            "grant id {grant_id:?} is not <entitlement id>:<principal type>:<principal id>"
        ))),
    }
}

/// Reads `<type>:<resource id>:<slug>`; slugs with a GUID (`role:<guid>`) are two segments.
fn parse_entitlement(id: &str) -> Option<(&str, &str, Slug)> {
    let (resource_type, rest) = id.split_once(':')?;
    let (head, last) = rest.rsplit_once(':')?;
    let two_part = |word: &str| {
        head.strip_suffix(word)
            .and_then(|r| r.strip_suffix(':'))
            .filter(|r| !r.is_empty())
    };
    let guid = last.to_ascii_lowercase();
    let (resource, slug) = if let Some(resource) = two_part("assignment") {
        (resource, Slug::AppRole(guid))
    } else if let Some(resource) = two_part("role") {
        (resource, Slug::AzureRole(guid))
    } else if let Some(resource) = two_part("eligible") {
        (resource, Slug::AzureEligible(guid))
    } else {
        let slug = match last {
            "members" => Slug::Members,
            "owners" => Slug::Owners,
            "eligible_members" => Slug::EligibleMembers,
            "eligible_owners" => Slug::EligibleOwners,
            "assigned" => Slug::Assigned,
            "eligible" => Slug::Eligible,
            _ => return None,
        };
        (head, slug)
    };
    (!resource.is_empty()).then_some((resource_type, resource, slug))
}

/// The ARM scope path of an Azure resource id of the data model.
fn arm_scope(resource_type: &str, resource: &str) -> Option<String> {
    let parts: Vec<&str> = resource.split(':').collect();
    let group = |s: &str, g: &str| format!("/subscriptions/{s}/resourceGroups/{g}");
    let account = |s: &str, g: &str, a: &str| {
        format!(
            "{}/providers/Microsoft.Storage/storageAccounts/{a}",
            group(s, g)
        )
    };
    Some(match (resource_type, parts.as_slice()) {
        ("tenant", [_]) => "/".to_string(),
        ("management_group", [name]) => {
            format!("/providers/Microsoft.Management/managementGroups/{name}")
        }
        ("subscription", [s]) => format!("/subscriptions/{s}"),
        ("resource_group", [s, g]) => group(s, g),
        ("storage_account", [s, g, a]) => account(s, g, a),
        ("container", [s, g, a, c]) => {
            format!("{}/blobServices/default/containers/{c}", account(s, g, a))
        }
        ("azure_resource", [s, g, tail @ ..]) if !tail.is_empty() => {
            format!("{}/providers/{}", group(s, g), tail.join(":"))
        }
        _ => return None,
    })
}

/// The store origin whose projection emits entitlements of `resource_type`, and the object or
/// scope a write addresses.
fn origin_of(resource_type: &str, resource: &str) -> Option<(Origin, String)> {
    let item = |collection| {
        Some((
            Origin::Item(ItemKey::new(collection, resource)),
            resource.to_string(),
        ))
    };
    match resource_type {
        "group" => item(Collection::Group),
        "enterprise_application" => item(Collection::ServicePrincipal),
        "directory_role" => item(Collection::DirectoryRoleDefinition),
        _ => {
            let scope = arm_scope(resource_type, resource)?;
            Some((Origin::Scope(scope.to_ascii_lowercase()), scope))
        }
    }
}

/// Resolves an entitlement id against the store.
pub fn entitlement(store: &Store, id: &str) -> Result<Target, ProvisionError> {
    let not_in_store = || {
        unknown(format!(
            "entitlement {id:?} is not in the store (check the id, or run a sync first)"
        ))
    };
    let (resource_type, resource, slug) = parse_entitlement(id).ok_or_else(not_in_store)?;
    let (origin, object) = origin_of(resource_type, resource).ok_or_else(not_in_store)?;
    let records = store.project(&origin).map_err(ProvisionError::Store)?;
    let known = records
        .iter()
        .any(|r| matches!(r, Record::Entitlement(e) if e.id == id));
    if !known {
        return Err(not_in_store());
    }
    Ok(Target {
        resource_type: resource_type.to_string(),
        object,
        slug,
    })
}

/// Resolves a principal against the store: its resource must be emitted with that type.
pub fn principal(store: &Store, principal: &PrincipalRef) -> Result<Principal, ProvisionError> {
    let (collection, kind) = match principal.resource_type.as_str() {
        "user" => (Collection::User, PrincipalKind::User),
        "group" => (Collection::Group, PrincipalKind::Group),
        "enterprise_application" | "managed_identity" => (
            Collection::ServicePrincipal,
            PrincipalKind::ServicePrincipal,
        ),
        other => {
            return Err(unknown(format!(
                "principal type {other:?} cannot hold grants (user, group, enterprise_application or managed_identity)"
            )));
        }
    };
    let baton_id = format!("{}:{}", principal.resource_type, principal.id);
    let records = store
        .project(&Origin::Item(ItemKey::new(
            collection,
            principal.id.as_str(),
        )))
        .map_err(ProvisionError::Store)?;
    let known = records
        .iter()
        .any(|r| matches!(r, Record::Resource(_)) && r.external_id() == baton_id);
    if !known {
        return Err(unknown(format!(
            "principal {baton_id} is not in the store (check the id and type, or run a sync first)"
        )));
    }
    Ok(Principal {
        resource_type: principal.resource_type.clone(),
        id: principal.id.clone(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: &str = "8e3f4c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6";

    #[test]
    fn entitlement_ids_split_into_type_resource_and_slug() {
        assert_eq!(
            parse_entitlement(&format!("group:{G}:members")),
            Some(("group", G, Slug::Members))
        );
        assert_eq!(
            parse_entitlement(&format!("enterprise_application:{G}:assignment:{G}")),
            Some(("enterprise_application", G, Slug::AppRole(G.into())))
        );
        let resource_group = format!("{G}:rg-prod");
        assert_eq!(
            parse_entitlement(&format!("resource_group:{G}:rg-prod:role:{G}")),
            Some((
                "resource_group",
                resource_group.as_str(),
                Slug::AzureRole(G.into())
            ))
        );
        assert_eq!(
            parse_entitlement(&format!("directory_role:{G}:eligible")),
            Some(("directory_role", G, Slug::Eligible))
        );
        assert_eq!(parse_entitlement(&format!("group:{G}:frobnicate")), None);
        assert_eq!(parse_entitlement("group:members"), None);
    }

    #[test]
    fn azure_resource_ids_map_to_their_arm_scope() {
        assert_eq!(arm_scope("tenant", G).as_deref(), Some("/"));
        assert_eq!(
            arm_scope("container", "s:rg:acct:logs").as_deref(),
            Some(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default/containers/logs"
            )
        );
        assert_eq!(
            arm_scope("azure_resource", "s:rg:Microsoft.KeyVault/vaults/kv").as_deref(),
            Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv")
        );
        assert_eq!(arm_scope("resource_group", "s"), None);
    }

    #[test]
    fn grant_ids_split_off_the_principal() {
        let grant = format!("group:{G}:members:user:{G}");
        let (entitlement, principal) = split_grant_id(&grant).unwrap();
        assert_eq!(entitlement, format!("group:{G}:members"));
        assert_eq!(principal.resource_type, "user");
        assert_eq!(principal.id, G);
        assert!(split_grant_id("user:abc").is_err());
    }
}
