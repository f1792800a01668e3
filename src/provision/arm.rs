//! Azure role assignments (`role:<roleGuid>`) and PIM eligibility (`eligible:<roleGuid>`) at
//! any scope of the data model, as the Authorization REST API documents them
//! (azure-rest-api-specs, Microsoft.Authorization stable 2022-04-01 and 2020-10-01 examples):
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
//! - eligibility: `PUT {scope}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{new GUID}`
//!   with `{"properties": {"principalId", "roleDefinitionId", "requestType": "AdminAssign" |
//!   "AdminRemove", "scheduleInfo"}}`, 201 (RoleEligibilityScheduleRequests_Create); an
//!   eligibility that exists is 400 `RoleAssignmentExists`, removing one that does not, 400
//!   `RoleAssignmentDoesNotExist`. The feeds keep eligibility as schedule instances, so after a
//!   grant the new instance is read back (`roleEligibilityScheduleInstances`, `atScope()`).

use reqwest::Method;
use serde_json::{Value, json};

use crate::azure::{Api, ApiError, WriteError};
use crate::feeds::{Change, Collection, ItemKey};

use super::entra::delete_each;
use super::target::Slug;
use super::{Applied, GrantOutcome, ProvisionError, Request, RevokeOutcome};

/// The Authorization API version of role assignments (the one the feeds read).
const AUTHORIZATION_API: &str = "2022-04-01";
/// The api-version of PIM for Azure resources (eligibility requests and instances).
const ELIGIBILITY_API: &str = "2020-10-01";

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
    match &request.target.slug {
        Slug::AzureRole(role) => grant_assignment(request, role).await,
        Slug::AzureEligible(role) => grant_eligibility(request, role).await,
        _ => Err(not_azure(request)),
    }
}

pub(super) async fn revoke(
    request: &Request<'_>,
) -> Result<Applied<RevokeOutcome>, ProvisionError> {
    match &request.target.slug {
        Slug::AzureRole(role) => revoke_assignment(request, role).await,
        Slug::AzureEligible(role) => revoke_eligibility(request, role).await,
        _ => Err(not_azure(request)),
    }
}

fn not_azure(request: &Request<'_>) -> ProvisionError {
    ProvisionError::NotProvisionable {
        entitlement: request.entitlement.to_string(),
        reason: "it is not an Azure role entitlement".into(),
    }
}

fn has_code(error: &ApiError, status: u16, wanted: &str) -> bool {
    matches!(error, ApiError::Other { status: Some(s), code, .. } if *s == status && code.eq_ignore_ascii_case(wanted))
}

async fn grant_assignment(
    request: &Request<'_>,
    role: &str,
) -> Result<Applied<GrantOutcome>, ProvisionError> {
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
        Err(failure) if has_code(&failure.error, 409, "RoleAssignmentExists") => Ok(Applied {
            outcome: GrantOutcome::AlreadyExists,
            changes: Vec::new(),
        }),
        Err(failure) => Err(request.rejected(failure)),
    }
}

/// The stored items of `collection` (`segment`: its ARM collection, lower-cased) made at
/// exactly the request's scope that give its principal `role`. Item ids are ARM ids,
/// lower-cased, so those at this scope start with the scope and the provider segment.
fn stored_at_scope(
    request: &Request<'_>,
    collection: Collection,
    segment: &str,
    role: &str,
) -> Result<Vec<String>, ProvisionError> {
    let prefix = format!(
        "{}/providers/microsoft.authorization/{segment}/",
        scope_prefix(request).to_ascii_lowercase()
    );
    let store = request.store;
    let mut ids = Vec::new();
    for id in store
        .item_ids(collection, &prefix)
        .map_err(ProvisionError::Store)?
    {
        let Some(value) = store
            .item(&ItemKey::new(collection, id.as_str()))
            .map_err(ProvisionError::Store)?
        else {
            continue;
        };
        if gives(&value, &request.principal.id, role) {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Whether an assignment or eligibility (as ARM lists it) gives `principal` the role `role`.
fn gives(item: &Value, principal: &str, role: &str) -> bool {
    let properties = &item["properties"];
    let same_principal = properties["principalId"]
        .as_str()
        .is_some_and(|p| p.eq_ignore_ascii_case(principal));
    let same_role = properties["roleDefinitionId"]
        .as_str()
        .and_then(|d| d.rsplit('/').next())
        .is_some_and(|guid| guid.eq_ignore_ascii_case(role));
    same_principal && same_role
}

async fn revoke_assignment(
    request: &Request<'_>,
    role: &str,
) -> Result<Applied<RevokeOutcome>, ProvisionError> {
    let ids = stored_at_scope(request, Collection::RoleAssignment, "roleassignments", role)?;
    delete_each(request, Collection::RoleAssignment, ids, |id| {
        format!("{id}?api-version={AUTHORIZATION_API}")
    })
    .await
}

/// One PIM eligibility request at the request's scope.
async fn eligibility_request(
    request: &Request<'_>,
    role: &str,
    request_type: &str,
) -> Result<(), WriteError> {
    let scope = scope_prefix(request);
    let mut properties = json!({
        "principalId": request.principal.id,
        "roleDefinitionId": role_definition_id(scope, role),
        "requestType": request_type,
    });
    if request_type == "AdminAssign" {
        // RFC 3339 formatting fails only for years past 9999.
        let start = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        properties["justification"] = json!("Granted through baton-azure-delta");
        properties["scheduleInfo"] =
            json!({"startDateTime": start, "expiration": {"type": "NoExpiration"}});
    }
    let url = format!(
        "{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{}?api-version={ELIGIBILITY_API}",
        uuid::Uuid::new_v4()
    );
    let body = json!({ "properties": properties });
    request
        .client
        .write(Api::Arm, Method::PUT, &url, Some(&body))
        .await
        .map(drop)
}

async fn grant_eligibility(
    request: &Request<'_>,
    role: &str,
) -> Result<Applied<GrantOutcome>, ProvisionError> {
    match eligibility_request(request, role, "AdminAssign").await {
        Ok(()) => {}
        Err(failure) if has_code(&failure.error, 400, "RoleAssignmentExists") => {
            return Ok(Applied {
                outcome: GrantOutcome::AlreadyExists,
                changes: Vec::new(),
            });
        }
        Err(failure) => return Err(request.rejected(failure)),
    }
    // The request's answer carries no schedule instance: read the new one back as the feed
    // lists it. Should that fail, the grant stands and the next poll records it.
    let changes = match instances_at_scope(request, role).await {
        Ok(instances) => instances,
        Err(error) => {
            tracing::warn!(entitlement = request.entitlement, %error, "the new eligibility could not be read back; the next poll records it");
            Vec::new()
        }
    };
    Ok(Applied {
        outcome: GrantOutcome::Granted,
        changes,
    })
}

/// The eligibility instances of the request's principal for `role` made at exactly its scope.
async fn instances_at_scope(request: &Request<'_>, role: &str) -> Result<Vec<Change>, ApiError> {
    use futures::StreamExt;

    let scope = scope_prefix(request);
    let url = format!(
        "{scope}/providers/Microsoft.Authorization/roleEligibilityScheduleInstances?api-version={ELIGIBILITY_API}&$filter=atScope()"
    );
    let at = if scope.is_empty() { "/" } else { scope };
    let mut changes = Vec::new();
    let mut pages = std::pin::pin!(request.client.arm_pages(&url));
    while let Some(page) = pages.next().await {
        let page = page?;
        for item in page["value"].as_array().into_iter().flatten() {
            let here = item["properties"]["scope"].as_str().is_some_and(|s| {
                s.trim_end_matches('/')
                    .eq_ignore_ascii_case(at.trim_end_matches('/'))
            });
            if let (true, true, Some(id)) = (
                here,
                gives(item, &request.principal.id, role),
                item["id"].as_str(),
            ) {
                changes.push(Change::Upsert {
                    key: ItemKey::new(Collection::RoleEligibility, id.to_ascii_lowercase()),
                    value: item.clone(),
                });
            }
        }
    }
    Ok(changes)
}

async fn revoke_eligibility(
    request: &Request<'_>,
    role: &str,
) -> Result<Applied<RevokeOutcome>, ProvisionError> {
    let ids = stored_at_scope(
        request,
        Collection::RoleEligibility,
        "roleeligibilityscheduleinstances",
        role,
    )?;
    if ids.is_empty() {
        return Ok(Applied {
            outcome: RevokeOutcome::AlreadyRevoked,
            changes: Vec::new(),
        });
    }
    let outcome = match eligibility_request(request, role, "AdminRemove").await {
        Ok(()) => RevokeOutcome::Revoked,
        Err(failure) if has_code(&failure.error, 400, "RoleAssignmentDoesNotExist") => {
            RevokeOutcome::AlreadyRevoked
        }
        Err(failure) => return Err(request.rejected(failure)),
    };
    let changes = ids
        .into_iter()
        .map(|id| Change::Remove {
            key: ItemKey::new(Collection::RoleEligibility, id),
        })
        .collect();
    Ok(Applied { outcome, changes })
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
