//! The Graph writes provisioning needs: add and remove group members and owners and service
//! principal owners through `$ref`, create and delete `appRoleAssignedTo` entries, directory
//! role assignments, and PIM eligibility (directory roles, PIM for Groups). Each takes the tenant's write lock, so the change journal (and so delta)
//! sees it.

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use uuid::Uuid;

use super::odata::GraphError;
use super::render;
use super::{GraphContext, GraphReply, GraphRequest};
use crate::changes::{TenantChange, apply_to};
use crate::tenant::{
    AppRoleAssignment, DEFAULT_APP_ROLE_ID, DirectoryObjectKind, GroupAccess, PrincipalKind,
    TenantError, directory_role_assignment_id,
};

fn json_body(request: &GraphRequest) -> Result<serde_json::Map<String, Value>, GraphError> {
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(GraphError::bad_request(
            "Write requests must have a JSON object body.",
        )),
    }
}

/// The object id at the end of an `@odata.id` reference (`https://graph.microsoft.com/v1.0/directoryObjects/{id}`).
fn reference_target(request: &GraphRequest) -> Result<Uuid, GraphError> {
    let body = json_body(request)?;
    let reference = body
        .get("@odata.id")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::bad_request("The request body must contain '@odata.id'."))?;
    reference
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| {
            GraphError::new(
                StatusCode::BAD_REQUEST,
                "Request_BadRequest",
                format!("Invalid object identifier '{reference}'."),
            )
        })
}

fn parse_id(id: &str) -> Result<Uuid, GraphError> {
    Uuid::parse_str(id).map_err(|_| GraphError::not_found(id))
}

fn tenant_error(err: TenantError, relation: &str) -> GraphError {
    match err {
        TenantError::NotFound { id, .. } => GraphError::not_found(&id),
        TenantError::LinkExists { .. } => GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            format!(
                "One or more added object references already exist for the following modified properties: '{relation}'."
            ),
        ),
        TenantError::LinkMissing { target, .. } => GraphError::not_found(&target.to_string()),
        other => GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            other.to_string(),
        ),
    }
}

pub fn add_group_link(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
    relation: &str,
) -> Result<GraphReply, GraphError> {
    let group = parse_id(id)?;
    let target = reference_target(request)?;
    let mut tenant = ctx.state.write_tenant();
    let result = if relation == "members" {
        tenant.add_group_member(group, target)
    } else {
        tenant.add_group_owner(group, target)
    };
    result.map_err(|e| tenant_error(e, relation))?;
    Ok(GraphReply::no_content())
}

pub fn remove_group_link(
    ctx: &GraphContext,
    id: &str,
    relation: &str,
    target: &str,
) -> Result<GraphReply, GraphError> {
    let group = parse_id(id)?;
    let target = parse_id(target)?;
    let mut tenant = ctx.state.write_tenant();
    let result = if relation == "members" {
        tenant.remove_group_member(group, target)
    } else {
        tenant.remove_group_owner(group, target)
    };
    result.map_err(|e| tenant_error(e, relation))?;
    Ok(GraphReply::no_content())
}

pub fn add_service_principal_owner(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let sid = parse_id(id)?;
    let owner = reference_target(request)?;
    let mut tenant = ctx.state.write_tenant();
    match tenant.directory_object_kind(owner) {
        Some(DirectoryObjectKind::User | DirectoryObjectKind::ServicePrincipal) => {}
        Some(DirectoryObjectKind::Group) => {
            return Err(GraphError::bad_request(
                "A group cannot own a service principal.",
            ));
        }
        None => return Err(GraphError::not_found(&owner.to_string())),
    }
    let sp = tenant
        .service_principals
        .get_mut(&sid)
        .ok_or_else(|| GraphError::not_found(id))?;
    if sp.owners.contains(&owner) {
        return Err(tenant_error(
            TenantError::LinkExists {
                container: sid,
                target: owner,
                relation: "owner",
            },
            "owners",
        ));
    }
    sp.owners.push(owner);
    Ok(GraphReply::no_content())
}

pub fn remove_service_principal_owner(
    ctx: &GraphContext,
    id: &str,
    owner: &str,
) -> Result<GraphReply, GraphError> {
    let sid = parse_id(id)?;
    let owner = parse_id(owner)?;
    let mut tenant = ctx.state.write_tenant();
    let sp = tenant
        .service_principals
        .get_mut(&sid)
        .ok_or_else(|| GraphError::not_found(id))?;
    let position = sp
        .owners
        .iter()
        .position(|o| *o == owner)
        .ok_or_else(|| GraphError::not_found(&owner.to_string()))?;
    sp.owners.remove(position);
    Ok(GraphReply::no_content())
}

fn uuid_field(body: &serde_json::Map<String, Value>, name: &str) -> Result<Uuid, GraphError> {
    body.get(name)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| {
            GraphError::bad_request(format!("The request body must contain '{name}' as a GUID."))
        })
}

/// `POST /servicePrincipals/{id}/appRoleAssignedTo` with `{principalId, resourceId, appRoleId}`.
pub fn assign_app_role(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let sid = parse_id(id)?;
    let body = json_body(request)?;
    let principal = uuid_field(&body, "principalId")?;
    let resource = uuid_field(&body, "resourceId")?;
    let app_role = uuid_field(&body, "appRoleId")?;
    if resource != sid {
        return Err(GraphError::bad_request(format!(
            "resourceId {resource} does not match the service principal {sid} in the URL."
        )));
    }
    let now = ctx.state.clock.now();
    let mut tenant = ctx.state.write_tenant();
    let principal_type = match tenant.directory_object_kind(principal) {
        Some(DirectoryObjectKind::User) => PrincipalKind::User,
        Some(DirectoryObjectKind::Group) => PrincipalKind::Group,
        Some(DirectoryObjectKind::ServicePrincipal) => PrincipalKind::ServicePrincipal,
        None => return Err(GraphError::not_found(&principal.to_string())),
    };
    let principal_display_name = tenant
        .directory_object_name(principal)
        .unwrap_or_default()
        .to_string();
    let sp = tenant
        .service_principals
        .get(&sid)
        .ok_or_else(|| GraphError::not_found(id))?;
    if app_role != DEFAULT_APP_ROLE_ID && !sp.app_roles.iter().any(|r| r.id == app_role) {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Permission being assigned was not found on application",
        ));
    }
    if sp
        .app_role_assigned_to
        .iter()
        .any(|a| a.principal_id == principal && a.app_role_id == app_role)
    {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Permission being assigned already exists on the object",
        ));
    }
    let assignment = AppRoleAssignment {
        id: URL_SAFE_NO_PAD.encode(
            [
                principal.as_bytes().as_slice(),
                Uuid::new_v4().as_bytes().as_slice(),
            ]
            .concat(),
        ),
        principal_id: principal,
        principal_type,
        principal_display_name,
        resource_id: sid,
        resource_display_name: sp.display_name.clone(),
        app_role_id: app_role,
        created: now,
    };
    let mut rendered = render::app_role_assignment(&assignment);
    tenant
        .add_app_role_assignment(assignment)
        .map_err(|e| tenant_error(e, "appRoleAssignedTo"))?;
    rendered.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/{}/$metadata#servicePrincipals('{sid}')/appRoleAssignedTo/$entity",
            ctx.base_url, request.version
        )),
    );
    Ok(GraphReply::created(Value::Object(rendered)))
}

pub fn unassign_app_role(
    ctx: &GraphContext,
    id: &str,
    assignment: &str,
) -> Result<GraphReply, GraphError> {
    let sid = parse_id(id)?;
    let mut tenant = ctx.state.write_tenant();
    tenant
        .remove_app_role_assignment(sid, assignment)
        .map_err(|e| tenant_error(e, "appRoleAssignedTo"))?;
    Ok(GraphReply::no_content())
}

/// `POST /roleManagement/directory/roleAssignments` with `{roleDefinitionId, principalId,
/// directoryScopeId}` (rbacapplication-post-roleassignments.md): 201 with the
/// unifiedRoleAssignment. Applied as a [`TenantChange`], like any other change to the tenant.
pub fn create_directory_role_assignment(
    ctx: &GraphContext,
    request: &GraphRequest,
) -> Result<GraphReply, GraphError> {
    let body = json_body(request)?;
    let role_definition = uuid_field(&body, "roleDefinitionId")?;
    let principal = uuid_field(&body, "principalId")?;
    let directory_scope_id = body
        .get("directoryScopeId")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GraphError::bad_request("Either 'directoryScopeId' or 'appScopeId' must be specified.")
        })?
        .to_string();
    let now = ctx.state.clock.now();
    let mut tenant = ctx.state.write_tenant();
    let id = directory_role_assignment_id(role_definition, principal, &directory_scope_id);
    let change = TenantChange::AssignDirectoryRole {
        role_definition,
        principal,
        directory_scope_id,
    };
    apply_to(&mut tenant, change, now).map_err(|e| match e {
        TenantError::AlreadyExists { .. } => GraphError::new(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "A conflicting object with one or more of the specified property values is present in the directory.",
        ),
        TenantError::NotFound { id, .. } => GraphError::not_found(&id),
        other => GraphError::bad_request(other.to_string()),
    })?;
    let assignment = tenant
        .directory_role_assignments
        .get(&id)
        .ok_or_else(|| GraphError::not_found(&id))?;
    let mut rendered = render::role_assignment(assignment);
    rendered.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/{}/$metadata#roleManagement/directory/roleAssignments/$entity",
            ctx.base_url, request.version
        )),
    );
    Ok(GraphReply::created(Value::Object(rendered)))
}

/// `DELETE /roleManagement/directory/roleAssignments/{id}` (rbacapplication-delete-roleassignments.md): 204, or 404.
pub fn delete_directory_role_assignment(
    ctx: &GraphContext,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let now = ctx.state.clock.now();
    let mut tenant = ctx.state.write_tenant();
    let assignment = tenant
        .directory_role_assignments
        .get(id)
        .ok_or_else(|| GraphError::not_found(id))?;
    let change = TenantChange::UnassignDirectoryRole {
        role_definition: assignment.role_definition_id,
        principal: assignment.principal_id,
        directory_scope_id: assignment.directory_scope_id.clone(),
    };
    apply_to(&mut tenant, change, now).map_err(|_| GraphError::not_found(id))?;
    Ok(GraphReply::no_content())
}

/// Finds a schedule in the tenant and renders it as the eligibility list does.
type RenderSchedule = Box<dyn Fn(&crate::Tenant) -> Option<serde_json::Map<String, Value>>>;

/// The target of a PIM eligibility request and the tenant change each action makes.
struct EligibilityTarget {
    /// The request's own fields that name the target (`roleDefinitionId`, `groupId`, ...).
    fields: serde_json::Map<String, Value>,
    assign: TenantChange,
    remove: TenantChange,
    /// The schedule as the eligibility list renders it, once it exists.
    schedule: RenderSchedule,
}

/// What PIM eligibility requests share (rbacapplication-post-roleeligibilityschedulerequests.md,
/// privilegedaccessgroup-post-eligibilityschedulerequests.md): P2 or
/// `AadPremiumLicenseRequired`; `adminAssign` adds the eligibility, `adminRemove` removes it,
/// each as a [`TenantChange`]; an eligibility that exists already is 400 `RoleAssignmentExists`,
/// one that does not, 400 `RoleAssignmentDoesNotExist`; 201 with the request object (`status`
/// `Provisioned` or `Revoked`, `targetScheduleId`, `scheduleInfo`).
fn eligibility_request(
    ctx: &GraphContext,
    request: &GraphRequest,
    entity_set: &str,
    body: &serde_json::Map<String, Value>,
    target: EligibilityTarget,
) -> Result<GraphReply, GraphError> {
    let action = body
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let now = ctx.state.clock.now();
    let mut tenant = ctx.state.write_tenant();
    if !tenant.organization.has_p2_license {
        return Err(GraphError::license_required());
    }
    let (change, status) = match action.as_str() {
        "adminAssign" => (target.assign, "Provisioned"),
        "adminRemove" => (target.remove, "Revoked"),
        other => {
            return Err(GraphError::bad_request(format!(
                "The action '{other}' is not supported by this emulator (adminAssign, adminRemove)."
            )));
        }
    };
    apply_to(&mut tenant, change, now).map_err(|e| match e {
        TenantError::AlreadyExists { .. } => GraphError::new(
            StatusCode::BAD_REQUEST,
            "RoleAssignmentExists",
            "The Role assignment already exists.",
        ),
        TenantError::NotFound { kind, .. } if kind.contains("eligibility") => GraphError::new(
            StatusCode::BAD_REQUEST,
            "RoleAssignmentDoesNotExist",
            "The Role assignment does not exist.",
        ),
        TenantError::NotFound { id, .. } => GraphError::not_found(&id),
        other => GraphError::bad_request(other.to_string()),
    })?;
    let schedule = (target.schedule)(&tenant);
    let stamp = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut rendered = json!({
        "@odata.context": format!("{}/{}/$metadata#{entity_set}/$entity", ctx.base_url, request.version),
        "id": Uuid::new_v4().to_string(),
        "status": status,
        "createdDateTime": stamp,
        "completedDateTime": if status == "Provisioned" { json!(stamp) } else { Value::Null },
        "approvalId": null,
        "customData": null,
        "action": action,
        "isValidationOnly": false,
        "targetScheduleId": schedule.as_ref().map(|s| s["id"].clone()),
        "justification": body.get("justification").cloned().unwrap_or(Value::Null),
        "scheduleInfo": schedule.as_ref().map(|s| s["scheduleInfo"].clone()),
        "createdBy": {
            "application": {"displayName": null, "id": tenant.client_app_id.to_string()},
            "device": null,
            "user": null,
        },
        "ticketInfo": {"ticketNumber": null, "ticketSystem": null},
    });
    if let Value::Object(map) = &mut rendered {
        map.extend(target.fields);
    }
    Ok(GraphReply::created(rendered))
}

/// `POST /roleManagement/directory/roleEligibilityScheduleRequests`: directory role eligibility.
pub fn directory_role_eligibility_request(
    ctx: &GraphContext,
    request: &GraphRequest,
) -> Result<GraphReply, GraphError> {
    let body = json_body(request)?;
    let role_definition = uuid_field(&body, "roleDefinitionId")?;
    let principal = uuid_field(&body, "principalId")?;
    let directory_scope_id = body
        .get("directoryScopeId")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            GraphError::bad_request("Either 'directoryScopeId' or 'appScopeId' must be specified.")
        })?
        .to_string();
    let scope = directory_scope_id.clone();
    let target = EligibilityTarget {
        fields: json_object(json!({
            "principalId": principal.to_string(),
            "roleDefinitionId": role_definition.to_string(),
            "directoryScopeId": directory_scope_id,
            "appScopeId": null,
        })),
        assign: TenantChange::AddDirectoryRoleEligibility {
            role_definition,
            principal,
            directory_scope_id: scope.clone(),
        },
        remove: TenantChange::RemoveDirectoryRoleEligibility {
            role_definition,
            principal,
            directory_scope_id: scope.clone(),
        },
        schedule: Box::new(move |tenant| {
            tenant
                .directory_role_eligibilities
                .values()
                .find(|e| {
                    e.role_definition_id == role_definition
                        && e.principal_id == principal
                        && e.directory_scope_id == scope
                })
                .map(render::role_eligibility_schedule)
        }),
    };
    eligibility_request(
        ctx,
        request,
        "roleManagement/directory/roleEligibilityScheduleRequests",
        &body,
        target,
    )
}

/// `POST /identityGovernance/privilegedAccess/group/eligibilityScheduleRequests`: PIM for
/// Groups eligibility, `accessId` `member` or `owner`.
pub fn group_eligibility_request(
    ctx: &GraphContext,
    request: &GraphRequest,
) -> Result<GraphReply, GraphError> {
    let body = json_body(request)?;
    let group = uuid_field(&body, "groupId")?;
    let principal = uuid_field(&body, "principalId")?;
    let access = match body.get("accessId").and_then(Value::as_str) {
        Some("member") => GroupAccess::Member,
        Some("owner") => GroupAccess::Owner,
        _ => {
            return Err(GraphError::bad_request(
                "The request body must contain 'accessId' as 'member' or 'owner'.",
            ));
        }
    };
    let target = EligibilityTarget {
        fields: json_object(json!({
            "accessId": access.as_str(),
            "principalId": principal.to_string(),
            "groupId": group.to_string(),
        })),
        assign: TenantChange::AddGroupEligibility {
            group,
            principal,
            access,
        },
        remove: TenantChange::RemoveGroupEligibility {
            group,
            principal,
            access,
        },
        schedule: Box::new(move |tenant| {
            tenant
                .group_eligibilities
                .values()
                .find(|e| e.group_id == group && e.principal_id == principal && e.access == access)
                .map(render::group_eligibility_schedule)
        }),
    };
    eligibility_request(
        ctx,
        request,
        "identityGovernance/privilegedAccess/group/eligibilityScheduleRequests",
        &body,
        target,
    )
}

fn json_object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}
