//! The Entra ID (Graph) side of the projection: tenant, users, groups, service principals and
//! directory roles, and the grants of memberships, ownerships and role assignments.

use serde_json::Value;

use crate::item::{Collection, ItemKey};
use crate::model::proto::{self, AccountType, Purpose, UserStatus};
use crate::model::record::Record;

use super::build::{
    self, DEFAULT_APP_ROLE, DIRECTORY_ROLE, ENTERPRISE_APPLICATION, EntitlementParts, GROUP,
    MANAGED_IDENTITY, MANAGEMENT_GROUP, Profile, ROLE, ResourceParts, SUBSCRIPTION, TENANT, USER,
    resource_id, str_field,
};
use super::principal::{self, Kind};
use super::{ItemLookup, ProjectionOptions};

/// The types a membership or role can be granted to.
const PRINCIPAL_TYPES: [&str; 4] = [USER, GROUP, ENTERPRISE_APPLICATION, MANAGED_IDENTITY];
/// Owners of groups and applications: users and service principals.
const OWNER_TYPES: [&str; 3] = [USER, ENTERPRISE_APPLICATION, MANAGED_IDENTITY];

/// The tenant GUID, from the organization item.
pub fn tenant_id(items: &dyn ItemLookup) -> Option<String> {
    items.ids(Collection::Organization, "").into_iter().next()
}

/// The tenant resource (its `role:` entitlements at scope `/` belong to the scope origin).
pub fn organization(id: &str, org: &Value, options: &ProjectionOptions) -> Vec<Record> {
    let mut profile = Profile::default();
    profile
        .string("tenantId", id)
        .string_from("displayName", org, "displayName");
    if let Some(domain) = org
        .get("verifiedDomains")
        .and_then(Value::as_array)
        .and_then(|domains| {
            domains
                .iter()
                .find(|d| d.get("isDefault").and_then(Value::as_bool) == Some(true))
        })
        .and_then(|d| str_field(d, "name"))
    {
        profile.string("defaultDomain", domain);
    }
    let resource = build::resource(ResourceParts {
        id: resource_id(TENANT, id),
        parent: None,
        display_name: str_field(org, "displayName").unwrap_or(id).to_string(),
        description: String::new(),
        trait_annotation: proto::any(&proto::AppTrait {
            help_url: String::new(),
            profile: Some(profile.build()),
        }),
        children: vec![DIRECTORY_ROLE, MANAGEMENT_GROUP, SUBSCRIPTION, ROLE],
        link: Some(build::portal_link(
            options,
            "view/Microsoft_AAD_IAM/TenantOverview.ReactView",
        )),
    });
    vec![Record::Resource(resource)]
}

/// The manager a user item names: `manager@delta` (users delta: a list, an entry with
/// `@removed` takes the manager away) or an expanded `manager` object.
pub fn manager_id(user: &Value) -> Option<&str> {
    if let Some(list) = user.get("manager@delta") {
        return list
            .as_array()?
            .iter()
            .rev()
            .find(|m| m.get("@removed").is_none())
            .and_then(|m| str_field(m, "id"));
    }
    user.get("manager").and_then(|m| str_field(m, "id"))
}

/// An address to mail the user at: `mail`, else a UPN that is an address (a guest's
/// `alice_contoso.com#EXT#@tenant` is not).
fn email_of(user: &Value) -> Option<&str> {
    str_field(user, "mail").or_else(|| {
        str_field(user, "userPrincipalName")
            .filter(|upn| upn.matches('@').count() == 1 && !upn.contains(['#', ' ']))
    })
}

pub fn user(
    id: &str,
    user: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    if options.external_principals {
        return Vec::new();
    }
    let mut profile = Profile::default();
    profile
        .string("id", id)
        .string_from("displayName", user, "displayName")
        .string_from("userPrincipalName", user, "userPrincipalName")
        .string_from("email", user, "mail")
        .string_from("jobTitle", user, "jobTitle")
        .string_from("department", user, "department")
        .string_from("employeeId", user, "employeeId")
        .string_from("userType", user, "userType")
        .bool_from("accountEnabled", user, "accountEnabled");
    // A manager counts only while it is a live user: Graph's `$expand=manager` does not resolve
    // a soft-deleted one, and delta does not tell the reports when their manager is deleted, so
    // the stored link alone would make the incremental state differ from a fresh read.
    if let Some(manager) = manager_id(user)
        && let Some(manager_item) = items.item(&ItemKey::new(Collection::User, manager))
    {
        profile.string("managerId", manager);
        if let Some(email) = email_of(&manager_item) {
            profile.string("managerEmail", email);
        }
    }
    let status = match user.get("accountEnabled").and_then(Value::as_bool) {
        Some(true) => UserStatus::Enabled,
        Some(false) => UserStatus::Disabled,
        None => UserStatus::Unspecified,
    };
    let trait_ = proto::UserTrait {
        emails: email_of(user)
            .map(|address| proto::Email {
                address: address.to_string(),
                is_primary: true,
            })
            .into_iter()
            .collect(),
        status: Some(proto::Status {
            status: status as i32,
            details: String::new(),
        }),
        profile: Some(profile.build()),
        account_type: account_type(id, items, options) as i32,
        login: str_field(user, "userPrincipalName")
            .unwrap_or_default()
            .to_string(),
        login_aliases: Vec::new(),
        created_at: build::timestamp(user, "createdDateTime"),
        last_login: user
            .get("signInActivity")
            .and_then(|s| build::timestamp(s, "lastSignInDateTime")),
        structured_name: match (str_field(user, "givenName"), str_field(user, "surname")) {
            (None, None) => None,
            (given, family) => Some(proto::StructuredName {
                given_name: given.unwrap_or_default().to_string(),
                family_name: family.unwrap_or_default().to_string(),
            }),
        },
        employee_ids: str_field(user, "employeeId")
            .map(str::to_string)
            .into_iter()
            .collect(),
    };
    let resource = build::resource(ResourceParts {
        id: resource_id(USER, id),
        parent: None,
        display_name: display_name(user, &["displayName", "userPrincipalName"], id),
        description: String::new(),
        trait_annotation: proto::any(&trait_),
        children: Vec::new(),
        link: Some(build::portal_link(
            options,
            &format!(
                "view/Microsoft_AAD_UsersAndTenants/UserProfileMenuBlade/~/overview/userId/{id}"
            ),
        )),
    });
    vec![Record::Resource(resource)]
}

/// SERVICE for room, equipment and shared mailboxes (with the mailbox option), else HUMAN; a
/// user without a mailbox (`noMailbox`) is HUMAN.
fn account_type(id: &str, items: &dyn ItemLookup, options: &ProjectionOptions) -> AccountType {
    if !options.mailbox_settings {
        return AccountType::Human;
    }
    let purpose = items
        .item(&ItemKey::new(Collection::Mailbox, id))
        .and_then(|m| str_field(&m, "userPurpose").map(str::to_ascii_lowercase));
    match purpose.as_deref() {
        Some("room" | "equipment" | "shared") => AccountType::Service,
        _ => AccountType::Human,
    }
}

fn display_name(value: &Value, fields: &[&str], fallback: &str) -> String {
    fields
        .iter()
        .find_map(|f| str_field(value, f))
        .unwrap_or(fallback)
        .to_string()
}

/// Whether group `id` is emitted as a resource (and so carries entitlements and grants).
pub fn group_emitted(id: &str, items: &dyn ItemLookup, options: &ProjectionOptions) -> bool {
    if options.external_principals {
        return false;
    }
    let key = ItemKey::new(Collection::Group, id);
    // Only `--skip-ad-groups` needs the group's fields; otherwise presence decides, which a
    // store answers without decoding the item (every membership grant asks).
    if options.skip_ad_groups {
        items
            .item(&key)
            .is_some_and(|g| !principal::group_hidden(&g, options))
    } else {
        items.exists(&key)
    }
}

pub fn group(id: &str, group: &Value, options: &ProjectionOptions) -> Vec<Record> {
    if options.external_principals || principal::group_hidden(group, options) {
        return Vec::new();
    }
    let mut profile = Profile::default();
    profile
        .string("id", id)
        .string_from("displayName", group, "displayName")
        .string_from("description", group, "description")
        .string_from("mail", group, "mail")
        .string_from("securityIdentifier", group, "securityIdentifier")
        .bool_from("mailEnabled", group, "mailEnabled")
        .bool_from("securityEnabled", group, "securityEnabled")
        .bool_from("onPremisesSyncEnabled", group, "onPremisesSyncEnabled")
        .bool_from("isAssignableToRole", group, "isAssignableToRole");
    let group_types: Vec<String> = group
        .get("groupTypes")
        .and_then(Value::as_array)
        .map(|types| {
            types
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !group_types.is_empty() {
        profile.list("groupTypes", &group_types);
    }
    let name = display_name(group, &["displayName"], id);
    let rid = resource_id(GROUP, id);
    let resource = build::resource(ResourceParts {
        id: rid.clone(),
        parent: None,
        display_name: name.clone(),
        description: str_field(group, "description")
            .unwrap_or_default()
            .to_string(),
        trait_annotation: proto::any(&proto::GroupTrait {
            profile: Some(profile.build()),
        }),
        children: Vec::new(),
        link: Some(build::portal_link(
            options,
            &format!("view/Microsoft_AAD_IAM/GroupDetailsMenuBlade/~/Overview/groupId/{id}"),
        )),
    });
    let mut slugs = vec![
        (
            "members",
            "Member",
            Purpose::Assignment,
            &PRINCIPAL_TYPES[..],
        ),
        ("owners", "Owner", Purpose::Ownership, &OWNER_TYPES[..]),
    ];
    if !options.skip_p2 {
        slugs.push((
            "eligible_members",
            "Eligible Member",
            Purpose::Assignment,
            &PRINCIPAL_TYPES[..],
        ));
        slugs.push((
            "eligible_owners",
            "Eligible Owner",
            Purpose::Assignment,
            &OWNER_TYPES[..],
        ));
    }
    let mut records = vec![Record::Resource(resource)];
    for (slug, what, purpose, grantable_to) in slugs {
        records.push(Record::Entitlement(build::entitlement(EntitlementParts {
            resource: build::resource_ref(&rid, &name),
            slug: slug.to_string(),
            display_name: format!("{name} {what}"),
            description: format!("{what} of the {name} group"),
            purpose,
            grantable_to,
        })));
    }
    records
}

/// The grant a GroupMember / GroupOwner item (`<groupId>/<principalId>`) stands for.
pub fn group_relation(
    key: &ItemKey,
    value: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    let Some((group_id, principal_id)) = key.id.split_once('/') else {
        return Vec::new();
    };
    let slug = if key.collection == Collection::GroupOwner {
        "owners"
    } else {
        "members"
    };
    if !group_emitted(group_id, items, options) {
        return Vec::new();
    }
    let Some(principal) = Kind::from_link(value)
        .and_then(|kind| principal::resolve(kind, principal_id, items, options))
    else {
        return Vec::new();
    };
    vec![Record::Grant(build::grant(
        &resource_id(GROUP, group_id),
        slug,
        &principal,
        None,
    ))]
}

/// The slug and principal of a PIM for Groups eligibility (`accessId` member or owner).
fn group_eligibility_target(value: &Value) -> Option<(&str, &'static str, &str)> {
    let slug = match str_field(value, "accessId")? {
        "member" => "eligible_members",
        "owner" => "eligible_owners",
        _ => return None,
    };
    Some((
        str_field(value, "groupId")?,
        slug,
        str_field(value, "principalId")?,
    ))
}

pub fn group_eligibility(
    key: &ItemKey,
    value: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    if options.skip_p2 {
        return Vec::new();
    }
    let Some((group_id, slug, principal_id)) = group_eligibility_target(value) else {
        return Vec::new();
    };
    if !group_emitted(group_id, items, options)
        || !is_leader(key, value, items, |v| {
            group_eligibility_target(v).map(|t| (t.0.to_string(), t.1.to_string()))
        })
    {
        return Vec::new();
    }
    let Some(principal) = principal::resolve(principal_kind(value), principal_id, items, options)
    else {
        return Vec::new();
    };
    vec![Record::Grant(build::grant(
        &resource_id(GROUP, group_id),
        slug,
        &principal,
        None,
    ))]
}

/// The principal kind of a PIM or role management object: from an expanded `principal`'s
/// `@odata.type` when there is one, else found among the stored principals.
fn principal_kind(value: &Value) -> Kind {
    value
        .get("principal")
        .and_then(Kind::from_odata)
        .unwrap_or(Kind::Unknown)
}

/// Several items can stand for the same grant (a user holding one directory role at two
/// directory scopes, two eligibility schedules of one principal): the grant belongs to the item
/// with the smallest id among those naming the same principal and the same `target`.
/// Returns whether `key` is that item.
pub fn is_leader<T: PartialEq>(
    key: &ItemKey,
    value: &Value,
    items: &dyn ItemLookup,
    target: impl Fn(&Value) -> Option<T>,
) -> bool {
    let Some(mine) = target(value) else {
        return false;
    };
    siblings(key, value, items)
        .iter()
        .filter(|id| id.as_str() < key.id.as_str())
        .all(|id| {
            items
                .item(&ItemKey::new(key.collection, id.as_str()))
                .and_then(|v| target(&v))
                .is_none_or(|theirs| theirs != mine)
        })
}

/// The other items of `key`'s collection that name the same principal (candidates for sharing
/// its grant).
pub fn siblings(key: &ItemKey, value: &Value, items: &dyn ItemLookup) -> Vec<String> {
    let Some(principal) = str_field(value, "principalId") else {
        return Vec::new();
    };
    items
        .referencing(&principal.to_ascii_lowercase(), key.collection)
        .into_iter()
        .filter(|id| *id != key.id)
        .collect()
}

pub fn service_principal(id: &str, sp: &Value, options: &ProjectionOptions) -> Vec<Record> {
    let Some(resource_type) = principal::service_principal_type(sp) else {
        return Vec::new();
    };
    if resource_type == MANAGED_IDENTITY && options.external_principals {
        return Vec::new();
    }
    let mut profile = Profile::default();
    profile
        .string("id", id)
        .string_from("appId", sp, "appId")
        .string_from("displayName", sp, "displayName")
        .string_from("servicePrincipalType", sp, "servicePrincipalType")
        .bool_from("accountEnabled", sp, "accountEnabled");
    let name = display_name(sp, &["displayName", "appId"], id);
    let rid = resource_id(resource_type, id);
    let link = build::portal_link(
        options,
        &format!(
            "view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/Overview/objectId/{id}/appId/{}",
            str_field(sp, "appId").unwrap_or_default()
        ),
    );
    if resource_type == MANAGED_IDENTITY {
        let status = match sp.get("accountEnabled").and_then(Value::as_bool) {
            Some(false) => UserStatus::Disabled,
            Some(true) => UserStatus::Enabled,
            None => UserStatus::Unspecified,
        };
        let trait_ = proto::UserTrait {
            status: Some(proto::Status {
                status: status as i32,
                details: String::new(),
            }),
            profile: Some(profile.build()),
            account_type: AccountType::Service as i32,
            login: str_field(sp, "appId").unwrap_or_default().to_string(),
            created_at: build::timestamp(sp, "createdDateTime"),
            ..Default::default()
        };
        return vec![Record::Resource(build::resource(ResourceParts {
            id: rid,
            parent: None,
            display_name: name,
            description: String::new(),
            trait_annotation: proto::any(&trait_),
            children: Vec::new(),
            link: Some(link),
        }))];
    }
    let resource = build::resource(ResourceParts {
        id: rid.clone(),
        parent: None,
        display_name: name.clone(),
        description: str_field(sp, "description").unwrap_or_default().to_string(),
        trait_annotation: proto::any(&proto::AppTrait {
            help_url: str_field(sp, "homepage").unwrap_or_default().to_string(),
            profile: Some(profile.build()),
        }),
        children: Vec::new(),
        link: Some(link),
    });
    let mut records = vec![Record::Resource(resource)];
    records.push(Record::Entitlement(build::entitlement(EntitlementParts {
        resource: build::resource_ref(&rid, &name),
        slug: "owners".to_string(),
        display_name: format!("{name} Owner"),
        description: format!("Owner of the {name} enterprise application"),
        purpose: Purpose::Ownership,
        grantable_to: &OWNER_TYPES,
    })));
    for (role_id, role_name) in app_roles(sp) {
        records.push(Record::Entitlement(build::entitlement(EntitlementParts {
            resource: build::resource_ref(&rid, &name),
            slug: format!("assignment:{role_id}"),
            display_name: format!("{name} {role_name}"),
            description: format!("Assigned the {role_name} app role of {name}"),
            purpose: Purpose::Assignment,
            grantable_to: &PRINCIPAL_TYPES,
        })));
    }
    records
}

/// Every app role of a service principal (id, display name), plus the default role, by id.
fn app_roles(sp: &Value) -> std::collections::BTreeMap<String, String> {
    let mut roles = std::collections::BTreeMap::new();
    roles.insert(DEFAULT_APP_ROLE.to_string(), "Default Access".to_string());
    for role in sp
        .get("appRoles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = str_field(role, "id") {
            let name = display_name(role, &["displayName", "value"], id);
            roles.insert(id.to_ascii_lowercase(), name);
        }
    }
    roles
}

/// The enterprise application a service principal id is, if emitted as one.
fn enterprise_application(sp_id: &str, items: &dyn ItemLookup) -> Option<Value> {
    items
        .item(&ItemKey::new(Collection::ServicePrincipal, sp_id))
        .filter(|sp| principal::service_principal_type(sp) == Some(ENTERPRISE_APPLICATION))
}

/// The owner grant a ServicePrincipalOwner item (`<spId>/<ownerId>`) stands for.
pub fn service_principal_owner(
    key: &ItemKey,
    value: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    let Some((sp_id, owner_id)) = key.id.split_once('/') else {
        return Vec::new();
    };
    if enterprise_application(sp_id, items).is_none() {
        return Vec::new();
    }
    let Some(principal) =
        Kind::from_link(value).and_then(|kind| principal::resolve(kind, owner_id, items, options))
    else {
        return Vec::new();
    };
    vec![Record::Grant(build::grant(
        &resource_id(ENTERPRISE_APPLICATION, sp_id),
        "owners",
        &principal,
        None,
    ))]
}

/// The grant an `appRoleAssignedTo` item (`<resourceSpId>/<assignmentId>`) stands for: on the
/// app role's entitlement, if the application defines that role.
pub fn app_role_assignment(
    key: &ItemKey,
    value: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    let Some((sp_id, _)) = key.id.split_once('/') else {
        return Vec::new();
    };
    let Some(sp) = enterprise_application(sp_id, items) else {
        return Vec::new();
    };
    let (Some(role_id), Some(principal_id)) = (
        str_field(value, "appRoleId"),
        str_field(value, "principalId"),
    ) else {
        return Vec::new();
    };
    let role_id = role_id.to_ascii_lowercase();
    if !app_roles(&sp).contains_key(&role_id) {
        return Vec::new();
    }
    // Siblings name the same principal, in any application: the target is (application, role).
    let target = |v: &Value| -> Option<(String, String)> {
        Some((
            str_field(v, "resourceId")?.to_ascii_lowercase(),
            str_field(v, "appRoleId")?.to_ascii_lowercase(),
        ))
    };
    if !is_leader(key, value, items, target) {
        return Vec::new();
    }
    let Some(principal) = Kind::from_principal_type(str_field(value, "principalType"))
        .and_then(|kind| principal::resolve(kind, principal_id, items, options))
    else {
        return Vec::new();
    };
    vec![Record::Grant(build::grant(
        &resource_id(ENTERPRISE_APPLICATION, sp_id),
        &format!("assignment:{role_id}"),
        &principal,
        None,
    ))]
}

pub fn directory_role(
    id: &str,
    role: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    let mut profile = Profile::default();
    profile
        .string("id", id)
        .string_from("displayName", role, "displayName")
        .string_from("description", role, "description")
        .string_from("templateId", role, "templateId")
        .bool_from("isBuiltIn", role, "isBuiltIn")
        .bool_from("isEnabled", role, "isEnabled");
    let name = display_name(role, &["displayName"], id);
    let rid = resource_id(DIRECTORY_ROLE, id);
    let resource = build::resource(ResourceParts {
        id: rid.clone(),
        parent: tenant_id(items).map(|t| resource_id(TENANT, &t)),
        display_name: name.clone(),
        description: str_field(role, "description")
            .unwrap_or_default()
            .to_string(),
        trait_annotation: proto::any(&proto::RoleTrait {
            profile: Some(profile.build()),
        }),
        children: Vec::new(),
        link: Some(build::portal_link(
            options,
            &format!("view/Microsoft_AAD_IAM/RoleMenuBlade/~/RoleMembers/objectId/{id}"),
        )),
    });
    let mut records = vec![Record::Resource(resource)];
    let mut slugs = vec![("assigned", "Assigned")];
    if !options.skip_p2 {
        slugs.push(("eligible", "Eligible"));
    }
    for (slug, what) in slugs {
        records.push(Record::Entitlement(build::entitlement(EntitlementParts {
            resource: build::resource_ref(&rid, &name),
            slug: slug.to_string(),
            display_name: format!("{name} {what}"),
            description: format!("{what} the {name} directory role"),
            purpose: Purpose::Assignment,
            grantable_to: &PRINCIPAL_TYPES,
        })));
    }
    records
}

/// The grant of a directory role assignment or eligibility. A principal holding one role at
/// several directory scopes gets one grant (its id has no room for the scope), owned by the
/// smallest item id, whose metadata lists the scopes.
pub fn directory_role_grant(
    key: &ItemKey,
    value: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    let slug = if key.collection == Collection::DirectoryRoleEligibility {
        if options.skip_p2 {
            return Vec::new();
        }
        "eligible"
    } else {
        "assigned"
    };
    let (Some(role_id), Some(principal_id)) = (
        str_field(value, "roleDefinitionId"),
        str_field(value, "principalId"),
    ) else {
        return Vec::new();
    };
    if items
        .item(&ItemKey::new(Collection::DirectoryRoleDefinition, role_id))
        .is_none()
    {
        return Vec::new();
    }
    let role_of = |v: &Value| str_field(v, "roleDefinitionId").map(str::to_string);
    if !is_leader(key, value, items, role_of) {
        return Vec::new();
    }
    let Some(principal) = principal::resolve(principal_kind(value), principal_id, items, options)
    else {
        return Vec::new();
    };
    let mut scopes: Vec<String> = siblings(key, value, items)
        .iter()
        .filter_map(|id| items.item(&ItemKey::new(key.collection, id.as_str())))
        .filter(|v| role_of(v).as_deref() == Some(role_id))
        .chain(std::iter::once(value.clone()))
        .map(|v| str_field(&v, "directoryScopeId").unwrap_or("/").to_string())
        .collect();
    scopes.sort();
    scopes.dedup();
    let metadata = match scopes.as_slice() {
        [only] if only == "/" => None,
        [only] => Some(Profile::default().string("directoryScopeId", only).build()),
        many => Some(Profile::default().list("directoryScopeIds", many).build()),
    };
    vec![Record::Grant(build::grant(
        &resource_id(DIRECTORY_ROLE, role_id),
        slug,
        &principal,
        metadata,
    ))]
}
