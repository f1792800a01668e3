//! Graph's JSON for each tenant object: full property maps (handlers project them with
//! `$select`), the default property sets Graph returns without `$select`, and the `@odata.type`
//! of directory objects in mixed collections (members, owners).

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::tenant::{
    AppRoleAssignment, DirectoryObjectKind, DirectoryRole, DirectoryRoleAssignment,
    DirectoryRoleDefinition, DirectoryRoleEligibility, Group, GroupEligibility, Organization,
    ScheduleInfo, ServicePrincipal, Tenant, User,
};

/// Graph's timestamps: UTC, whole seconds, `Z` suffix.
pub fn timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default()
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Properties `GET /users` returns without `$select` (v1.0).
pub const USER_DEFAULTS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];

/// `signInActivity` is only present when selected and the tenant has Entra ID P1/P2.
pub fn user(u: &User, premium: bool) -> Map<String, Value> {
    let mut map = object(json!({
        "id": u.id.to_string(),
        "businessPhones": [],
        "displayName": u.display_name,
        "givenName": u.given_name,
        "jobTitle": null,
        "mail": u.mail,
        "mobilePhone": null,
        "officeLocation": null,
        "preferredLanguage": null,
        "surname": u.surname,
        "userPrincipalName": u.user_principal_name,
        "accountEnabled": u.account_enabled,
        "userType": u.user_type.as_str(),
        "employeeId": u.employee_id,
        "createdDateTime": timestamp(u.created),
        "onPremisesSyncEnabled": if u.on_premises_sync_enabled { Value::Bool(true) } else { Value::Null },
        "deletedDateTime": u.deleted.map(timestamp),
    }));
    if premium {
        map.insert(
            "signInActivity".into(),
            json!({
                "lastSignInDateTime": u.last_sign_in.map(timestamp),
                "lastNonInteractiveSignInDateTime": null,
            }),
        );
    }
    map
}

pub const GROUP_DEFAULTS: &[&str] = &[
    "classification",
    "createdDateTime",
    "deletedDateTime",
    "description",
    "displayName",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "onPremisesSyncEnabled",
    "securityEnabled",
    "visibility",
];

pub fn group(g: &Group) -> Map<String, Value> {
    let nickname: String = g
        .display_name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    object(json!({
        "id": g.id.to_string(),
        "classification": null,
        "createdDateTime": timestamp(g.created),
        "deletedDateTime": g.deleted.map(timestamp),
        "description": g.description,
        "displayName": g.display_name,
        "groupTypes": g.group_types,
        "isAssignableToRole": null,
        "mail": if g.mail_enabled { Value::String(format!("{nickname}@example.onmicrosoft.com")) } else { Value::Null },
        "mailEnabled": g.mail_enabled,
        "mailNickname": nickname,
        "onPremisesSyncEnabled": if g.on_premises_sync_enabled { Value::Bool(true) } else { Value::Null },
        "securityEnabled": g.security_enabled,
        "securityIdentifier": security_identifier(g.id),
        "visibility": if g.is_unified() { Value::String("Private".into()) } else { Value::Null },
    }))
}

/// An Entra object's Windows security identifier: `S-1-12-1-` and the object id's 16 bytes
/// read as four little-endian 32-bit numbers (how Entra ID derives cloud-only SIDs).
fn security_identifier(id: uuid::Uuid) -> String {
    let bytes = id.to_bytes_le();
    let parts: Vec<String> = bytes
        .chunks(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string())
        .collect();
    format!("S-1-12-1-{}", parts.join("-"))
}

pub const SERVICE_PRINCIPAL_DEFAULTS: &[&str] = &[
    "accountEnabled",
    "appDisplayName",
    "appId",
    "appOwnerOrganizationId",
    "appRoles",
    "description",
    "displayName",
    "homepage",
    "servicePrincipalType",
    "tags",
    "info",
];

pub fn service_principal(sp: &ServicePrincipal) -> Map<String, Value> {
    let roles: Vec<Value> = sp
        .app_roles
        .iter()
        .map(|r| {
            json!({
                "allowedMemberTypes": r.allowed_member_types,
                "description": r.description,
                "displayName": r.display_name,
                "id": r.id.to_string(),
                "isEnabled": r.is_enabled,
                "origin": "Application",
                "value": r.value,
            })
        })
        .collect();
    object(json!({
        "id": sp.id.to_string(),
        "accountEnabled": sp.account_enabled,
        "appDisplayName": sp.display_name,
        "appId": sp.app_id.to_string(),
        "appOwnerOrganizationId": sp.app_owner_organization_id.map(|o| o.to_string()),
        "appRoles": roles,
        "description": null,
        "displayName": sp.display_name,
        "homepage": sp.homepage,
        "info": {"logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null, "supportUrl": null, "termsOfServiceUrl": null},
        "servicePrincipalType": sp.service_principal_type.as_str(),
        "tags": sp.tags,
    }))
}

pub fn app_role_assignment(a: &AppRoleAssignment) -> Map<String, Value> {
    object(json!({
        "id": a.id,
        "deletedDateTime": null,
        "appRoleId": a.app_role_id.to_string(),
        "createdDateTime": timestamp(a.created),
        "principalDisplayName": a.principal_display_name,
        "principalId": a.principal_id.to_string(),
        "principalType": a.principal_type.as_str(),
        "resourceDisplayName": a.resource_display_name,
        "resourceId": a.resource_id.to_string(),
    }))
}

pub fn organization(o: &Organization, premium: bool) -> Map<String, Value> {
    let domains: Vec<Value> = o
        .verified_domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": i == 0,
                "isInitial": i == 0,
                "name": d,
                "type": "Managed",
            })
        })
        .collect();
    let mut plans = vec![
        json!({"capabilityStatus": "Enabled", "provisioningStatus": "Success", "service": "AADPremiumService", "servicePlanId": "41781fb2-bc02-4b7c-bd55-b576c07bb09d"}),
    ];
    if premium {
        plans.push(json!({"capabilityStatus": "Enabled", "provisioningStatus": "Success", "service": "AADPremiumService", "servicePlanId": "eec0eb4f-6444-4f95-aba0-50c24d67f998"}));
    }
    object(json!({
        "id": o.tenant_id.to_string(),
        "createdDateTime": timestamp(o.created),
        "deletedDateTime": null,
        "displayName": o.display_name,
        "tenantType": "AAD",
        "verifiedDomains": domains,
        "assignedPlans": plans,
    }))
}

pub fn role_definition(d: &DirectoryRoleDefinition) -> Map<String, Value> {
    // The tenant model keeps no permission lists; one action named after the role keeps the
    // documented shape (a non-empty `allowedResourceActions`).
    let area: String = d
        .display_name
        .split_whitespace()
        .next()
        .unwrap_or("directory")
        .to_ascii_lowercase();
    let action = format!("microsoft.directory/{area}/standard/read");
    object(json!({
        "id": d.id.to_string(),
        "description": d.description,
        "displayName": d.display_name,
        "isBuiltIn": d.is_built_in,
        "isEnabled": true,
        "resourceScopes": ["/"],
        "templateId": d.template_id.to_string(),
        "version": "1",
        "rolePermissions": [{"allowedResourceActions": [action], "condition": null}],
        "inheritsPermissionsFrom": [],
    }))
}

pub fn role_assignment(a: &DirectoryRoleAssignment) -> Map<String, Value> {
    object(json!({
        "id": a.id,
        "principalId": a.principal_id.to_string(),
        "directoryScopeId": a.directory_scope_id,
        "roleDefinitionId": a.role_definition_id.to_string(),
        "appScopeId": null,
        "condition": null,
    }))
}

fn schedule_info(s: &ScheduleInfo) -> Value {
    json!({
        "startDateTime": timestamp(s.start),
        "recurrence": null,
        "expiration": match s.end {
            Some(end) => json!({"type": "afterDateTime", "endDateTime": timestamp(end), "duration": null}),
            None => json!({"type": "noExpiration", "endDateTime": null, "duration": null}),
        }
    })
}

pub fn role_eligibility_schedule(e: &DirectoryRoleEligibility) -> Map<String, Value> {
    object(json!({
        "id": e.id.to_string(),
        "principalId": e.principal_id.to_string(),
        "roleDefinitionId": e.role_definition_id.to_string(),
        "directoryScopeId": e.directory_scope_id,
        "appScopeId": null,
        "createdUsing": e.id.to_string(),
        "createdDateTime": timestamp(e.created),
        "modifiedDateTime": null,
        "status": e.status,
        "memberType": e.member_type,
        "scheduleInfo": schedule_info(&e.schedule),
    }))
}

pub fn role_eligibility_instance(e: &DirectoryRoleEligibility) -> Map<String, Value> {
    object(json!({
        "id": e.instance_id.to_string(),
        "principalId": e.principal_id.to_string(),
        "roleDefinitionId": e.role_definition_id.to_string(),
        "directoryScopeId": e.directory_scope_id,
        "appScopeId": null,
        "startDateTime": timestamp(e.schedule.start),
        "endDateTime": e.schedule.end.map(timestamp),
        "memberType": e.member_type,
        "roleEligibilityScheduleId": e.id.to_string(),
    }))
}

pub fn group_eligibility_schedule(e: &GroupEligibility) -> Map<String, Value> {
    object(json!({
        "id": e.id.to_string(),
        "createdDateTime": timestamp(e.created),
        "createdUsing": e.id.to_string(),
        "modifiedDateTime": null,
        "scheduleInfo": schedule_info(&e.schedule),
        "status": e.status,
        "accessId": e.access.as_str(),
        "groupId": e.group_id.to_string(),
        "memberType": e.member_type,
        "principalId": e.principal_id.to_string(),
    }))
}

pub fn group_eligibility_instance(e: &GroupEligibility) -> Map<String, Value> {
    object(json!({
        "id": e.instance_id.to_string(),
        "startDateTime": timestamp(e.schedule.start),
        "endDateTime": e.schedule.end.map(timestamp),
        "accessId": e.access.as_str(),
        "groupId": e.group_id.to_string(),
        "memberType": e.member_type,
        "principalId": e.principal_id.to_string(),
        "eligibilityScheduleId": e.id.to_string(),
    }))
}

pub fn directory_role(r: &DirectoryRole) -> Map<String, Value> {
    object(json!({
        "id": r.id.to_string(),
        "deletedDateTime": null,
        "description": r.description,
        "displayName": r.display_name,
        "roleTemplateId": r.role_template_id.to_string(),
    }))
}

pub const DIRECTORY_ROLE_DEFAULTS: &[&str] = &[
    "deletedDateTime",
    "description",
    "displayName",
    "roleTemplateId",
];

/// Graph's `@odata.type` for a kind of directory object.
pub fn odata_type(kind: DirectoryObjectKind) -> &'static str {
    match kind {
        DirectoryObjectKind::User => "#microsoft.graph.user",
        DirectoryObjectKind::Group => "#microsoft.graph.group",
        DirectoryObjectKind::ServicePrincipal => "#microsoft.graph.servicePrincipal",
    }
}

/// A live directory object as it appears in a members or owners collection: its full JSON
/// with `@odata.type` first.
pub fn directory_object(tenant: &Tenant, id: Uuid) -> Option<Map<String, Value>> {
    let kind = tenant.directory_object_kind(id)?;
    let premium = tenant.organization.has_p2_license;
    let body = match kind {
        DirectoryObjectKind::User => user(tenant.users.get(&id)?, premium),
        DirectoryObjectKind::Group => group(tenant.groups.get(&id)?),
        DirectoryObjectKind::ServicePrincipal => {
            service_principal(tenant.service_principals.get(&id)?)
        }
    };
    let mut map = Map::new();
    map.insert("@odata.type".into(), Value::String(odata_type(kind).into()));
    map.extend(body);
    Some(map)
}

/// Default properties of a mixed directory object collection (members, owners).
pub fn directory_object_defaults(kind: Option<DirectoryObjectKind>) -> &'static [&'static str] {
    match kind {
        Some(DirectoryObjectKind::User) => USER_DEFAULTS,
        Some(DirectoryObjectKind::Group) => GROUP_DEFAULTS,
        Some(DirectoryObjectKind::ServicePrincipal) => SERVICE_PRINCIPAL_DEFAULTS,
        None => &[],
    }
}
