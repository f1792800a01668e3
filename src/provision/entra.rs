//! The Graph writes of each Entra entitlement, as Microsoft documents them
//! (microsoft-graph-docs-contrib, api-reference/v1.0/api):
//!
//! | entitlement | grant | revoke |
//! |---|---|---|
//! | group `members` / `owners` | `POST /groups/{id}/members/$ref` (`owners/$ref`) with `{"@odata.id": ".../directoryObjects/{id}"}`, 204 (group-post-members.md, group-post-owners.md) | `DELETE /groups/{id}/members/{id}/$ref`, 204 (group-delete-members.md, group-delete-owners.md) |
//! | enterprise application `owners` | `POST /servicePrincipals/{id}/owners/$ref`, 204 (serviceprincipal-post-owners.md) | `DELETE /servicePrincipals/{id}/owners/{id}/$ref`, 204 |
//! | enterprise application `assignment:<appRoleId>` | `POST /servicePrincipals/{id}/appRoleAssignedTo` with `{principalId, resourceId, appRoleId}`, 201 with the assignment (serviceprincipal-post-approleassignedto.md) | `DELETE /servicePrincipals/{id}/appRoleAssignedTo/{assignmentId}`, 204, for each assignment of that role to that principal (never another principal's) |
//! | directory role `assigned` | `POST /roleManagement/directory/roleAssignments` with `{roleDefinitionId, principalId, directoryScopeId: "/"}`, 201 (rbacapplication-post-roleassignments.md) | `DELETE /roleManagement/directory/roleAssignments/{id}`, 204, for each of the principal's assignments of the role, whatever their scope (the grant stands for all of them) |
//! | directory role `eligible` (PIM, P2) | `POST /roleManagement/directory/roleEligibilityScheduleRequests` with `action` `adminAssign`, `directoryScopeId` `/`, no expiration, 201 (rbacapplication-post-roleeligibilityschedulerequests.md) | the same with `action` `adminRemove`, for each of the principal's eligibilities of the role at its own scope |
//! | group `eligible_members` / `eligible_owners` (PIM for Groups, P2) | `POST /identityGovernance/privilegedAccess/group/eligibilityScheduleRequests` with `accessId` `member` / `owner`, `action` `adminAssign`, 201 (privilegedaccessgroup-post-eligibilityschedulerequests.md) | the same with `action` `adminRemove` |
//!
//! Idempotency. A `$ref` that already exists is Graph's 400 "One or more added object
//! references already exist for the following modified properties: 'members'."; an app role
//! assignment that exists, 400 "Permission being assigned already exists on the object"; a role
//! assignment that exists, 400 "A conflicting object with one or more of the specified property
//! values is present in the directory." (Graph's directory error for a conflicting object; the
//! API page documents no duplicate answer). Each reads as "already granted". A 404 on a DELETE
//! is "already revoked". Which assignments to delete comes from the store; none there is also
//! "already revoked". A PIM request for an eligibility that exists is 400 `RoleAssignmentExists`
//! ("already granted"); removing one that does not, 400 `RoleAssignmentDoesNotExist` ("already
//! revoked"); a tenant without P2 answers `AadPremiumLicenseRequired`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::azure::{Api, ApiError, WriteError};
use crate::feeds::graph::{link_value, without_annotations};
use crate::feeds::{Change, Collection, ItemKey};

use super::target::Slug;
use super::{Applied, GrantOutcome, ProvisionError, Request, RevokeOutcome};

/// The messages of Graph's 400 for a relationship or assignment that already exists.
const ALREADY_EXISTS: [&str; 3] = [
    "added object references already exist",
    "already exists on the object",
    "conflicting object with one or more of the specified property values",
];

fn already_exists(error: &ApiError) -> bool {
    match error {
        ApiError::Other {
            status: Some(400),
            message,
            ..
        } => {
            let message = message.to_ascii_lowercase();
            ALREADY_EXISTS.iter().any(|m| message.contains(m))
        }
        _ => false,
    }
}

/// The error for an entitlement no Graph write of this module grants (the store emits none
/// such, so only a mismatched type and slug gets here).
fn unbuilt(request: &Request<'_>) -> ProvisionError {
    ProvisionError::NotProvisionable {
        entitlement: request.entitlement.to_string(),
        reason: "no Graph write grants it".into(),
    }
}

/// A directory relationship (`members`, `owners`) and the store collection of its links.
fn relationship(
    request: &Request<'_>,
) -> Result<(&'static str, &'static str, Collection), ProvisionError> {
    let target = request.target;
    match (target.resource_type.as_str(), &target.slug) {
        ("group", Slug::Members) => Ok(("groups", "members", Collection::GroupMember)),
        ("group", Slug::Owners) => Ok(("groups", "owners", Collection::GroupOwner)),
        ("enterprise_application", Slug::Owners) => Ok((
            "servicePrincipals",
            "owners",
            Collection::ServicePrincipalOwner,
        )),
        _ => Err(unbuilt(request)),
    }
}

pub(super) async fn grant(request: &Request<'_>) -> Result<Applied<GrantOutcome>, ProvisionError> {
    match &request.target.slug {
        Slug::Members | Slug::Owners => grant_link(request).await,
        Slug::AppRole(role) => grant_app_role(request, role).await,
        Slug::Assigned => grant_directory_role(request).await,
        Slug::Eligible | Slug::EligibleMembers | Slug::EligibleOwners => {
            grant_eligibility(request).await
        }
        _ => Err(unbuilt(request)),
    }
}

pub(super) async fn revoke(
    request: &Request<'_>,
) -> Result<Applied<RevokeOutcome>, ProvisionError> {
    match &request.target.slug {
        Slug::Members | Slug::Owners => revoke_link(request).await,
        Slug::AppRole(role) => {
            let assignments = stored_assignments(request, Collection::AppRoleAssignment, |v| {
                field_is(v, "appRoleId", role)
            })?;
            let sp = &request.target.object;
            delete_each(request, Collection::AppRoleAssignment, assignments, |id| {
                let assignment = id.split_once('/').map_or(id, |(_, a)| a);
                format!("/v1.0/servicePrincipals/{sp}/appRoleAssignedTo/{assignment}")
            })
            .await
        }
        Slug::Assigned => {
            let role = &request.target.object;
            let assignments =
                stored_assignments(request, Collection::DirectoryRoleAssignment, |v| {
                    field_is(v, "roleDefinitionId", role)
                })?;
            delete_each(
                request,
                Collection::DirectoryRoleAssignment,
                assignments,
                |id| format!("/v1.0/roleManagement/directory/roleAssignments/{id}"),
            )
            .await
        }
        Slug::Eligible | Slug::EligibleMembers | Slug::EligibleOwners => {
            revoke_eligibility(request).await
        }
        _ => Err(unbuilt(request)),
    }
}

fn graph_write_outcome(
    request: &Request<'_>,
    sent: Result<crate::azure::Written, WriteError>,
) -> Result<Option<Value>, ProvisionError> {
    match sent {
        Ok(written) => Ok(Some(written.body)),
        Err(failure) if already_exists(&failure.error) => Ok(None),
        Err(failure) => Err(request.rejected(failure)),
    }
}

async fn grant_link(request: &Request<'_>) -> Result<Applied<GrantOutcome>, ProvisionError> {
    let (objects, relation, collection) = relationship(request)?;
    let object = &request.target.object;
    let principal = request.principal;
    let reference = format!(
        "{}/v1.0/directoryObjects/{}",
        request
            .client
            .endpoint(Api::Graph)
            .as_str()
            .trim_end_matches('/'),
        principal.id
    );
    let sent = request
        .client
        .write(
            Api::Graph,
            Method::POST,
            &format!("/v1.0/{objects}/{object}/{relation}/$ref"),
            Some(&json!({ "@odata.id": reference })),
        )
        .await;
    let outcome = match graph_write_outcome(request, sent)? {
        Some(_) => GrantOutcome::Granted,
        None => GrantOutcome::AlreadyExists,
    };
    // Either way the link exists now: the store may record it (as the delta feed would).
    Ok(Applied {
        outcome,
        changes: vec![Change::Upsert {
            key: ItemKey::new(collection, format!("{object}/{}", principal.id)),
            value: link_value(&json!({ "@odata.type": principal.odata_type() })),
        }],
    })
}

async fn revoke_link(request: &Request<'_>) -> Result<Applied<RevokeOutcome>, ProvisionError> {
    let (objects, relation, collection) = relationship(request)?;
    let object = &request.target.object;
    let principal = &request.principal.id;
    let sent = request
        .client
        .write(
            Api::Graph,
            Method::DELETE,
            &format!("/v1.0/{objects}/{object}/{relation}/{principal}/$ref"),
            None,
        )
        .await;
    let outcome = match sent {
        Ok(_) => RevokeOutcome::Revoked,
        Err(failure) if matches!(failure.error, ApiError::NotFound { .. }) => {
            RevokeOutcome::AlreadyRevoked
        }
        Err(failure) => return Err(request.rejected(failure)),
    };
    Ok(Applied {
        outcome,
        changes: vec![Change::Remove {
            key: ItemKey::new(collection, format!("{object}/{principal}")),
        }],
    })
}

async fn grant_app_role(
    request: &Request<'_>,
    role: &str,
) -> Result<Applied<GrantOutcome>, ProvisionError> {
    let sp = &request.target.object;
    let body = json!({
        "principalId": request.principal.id,
        "resourceId": sp,
        "appRoleId": role,
    });
    let sent = request
        .client
        .write(
            Api::Graph,
            Method::POST,
            &format!("/v1.0/servicePrincipals/{sp}/appRoleAssignedTo"),
            Some(&body),
        )
        .await;
    created(request, sent, Collection::AppRoleAssignment, |id| {
        format!("{sp}/{id}")
    })
}

async fn grant_directory_role(
    request: &Request<'_>,
) -> Result<Applied<GrantOutcome>, ProvisionError> {
    let body = json!({
        "@odata.type": "#microsoft.graph.unifiedRoleAssignment",
        "roleDefinitionId": request.target.object,
        "principalId": request.principal.id,
        "directoryScopeId": "/",
    });
    let sent = request
        .client
        .write(
            Api::Graph,
            Method::POST,
            "/v1.0/roleManagement/directory/roleAssignments",
            Some(&body),
        )
        .await;
    created(
        request,
        sent,
        Collection::DirectoryRoleAssignment,
        str::to_string,
    )
}

/// Reads a 201 that created an object into the item the store keeps for it (keyed by
/// `key(object id)`), or a duplicate into "already granted".
fn created(
    request: &Request<'_>,
    sent: Result<crate::azure::Written, WriteError>,
    collection: Collection,
    key: impl Fn(&str) -> String,
) -> Result<Applied<GrantOutcome>, ProvisionError> {
    let Some(body) = graph_write_outcome(request, sent)? else {
        return Ok(Applied {
            outcome: GrantOutcome::AlreadyExists,
            changes: Vec::new(),
        });
    };
    // The write is done; an answer without an id only costs the store's early copy (the next
    // poll lists the new object).
    let changes = match body.get("id").and_then(Value::as_str) {
        Some(id) => vec![Change::Upsert {
            key: ItemKey::new(collection, key(id)),
            value: without_annotations(&body),
        }],
        None => {
            tracing::warn!(
                entitlement = request.entitlement,
                "the created object came back without an id; the next round records it"
            );
            Vec::new()
        }
    };
    Ok(Applied {
        outcome: GrantOutcome::Granted,
        changes,
    })
}

/// A PIM eligibility the request's principal can be given: where its requests go, the fields
/// that name its target, and where (and under which fields) the store keeps its schedules.
struct Eligibility {
    requests: &'static str,
    /// The request's target fields besides `principalId` and `action`.
    target: Value,
    collection: Collection,
    /// The schedule fields the eligibility feed lists, copied from the request's answer.
    listed: &'static [&'static str],
}

fn eligibility(request: &Request<'_>) -> Result<Eligibility, ProvisionError> {
    let object = &request.target.object;
    let group_access = |access: &str| Eligibility {
        requests: "/v1.0/identityGovernance/privilegedAccess/group/eligibilityScheduleRequests",
        target: json!({ "groupId": object, "accessId": access }),
        collection: Collection::GroupEligibility,
        listed: &["groupId", "accessId", "scheduleInfo", "status"],
    };
    match &request.target.slug {
        Slug::Eligible => Ok(Eligibility {
            requests: "/v1.0/roleManagement/directory/roleEligibilityScheduleRequests",
            target: json!({ "roleDefinitionId": object, "directoryScopeId": "/" }),
            collection: Collection::DirectoryRoleEligibility,
            listed: &[
                "roleDefinitionId",
                "directoryScopeId",
                "appScopeId",
                "scheduleInfo",
                "status",
            ],
        }),
        Slug::EligibleMembers => Ok(group_access("member")),
        Slug::EligibleOwners => Ok(group_access("owner")),
        _ => Err(unbuilt(request)),
    }
}

/// Whether a PIM request failed with this error code.
fn has_code(error: &ApiError, wanted: &str) -> bool {
    matches!(error, ApiError::Other { code, .. } if code.eq_ignore_ascii_case(wanted))
}

/// The request body: the target fields, the principal, the action, and `extra`.
fn pim_body(kind: &Eligibility, principal: &str, action: &str, extra: Value) -> Value {
    let mut body = kind.target.clone();
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.insert("principalId".into(), json!(principal));
        body.insert("action".into(), json!(action));
        body.extend(extra);
    }
    body
}

/// `adminAssign`, tenant-wide for a directory role, without expiration.
async fn grant_eligibility(request: &Request<'_>) -> Result<Applied<GrantOutcome>, ProvisionError> {
    let kind = eligibility(request)?;
    // RFC 3339 formatting fails only for years past 9999.
    let start = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let body = pim_body(
        &kind,
        &request.principal.id,
        "adminAssign",
        json!({
            "justification": "Granted through baton-azure-delta",
            "scheduleInfo": {"startDateTime": start, "expiration": {"type": "noExpiration"}},
        }),
    );
    let written = match request
        .client
        .write(Api::Graph, Method::POST, kind.requests, Some(&body))
        .await
    {
        Ok(written) => written.body,
        Err(failure) if has_code(&failure.error, "RoleAssignmentExists") => {
            return Ok(Applied {
                outcome: GrantOutcome::AlreadyExists,
                changes: Vec::new(),
            });
        }
        Err(failure) => return Err(request.rejected(failure)),
    };
    // The schedule the request created, in the shape the eligibility feed lists it.
    let changes = match written.get("targetScheduleId").and_then(Value::as_str) {
        Some(schedule) => {
            let mut item = json!({
                "id": schedule,
                "principalId": request.principal.id,
                "memberType": "Direct",
            });
            if let Value::Object(item) = &mut item {
                for field in kind.listed {
                    item.insert((*field).into(), written[*field].clone());
                }
            }
            vec![Change::Upsert {
                key: ItemKey::new(kind.collection, schedule),
                value: item,
            }]
        }
        None => Vec::new(),
    };
    Ok(Applied {
        outcome: GrantOutcome::Granted,
        changes,
    })
}

/// An `adminRemove` request for each stored schedule of this eligibility (a directory role's
/// at its own scope); `RoleAssignmentDoesNotExist` means that one was gone already.
async fn revoke_eligibility(
    request: &Request<'_>,
) -> Result<Applied<RevokeOutcome>, ProvisionError> {
    let kind = eligibility(request)?;
    let same_target = |v: &Value| {
        kind.target.as_object().is_some_and(|target| {
            target
                .iter()
                .all(|(field, wanted)| match (field.as_str(), wanted.as_str()) {
                    // Every scope of the role: the grant stands for all of them.
                    ("directoryScopeId", _) => true,
                    (_, Some(wanted)) => field_is(v, field, wanted),
                    _ => false,
                })
        })
    };
    let schedules = stored_assignments(request, kind.collection, same_target)?;
    let mut outcome = RevokeOutcome::AlreadyRevoked;
    let mut changes = Vec::new();
    for schedule in schedules {
        let key = ItemKey::new(kind.collection, schedule.as_str());
        let scope = request
            .store
            .item(&key)
            .map_err(ProvisionError::Store)?
            .and_then(|v| v.get("directoryScopeId").cloned());
        let extra = match scope {
            Some(scope) => json!({ "directoryScopeId": scope }),
            None => json!({}),
        };
        let body = pim_body(&kind, &request.principal.id, "adminRemove", extra);
        match request
            .client
            .write(Api::Graph, Method::POST, kind.requests, Some(&body))
            .await
        {
            Ok(_) => outcome = RevokeOutcome::Revoked,
            Err(failure) if has_code(&failure.error, "RoleAssignmentDoesNotExist") => {}
            Err(failure) => return Err(request.rejected(failure)),
        }
        changes.push(Change::Remove { key });
    }
    Ok(Applied { outcome, changes })
}

fn field_is(value: &Value, field: &str, wanted: &str) -> bool {
    value
        .get(field)
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case(wanted))
}

/// The ids of the stored items of `collection` (under the target object, for app role
/// assignments) that give the request's principal this entitlement.
fn stored_assignments(
    request: &Request<'_>,
    collection: Collection,
    matches: impl Fn(&Value) -> bool,
) -> Result<Vec<String>, ProvisionError> {
    let prefix = match collection {
        Collection::AppRoleAssignment => format!("{}/", request.target.object),
        _ => String::new(),
    };
    let store = request.store;
    let mut found = Vec::new();
    for id in store
        .item_ids(collection, &prefix)
        .map_err(ProvisionError::Store)?
    {
        let key = ItemKey::new(collection, id.as_str());
        let Some(value) = store.item(&key).map_err(ProvisionError::Store)? else {
            continue;
        };
        if field_is(&value, "principalId", &request.principal.id) && matches(&value) {
            found.push(id);
        }
    }
    Ok(found)
}

/// Deletes each stored assignment; gone already (404) counts as deleted.
pub(super) async fn delete_each(
    request: &Request<'_>,
    collection: Collection,
    ids: Vec<String>,
    url: impl Fn(&str) -> String,
) -> Result<Applied<RevokeOutcome>, ProvisionError> {
    let api = if collection == Collection::RoleAssignment {
        Api::Arm
    } else {
        Api::Graph
    };
    let mut outcome = RevokeOutcome::AlreadyRevoked;
    let mut changes = Vec::new();
    for id in ids {
        match request
            .client
            .write(api, Method::DELETE, &url(&id), None)
            .await
        {
            // ARM answers 204 for an assignment that was already gone, 200 for one it deleted.
            Ok(written) if written.status != 204 || api == Api::Graph => {
                outcome = RevokeOutcome::Revoked;
            }
            Ok(_) => {}
            Err(failure) if matches!(failure.error, ApiError::NotFound { .. }) => {}
            Err(failure) => {
                if !changes.is_empty() {
                    // The polled feed's next round sweeps what was deleted.
                    tracing::warn!(
                        entitlement = request.entitlement,
                        deleted = changes.len(),
                        "revoke stopped part way through the principal's assignments"
                    );
                }
                return Err(request.rejected(failure));
            }
        }
        changes.push(Change::Remove {
            key: ItemKey::new(collection, id),
        });
    }
    Ok(Applied { outcome, changes })
}
