//! Azure role assignments (`role:<roleGuid>` at any scope of the data model), as the
//! Authorization REST API documents them (azure-rest-api-specs, Microsoft.Authorization stable
//! 2022-04-01 examples):
//!
//! - grant: `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{new GUID}` with
//!   `{"properties": {"roleDefinitionId", "principalId", "principalType"}}`, 201 with the
//!   assignment (RoleAssignments_CreateForSubscription.json, _CreateForResourceGroup.json,
//!   _CreateForResource.json). `principalType` is always sent: ARM then skips its directory
//!   look-up, which a principal created moments ago may not pass yet. An assignment of the same
//!   role to the same principal at the same scope is 409 `RoleAssignmentExists`: "already
//!   granted".
//! - revoke: `DELETE {assignment id}` (RoleAssignments_DeleteById.json): 200 with the deleted
//!   assignment, 204 when there was none ("already revoked"), for every stored assignment of that
//!   role to that principal made at exactly that scope (assignments inherited from above belong to
//!   another scope's entitlement and are left alone).

use reqwest::Method;
use serde_json::json;

use crate::azure::{Api, ApiError};
use crate::feeds::{Change, Collection, ItemKey};

use super::entra::delete_each;
use super::target::Slug;
use super::{Applied, GrantOutcome, ProvisionError, Request, RevokeOutcome};

/// The Authorization API version of role assignments (the one the feeds read).
const AUTHORIZATION_API: &str = "2022-04-01";

fn role_of<'a>(request: &Request<'a>) -> Result<&'a str, ProvisionError> {
    match &request.target.slug {
        Slug::AzureRole(role) => Ok(role),
        _ => Err(ProvisionError::NotProvisionable {
            entitlement: request.entitlement.to_string(),
            reason: "Azure PIM eligibility is not provisioned by this build".into(),
        }),
    }
}

/// The scope's path for joining: `/` becomes empty, so `/providers/...` is not doubled.
fn scope_prefix<'a>(request: &Request<'a>) -> &'a str {
    request.target.object.trim_end_matches('/')
}

/// The role definition's id: under the subscription when the scope is in one (as ARM's own
/// examples spell it), else tenant-wide.
fn role_definition_id(scope: &str, role: &str) -> String {
    let mut segments = scope.split('/').filter(|s| !s.is_empty());
    match (segments.next(), segments.next()) {
        (Some(word), Some(subscription)) if word.eq_ignore_ascii_case("subscriptions") => format!(
            "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role}"
        ),
        _ => format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
    }
}

pub(super) async fn grant(request: &Request<'_>) -> Result<Applied<GrantOutcome>, ProvisionError> {
    let role = role_of(request)?;
    let scope = scope_prefix(request);
    let name = uuid::Uuid::new_v4();
    let body = json!({
        "properties": {
            "roleDefinitionId": role_definition_id(scope, role),
            "principalId": request.principal.id,
            "principalType": request.principal.arm_type(),
        }
    });
    let url = format!(
        "{scope}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version={AUTHORIZATION_API}"
    );
    match request
        .client
        .write(Api::Arm, Method::PUT, &url, Some(&body))
        .await
    {
        Ok(written) => {
            let changes = match written.body.get("id").and_then(|id| id.as_str()) {
                Some(id) => vec![Change::Upsert {
                    key: ItemKey::new(Collection::RoleAssignment, id.to_ascii_lowercase()),
                    value: written.body.clone(),
                }],
                None => Vec::new(),
            };
            Ok(Applied {
                outcome: GrantOutcome::Granted,
                changes,
            })
        }
        Err(failure) if is_conflict(&failure.error) => Ok(Applied {
            outcome: GrantOutcome::AlreadyExists,
            changes: Vec::new(),
        }),
        Err(failure) => Err(request.rejected(failure)),
    }
}

fn is_conflict(error: &ApiError) -> bool {
    matches!(error, ApiError::Other { status: Some(409), code, .. } if code.eq_ignore_ascii_case("RoleAssignmentExists"))
}

pub(super) async fn revoke(
    request: &Request<'_>,
) -> Result<Applied<RevokeOutcome>, ProvisionError> {
    let role = role_of(request)?.to_ascii_lowercase();
    // Item ids are the assignments' ARM ids, lower-cased: those made at exactly this scope
    // start with the scope and the provider segment.
    let prefix = format!(
        "{}/providers/microsoft.authorization/roleassignments/",
        scope_prefix(request).to_ascii_lowercase()
    );
    let store = request.store;
    let mut ids = Vec::new();
    for id in store
        .item_ids(Collection::RoleAssignment, &prefix)
        .map_err(ProvisionError::Store)?
    {
        let Some(value) = store
            .item(&ItemKey::new(Collection::RoleAssignment, id.as_str()))
            .map_err(ProvisionError::Store)?
        else {
            continue;
        };
        let properties = &value["properties"];
        let same_principal = properties["principalId"]
            .as_str()
            .is_some_and(|p| p.eq_ignore_ascii_case(&request.principal.id));
        let same_role = properties["roleDefinitionId"]
            .as_str()
            .and_then(|d| d.rsplit('/').next())
            .is_some_and(|guid| guid.eq_ignore_ascii_case(&role));
        if same_principal && same_role {
            ids.push(id);
        }
    }
    delete_each(request, Collection::RoleAssignment, ids, |id| {
        format!("{id}?api-version={AUTHORIZATION_API}")
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::role_definition_id;

    #[test]
    fn role_definitions_are_named_in_the_scope_subscription() {
        assert_eq!(
            role_definition_id("/subscriptions/s/resourceGroups/rg", "r"),
            "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/r"
        );
        assert_eq!(
            role_definition_id("/providers/Microsoft.Management/managementGroups/mg", "r"),
            "/providers/Microsoft.Authorization/roleDefinitions/r"
        );
        assert_eq!(
            role_definition_id("", "r"),
            "/providers/Microsoft.Authorization/roleDefinitions/r"
        );
    }
}
