//! `Microsoft.Authorization` at any scope: role definitions, role assignments (list, get, PUT,
//! DELETE), PIM role eligibility schedules and instances, and eligibility requests (PUT).
//!
//! Listing assignments at a scope follows ARM (Role Assignments - List For Scope): without a
//! filter it returns assignments at, above and below the scope; `$filter=atScope()` returns
//! those at or above it; `principalId eq '{id}'` / `assignedTo('{id}')` narrow to one principal.

use axum::http::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ArmContext, ArmError, ArmReply, ArmRequest, PAGE_SIZE, arm_time, page};
use crate::tenant::{
    ArmPrincipalType, DirectoryObjectKind, RoleAssignment, RoleDefinition, RoleEligibility,
    RoleType, Tenant, TenantError, scope_is_within,
};

/// A role definition's id as ARM spells it from a scope: subscription-qualified inside a
/// subscription, tenant-level otherwise.
fn role_definition_id(scope: &str, role: Uuid) -> String {
    match Tenant::subscription_of_scope(scope) {
        Some(sub) => {
            format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role}")
        }
        None => format!("/providers/Microsoft.Authorization/roleDefinitions/{role}"),
    }
}

fn check_scope(tenant: &Tenant, scope: &str) -> Result<(), ArmError> {
    if tenant.scope_exists(scope) {
        return Ok(());
    }
    let lower = scope.to_ascii_lowercase();
    if let Some(sub) = Tenant::subscription_of_scope(scope)
        && !tenant.subscriptions.contains_key(&sub)
    {
        return Err(ArmError::not_found(
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        ));
    }
    if lower.contains("/resourcegroups/") && !lower.contains("/providers/") {
        return Err(ArmError::not_found(
            "ResourceGroupNotFound",
            format!("Resource group for scope '{scope}' could not be found."),
        ));
    }
    Err(ArmError::not_found(
        "ResourceNotFound",
        format!("The scope '{scope}' does not exist."),
    ))
}

fn role_definition_json(scope: &str, r: &RoleDefinition, tenant: &Tenant) -> Value {
    let created = arm_time(tenant.organization.created);
    json!({
        "id": role_definition_id(scope, r.id),
        "type": "Microsoft.Authorization/roleDefinitions",
        "name": r.id.to_string(),
        "properties": {
            "roleName": r.role_name,
            "type": match r.role_type { RoleType::BuiltIn => "BuiltInRole", RoleType::Custom => "CustomRole" },
            "description": r.description,
            "assignableScopes": r.assignable_scopes,
            "permissions": [{
                "actions": r.actions,
                "notActions": [],
                "dataActions": r.data_actions,
                "notDataActions": [],
            }],
            "createdOn": created,
            "updatedOn": created,
            "createdBy": null,
            "updatedBy": null,
        }
    })
}

/// `$filter` clauses ARM accepts on role definitions: `roleName eq '...'`, `type eq '...'`.
fn definition_matches(filter: Option<&str>, r: &RoleDefinition) -> Result<bool, ArmError> {
    let Some(filter) = filter else {
        return Ok(true);
    };
    let (field, value) = filter
        .split_once(" eq ")
        .map(|(f, v)| (f.trim(), v.trim().trim_matches('\'')))
        .ok_or_else(|| {
            ArmError::bad_request(
                "UnsupportedQuery",
                format!("The filter '{filter}' is not supported."),
            )
        })?;
    let role_type = match r.role_type {
        RoleType::BuiltIn => "BuiltInRole",
        RoleType::Custom => "CustomRole",
    };
    match field {
        "roleName" => Ok(r.role_name.eq_ignore_ascii_case(value)),
        "type" => Ok(role_type.eq_ignore_ascii_case(value)),
        _ => Err(ArmError::bad_request(
            "UnsupportedQuery",
            format!("The filter '{filter}' is not supported."),
        )),
    }
}

pub fn list_role_definitions(
    ctx: &ArmContext,
    request: &ArmRequest,
    scope: &str,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    check_scope(&tenant, scope)?;
    // Role Definitions - List: "Use atScopeAndBelow filter to search below the given scope as
    // well"; without it, the roles assignable at the scope (their scopes at it or above).
    let filter = request.param("$filter");
    let and_below = filter.is_some_and(|f| f.trim().eq_ignore_ascii_case("atScopeAndBelow()"));
    let mut items = Vec::new();
    for r in tenant.role_definitions.values() {
        let assignable = r.assignable_scopes.iter().any(|a| {
            scope_is_within(&tenant, scope, a) || (and_below && scope_is_within(&tenant, a, scope))
        });
        let matches = and_below || definition_matches(filter, r)?;
        if assignable && matches {
            items.push(role_definition_json(scope, r, &tenant));
        }
    }
    page(ctx, request, items, PAGE_SIZE)
}

pub fn get_role_definition(ctx: &ArmContext, scope: &str, id: &str) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let not_found = || {
        ArmError::not_found(
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{id}' does not exist."),
        )
    };
    let rid = Uuid::parse_str(id).map_err(|_| not_found())?;
    let r = tenant.role_definitions.get(&rid).ok_or_else(not_found)?;
    Ok(ArmReply::ok(role_definition_json(scope, r, &tenant)))
}

fn assignment_json(a: &RoleAssignment) -> Value {
    let created = arm_time(a.created);
    json!({
        "id": Tenant::role_assignment_id(a),
        "type": "Microsoft.Authorization/roleAssignments",
        "name": a.name.to_string(),
        "properties": {
            "roleDefinitionId": role_definition_id(&a.scope, a.role_definition),
            "principalId": a.principal_id.to_string(),
            "principalType": a.principal_type.as_str(),
            "scope": a.scope,
            "condition": null,
            "conditionVersion": null,
            "createdOn": created,
            "updatedOn": created,
            "createdBy": a.created_by.to_string(),
            "updatedBy": a.created_by.to_string(),
            "delegatedManagedIdentityResourceId": null,
            "description": null,
        }
    })
}

/// Which assignments a list at `scope` returns.
struct ScopeFilter {
    at_scope: bool,
    principal: Option<Uuid>,
}

fn parse_scope_filter(filter: Option<&str>) -> Result<ScopeFilter, ArmError> {
    let mut out = ScopeFilter {
        at_scope: false,
        principal: None,
    };
    let Some(filter) = filter else { return Ok(out) };
    let unsupported = || {
        ArmError::bad_request(
            "UnsupportedQuery",
            format!("The filter '{filter}' is not supported."),
        )
    };
    for clause in filter.split(" and ").map(str::trim) {
        let lower = clause.to_ascii_lowercase();
        if lower == "atscope()" || lower == "astarget()" {
            out.at_scope = lower == "atscope()" || out.at_scope;
        } else if let Some(value) = lower.strip_prefix("principalid eq ") {
            out.principal =
                Some(Uuid::parse_str(value.trim().trim_matches('\'')).map_err(|_| unsupported())?);
        } else if let Some(value) = lower
            .strip_prefix("assignedto(")
            .and_then(|v| v.strip_suffix(')'))
        {
            out.principal =
                Some(Uuid::parse_str(value.trim().trim_matches('\'')).map_err(|_| unsupported())?);
        } else {
            return Err(unsupported());
        }
    }
    Ok(out)
}

/// Whether an item at `item_scope` is listed at `scope` under `filter`.
fn listed(tenant: &Tenant, scope: &str, item_scope: &str, filter: &ScopeFilter) -> bool {
    let at_or_above = scope_is_within(tenant, scope, item_scope);
    let below = scope_is_within(tenant, item_scope, scope);
    if filter.at_scope {
        at_or_above
    } else {
        at_or_above || below
    }
}

pub fn list_role_assignments(
    ctx: &ArmContext,
    request: &ArmRequest,
    scope: &str,
) -> Result<ArmReply, ArmError> {
    let filter = parse_scope_filter(request.param("$filter"))?;
    let tenant = ctx.state.read_tenant();
    check_scope(&tenant, scope)?;
    let items = tenant
        .role_assignments
        .values()
        .filter(|a| filter.principal.is_none_or(|p| p == a.principal_id))
        .filter(|a| listed(&tenant, scope, &a.scope, &filter))
        .map(assignment_json)
        .collect();
    page(ctx, request, items, PAGE_SIZE)
}

fn assignment_not_found(name: &str) -> ArmError {
    ArmError::not_found(
        "RoleAssignmentNotFound",
        format!("The role assignment '{name}' is not found."),
    )
}

fn find_assignment<'a>(tenant: &'a Tenant, scope: &str, name: &str) -> Option<&'a RoleAssignment> {
    let id = Uuid::parse_str(name).ok()?;
    tenant.role_assignments.get(&id).filter(|a| {
        a.scope
            .trim_end_matches('/')
            .eq_ignore_ascii_case(scope.trim_end_matches('/'))
    })
}

pub fn get_role_assignment(
    ctx: &ArmContext,
    scope: &str,
    name: &str,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let a = find_assignment(&tenant, scope, name).ok_or_else(|| assignment_not_found(name))?;
    Ok(ArmReply::ok(assignment_json(a)))
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{name}` with
/// `{"properties": {"roleDefinitionId", "principalId", "principalType"?}}`.
pub fn put_role_assignment(
    ctx: &ArmContext,
    request: &ArmRequest,
    scope: &str,
    name: &str,
) -> Result<ArmReply, ArmError> {
    let name = Uuid::parse_str(name).map_err(|_| {
        ArmError::bad_request("InvalidRoleAssignmentId", format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."))
    })?;
    let body: Value = serde_json::from_slice(&request.body).map_err(|e| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}."),
        )
    })?;
    let properties = body.get("properties").ok_or_else(|| {
        ArmError::bad_request(
            "InvalidRequestContent",
            "The request content must contain 'properties'.",
        )
    })?;
    let role_definition = properties
        .get("roleDefinitionId")
        .and_then(Value::as_str)
        .and_then(|id| id.trim_end_matches('/').rsplit('/').next())
        .and_then(|g| Uuid::parse_str(g).ok())
        .ok_or_else(|| {
            ArmError::bad_request(
                "InvalidRoleDefinitionId",
                "The role definition ID is missing or not valid.",
            )
        })?;
    let principal = properties
        .get("principalId")
        .and_then(Value::as_str)
        .and_then(|p| Uuid::parse_str(p).ok())
        .ok_or_else(|| {
            ArmError::bad_request(
                "InvalidPrincipalId",
                "A valid principal ID must be provided for role assignment.",
            )
        })?;
    let now = ctx.state.clock.now();
    let mut tenant = ctx.state.write_tenant();
    check_scope(&tenant, scope)?;
    // ARM trusts an explicit principalType (replication delay); without one it looks the
    // principal up in the directory.
    let principal_type = match properties.get("principalType").and_then(Value::as_str) {
        Some(text) => ArmPrincipalType::parse(text).ok_or_else(|| {
            ArmError::bad_request(
                "InvalidPrincipalType",
                format!("The principal type '{text}' is not valid."),
            )
        })?,
        None => match tenant.directory_object_kind(principal) {
            Some(DirectoryObjectKind::User) => ArmPrincipalType::User,
            Some(DirectoryObjectKind::Group) => ArmPrincipalType::Group,
            Some(DirectoryObjectKind::ServicePrincipal) => ArmPrincipalType::ServicePrincipal,
            None => {
                return Err(ArmError::bad_request(
                    "PrincipalNotFound",
                    format!(
                        "Principal {} does not exist in the directory {}.",
                        principal.simple(),
                        tenant.tenant_id()
                    ),
                ));
            }
        },
    };
    let assignment = RoleAssignment {
        name,
        scope: scope.to_string(),
        role_definition,
        principal_id: principal,
        principal_type,
        created: now,
        created_by: tenant.client_app_id,
    };
    let body = assignment_json(&assignment);
    let caller = tenant.client_app_id.to_string();
    tenant
        .put_role_assignment(assignment, &caller, now)
        .map_err(|e| match e {
            TenantError::AlreadyExists { .. } => ArmError::new(
                StatusCode::CONFLICT,
                "RoleAssignmentExists",
                "The role assignment already exists.",
            ),
            TenantError::NotFound {
                kind: "role definition",
                ..
            } => ArmError::bad_request(
                "RoleDefinitionDoesNotExist",
                format!(
                    "The specified role definition with ID '{role_definition}' does not exist."
                ),
            ),
            TenantError::NotFound { .. } => ArmError::not_found(
                "ResourceNotFound",
                format!("The scope '{scope}' does not exist."),
            ),
            other => ArmError::bad_request("InvalidRoleAssignment", other.to_string()),
        })?;
    Ok(ArmReply {
        status: StatusCode::CREATED,
        body: Some(body),
    })
}

/// `DELETE`: 200 with the deleted assignment, or 204 when there was none.
pub fn delete_role_assignment(
    ctx: &ArmContext,
    scope: &str,
    name: &str,
) -> Result<ArmReply, ArmError> {
    let now = ctx.state.clock.now();
    let mut tenant = ctx.state.write_tenant();
    let Some(id) = find_assignment(&tenant, scope, name).map(|a| a.name) else {
        return Ok(ArmReply {
            status: StatusCode::NO_CONTENT,
            body: None,
        });
    };
    let caller = tenant.client_app_id.to_string();
    let removed = tenant
        .delete_role_assignment(id, &caller, now)
        .map_err(|_| assignment_not_found(name))?;
    Ok(ArmReply::ok(assignment_json(&removed)))
}

fn eligibility_json(tenant: &Tenant, e: &RoleEligibility, instance: bool) -> Value {
    let (collection, kind, name) = if instance {
        (
            "roleEligibilityScheduleInstances",
            "Microsoft.Authorization/RoleEligibilityScheduleInstances",
            e.instance_name,
        )
    } else {
        (
            "roleEligibilitySchedules",
            "Microsoft.Authorization/RoleEligibilitySchedules",
            e.name,
        )
    };
    let role_name = tenant
        .role_definitions
        .get(&e.role_definition)
        .map(|r| r.role_name.clone());
    let mut properties = json!({
        "scope": e.scope,
        "roleDefinitionId": role_definition_id(&e.scope, e.role_definition),
        "principalId": e.principal_id.to_string(),
        "principalType": e.principal_type.as_str(),
        "memberType": e.member_type,
        "status": e.status,
        "startDateTime": arm_time(e.schedule.start),
        "endDateTime": e.schedule.end.map(arm_time),
        "condition": null,
        "conditionVersion": null,
        "createdOn": arm_time(e.created),
        "expandedProperties": {
            "scope": {"id": e.scope},
            "roleDefinition": {"id": role_definition_id(&e.scope, e.role_definition), "displayName": role_name, "type": "BuiltInRole"},
            "principal": {"id": e.principal_id.to_string(), "type": e.principal_type.as_str()},
        }
    });
    if instance {
        properties["roleEligibilityScheduleId"] = json!(format!(
            "{}/providers/Microsoft.Authorization/roleEligibilitySchedules/{}",
            e.scope.trim_end_matches('/'),
            e.name
        ));
    } else {
        properties["roleEligibilityScheduleRequestId"] = json!(format!(
            "{}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{}",
            e.scope.trim_end_matches('/'),
            e.name
        ));
        properties["updatedOn"] = json!(arm_time(e.created));
    }
    json!({
        "id": format!("{}/providers/Microsoft.Authorization/{collection}/{name}", e.scope.trim_end_matches('/')),
        "name": name.to_string(),
        "type": kind,
        "properties": properties,
    })
}

/// PIM eligibility at a scope; needs the tenant's P2 licence.
pub fn list_eligibility(
    ctx: &ArmContext,
    request: &ArmRequest,
    scope: &str,
    instances: bool,
) -> Result<ArmReply, ArmError> {
    let filter = parse_scope_filter(request.param("$filter"))?;
    let tenant = ctx.state.read_tenant();
    check_scope(&tenant, scope)?;
    if !tenant.organization.has_p2_license {
        return Err(ArmError::license_required());
    }
    let member_rows = instances && ctx.state.wire().group_member_eligibility_rows;
    let items = tenant
        .role_eligibilities
        .values()
        .flat_map(|e| {
            let mut rows = vec![e.clone()];
            if member_rows {
                rows.extend(group_member_rows(&tenant, e));
            }
            rows
        })
        .filter(|e| filter.principal.is_none_or(|p| p == e.principal_id))
        .filter(|e| listed(&tenant, scope, &e.scope, &filter))
        .map(|e| eligibility_json(&tenant, &e, instances))
        .collect();
    page(ctx, request, items, PAGE_SIZE)
}

/// The instances PIM lists for the direct user members of a group's eligibility: the same
/// role and scope, `memberType: Group` (RoleEligibilityScheduleInstance `memberType`:
/// "Membership type of the role eligibility schedule": Inherited, Group, Direct).
fn group_member_rows(tenant: &Tenant, e: &RoleEligibility) -> Vec<RoleEligibility> {
    if e.principal_type != ArmPrincipalType::Group {
        return Vec::new();
    }
    let Some(group) = tenant.groups.get(&e.principal_id) else {
        return Vec::new();
    };
    group
        .members
        .iter()
        .filter(|member| tenant.users.contains_key(member))
        .map(|member| RoleEligibility {
            instance_name: crate::tenant::derived_uuid(&[
                e.instance_name.as_bytes(),
                member.as_bytes(),
            ]),
            principal_id: *member,
            principal_type: ArmPrincipalType::User,
            member_type: "Group".into(),
            ..e.clone()
        })
        .collect()
}

/// `PUT {scope}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{name}` with
/// `{"properties": {"principalId", "roleDefinitionId", "requestType", "scheduleInfo"?,
/// "justification"?}}` (RoleEligibilityScheduleRequests_Create, api-version 2020-10-01):
/// `AdminAssign` makes the principal eligible at the scope, `AdminRemove` removes that
/// eligibility, each as a `TenantChange`. 201 with the request (`status` `Provisioned` or
/// `Revoked`, `targetRoleEligibilityScheduleId`); an eligibility that exists already is 400
/// `RoleAssignmentExists`, one that does not, 400 `RoleAssignmentDoesNotExist`; without P2,
/// `AadPremiumLicenseRequired`.
pub fn put_eligibility_request(
    ctx: &ArmContext,
    request: &ArmRequest,
    scope: &str,
    name: &str,
) -> Result<ArmReply, ArmError> {
    use crate::changes::{TenantChange, apply_to};

    let name = Uuid::parse_str(name).map_err(|_| {
        ArmError::bad_request(
            "InvalidRoleEligibilityScheduleRequestId",
            format!("The request ID '{name}' is not valid. It must be a GUID."),
        )
    })?;
    let body: Value = serde_json::from_slice(&request.body).map_err(|e| {
        ArmError::bad_request(
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: {e}."),
        )
    })?;
    let properties = &body["properties"];
    let guid = |field: &str| {
        properties[field]
            .as_str()
            .and_then(|v| v.trim_end_matches('/').rsplit('/').next())
            .and_then(|g| Uuid::parse_str(g).ok())
            .ok_or_else(|| {
                ArmError::bad_request(
                    "InvalidRequestContent",
                    format!("The request must contain a valid '{field}'."),
                )
            })
    };
    let role_definition = guid("roleDefinitionId")?;
    let principal = guid("principalId")?;
    let request_type = properties["requestType"].as_str().unwrap_or_default();
    let now = ctx.state.clock.now();
    let mut tenant = ctx.state.write_tenant();
    check_scope(&tenant, scope)?;
    if !tenant.organization.has_p2_license {
        return Err(ArmError::license_required());
    }
    let existing = tenant
        .role_eligibilities
        .values()
        .find(|e| {
            e.scope.eq_ignore_ascii_case(scope)
                && e.role_definition == role_definition
                && e.principal_id == principal
        })
        .map(|e| e.name);
    let principal_type = match tenant.directory_object_kind(principal) {
        Some(DirectoryObjectKind::User) => ArmPrincipalType::User,
        Some(DirectoryObjectKind::Group) => ArmPrincipalType::Group,
        Some(DirectoryObjectKind::ServicePrincipal) => ArmPrincipalType::ServicePrincipal,
        None => {
            return Err(ArmError::bad_request(
                "PrincipalNotFound",
                format!(
                    "Principal {} does not exist in the directory.",
                    principal.simple()
                ),
            ));
        }
    };
    let (change, status, target) = match (request_type, existing) {
        ("AdminAssign", Some(_)) => {
            return Err(ArmError::bad_request(
                "RoleAssignmentExists",
                "The Role assignment already exists.",
            ));
        }
        ("AdminAssign", None) => (
            TenantChange::AddRoleEligibility {
                name,
                scope: scope.to_string(),
                role_definition,
                principal,
                principal_type,
            },
            "Provisioned",
            Some(name),
        ),
        ("AdminRemove", Some(existing)) => (
            TenantChange::RemoveRoleEligibility { name: existing },
            "Revoked",
            None,
        ),
        ("AdminRemove", None) => {
            return Err(ArmError::bad_request(
                "RoleAssignmentDoesNotExist",
                "The Role assignment does not exist.",
            ));
        }
        (other, _) => {
            return Err(ArmError::bad_request(
                "InvalidRequestType",
                format!(
                    "The request type '{other}' is not supported by this emulator (AdminAssign, AdminRemove)."
                ),
            ));
        }
    };
    apply_to(&mut tenant, change, now).map_err(|e| {
        ArmError::bad_request("InvalidRoleEligibilityScheduleRequest", e.to_string())
    })?;
    let base = scope.trim_end_matches('/');
    Ok(ArmReply {
        status: StatusCode::CREATED,
        body: Some(json!({
            "id": format!("{base}/providers/Microsoft.Authorization/roleEligibilityScheduleRequests/{name}"),
            "name": name.to_string(),
            "type": "Microsoft.Authorization/RoleEligibilityScheduleRequests",
            "properties": {
                "scope": scope,
                "roleDefinitionId": role_definition_id(scope, role_definition),
                "principalId": principal.to_string(),
                "principalType": principal_type.as_str(),
                "requestType": request_type,
                "status": status,
                "targetRoleEligibilityScheduleId": target.map(|t| format!("{base}/providers/Microsoft.Authorization/roleEligibilitySchedules/{t}")),
                "scheduleInfo": properties.get("scheduleInfo").cloned().unwrap_or(Value::Null),
                "justification": properties.get("justification").cloned().unwrap_or(Value::Null),
                "requestorId": tenant.client_app_id.to_string(),
                "createdOn": arm_time(now),
            }
        })),
    })
}
