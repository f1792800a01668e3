//! The Azure Resource Manager side of the projection: management groups, subscriptions, resource
//! groups, storage accounts, containers, Azure resources with role assignments, role definitions,
//! and the `role:` / `eligible:` entitlements and grants at each scope.
//!
//! ARM ids and scopes compare case-insensitively; resource ids keep ARM's spelling: the stored
//! item's key for scopes that are items, the spelling of the first assignment (by id) at the scope
//! for an `azure_resource`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::item::{Collection, ItemKey};
use crate::model::proto::{self, Purpose};
use crate::model::record::Record;

use super::build::{
    self, AZURE_RESOURCE, CONTAINER, ENTERPRISE_APPLICATION, EntitlementParts, GROUP,
    MANAGED_IDENTITY, MANAGEMENT_GROUP, Profile, RESOURCE_GROUP, ROLE, ResourceParts,
    STORAGE_ACCOUNT, SUBSCRIPTION, TENANT, USER, prop, resource_id, str_field,
};
use super::entra::tenant_id;
use super::principal::{self, Kind};
use super::{ItemLookup, ProjectionOptions};

const PRINCIPAL_TYPES: [&str; 4] = [USER, GROUP, ENTERPRISE_APPLICATION, MANAGED_IDENTITY];

/// Where in the ARM hierarchy a scope is, with the names as the scope string spells them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeKind<'a> {
    Tenant,
    ManagementGroup(&'a str),
    Subscription(&'a str),
    ResourceGroup(&'a str, &'a str),
    StorageAccount(&'a str, &'a str, &'a str),
    Container(&'a str, &'a str, &'a str, &'a str),
    /// Any other resource in a resource group; the tail is what follows `/providers/`.
    AzureResource(&'a str, &'a str, &'a str),
}

/// Classifies an ARM scope (`/`, `/subscriptions/<sub>/resourceGroups/<rg>`, ...). None for
/// scopes the data model has no resource for (a subscription-level provider resource, garbage).
pub fn classify(scope: &str) -> Option<ScopeKind<'_>> {
    let trimmed = scope.trim_end_matches('/');
    if trimmed.is_empty() {
        return Some(ScopeKind::Tenant);
    }
    let rest = trimmed.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    let is = |i: usize, word: &str| parts.get(i).is_some_and(|p| p.eq_ignore_ascii_case(word));
    if parts.len() == 4
        && is(0, "providers")
        && is(1, "Microsoft.Management")
        && is(2, "managementGroups")
    {
        return Some(ScopeKind::ManagementGroup(parts[3]));
    }
    if !is(0, "subscriptions") || parts.len() < 2 || parts[1].is_empty() {
        return None;
    }
    let sub = parts[1];
    match parts.len() {
        2 => return Some(ScopeKind::Subscription(sub)),
        4 if is(2, "resourceGroups") => return Some(ScopeKind::ResourceGroup(sub, parts[3])),
        _ => {}
    }
    if !is(2, "resourceGroups") || !is(4, "providers") || parts.len() < 8 {
        return None;
    }
    let rg = parts[3];
    if is(5, "Microsoft.Storage") && is(6, "storageAccounts") {
        if parts.len() == 8 {
            return Some(ScopeKind::StorageAccount(sub, rg, parts[7]));
        }
        if parts.len() == 12 && is(8, "blobServices") && is(9, "default") && is(10, "containers") {
            return Some(ScopeKind::Container(sub, rg, parts[7], parts[11]));
        }
    }
    // `<tail>` starts after "/subscriptions/<sub>/resourceGroups/<rg>/providers/".
    let offset = 1 + parts[..5].iter().map(|p| p.len() + 1).sum::<usize>();
    Some(ScopeKind::AzureResource(sub, rg, &trimmed[offset..]))
}

/// The scope of an ARM item as its key names it, lower-cased.
pub fn item_scope(key: &ItemKey) -> Option<String> {
    let parts: Vec<&str> = key.id.split(':').collect();
    let scope = match (key.collection, parts.as_slice()) {
        (Collection::ManagementGroup, _) => {
            format!(
                "/providers/microsoft.management/managementgroups/{}",
                key.id
            )
        }
        (Collection::Subscription, _) => format!("/subscriptions/{}", key.id),
        (Collection::ResourceGroup, [sub, rg]) => {
            format!("/subscriptions/{sub}/resourcegroups/{rg}")
        }
        (Collection::StorageAccount, [sub, rg, account]) => format!(
            "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.storage/storageaccounts/{account}"
        ),
        (Collection::Container, [sub, rg, account, container]) => format!(
            "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.storage/storageaccounts/{account}/blobservices/default/containers/{container}"
        ),
        _ => return None,
    };
    Some(scope.to_ascii_lowercase())
}

/// The scope an assignment or eligibility is attributed to (its own `properties.scope`),
/// lower-cased; `/` for the tenant root.
pub fn assignment_scope(value: &Value) -> Option<String> {
    let scope = value.get("properties")?.get("scope")?.as_str()?;
    Some(normalize_scope(scope))
}

fn normalize_scope(scope: &str) -> String {
    let trimmed = scope.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_ascii_lowercase()
    }
}

/// The role definition GUID an assignment names (last segment of `roleDefinitionId`), lower-cased.
pub fn assignment_role(value: &Value) -> Option<String> {
    let id = prop(value, "roleDefinitionId")?;
    Some(id.rsplit('/').next()?.to_ascii_lowercase())
}

/// The emitted resource a scope stands for.
pub struct ScopeResource {
    pub id: proto::ResourceId,
    pub display_name: String,
    /// The subscription the scope lies in, if any (where its role definitions come from).
    pub subscription: Option<String>,
    /// Set for an `azure_resource`, which the scope origin itself emits.
    pub azure_resource: Option<proto::Resource>,
}

/// An item of `collection` whose id equals `wanted` ignoring case, with its spelling.
fn find_ci(
    items: &dyn ItemLookup,
    collection: Collection,
    prefix: &str,
    wanted: &str,
) -> Option<(String, Value)> {
    if let Some(v) = items.item(&ItemKey::new(collection, wanted)) {
        return Some((wanted.to_string(), v));
    }
    let id = items
        .ids(collection, prefix)
        .into_iter()
        .find(|id| id.eq_ignore_ascii_case(wanted))?;
    let value = items.item(&ItemKey::new(collection, id.as_str()))?;
    Some((id, value))
}

/// The resource a (lower-cased) scope stands for, if it is emitted.
pub fn resolve_scope(
    scope: &str,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Option<ScopeResource> {
    let named = |resource_type: &str, id: String, name: String, sub: Option<&str>| ScopeResource {
        id: resource_id(resource_type, &id),
        display_name: name,
        subscription: sub.map(str::to_ascii_lowercase),
        azure_resource: None,
    };
    match classify(scope)? {
        ScopeKind::Tenant => {
            let tenant = tenant_id(items)?;
            let org = items.item(&ItemKey::new(Collection::Organization, tenant.as_str()))?;
            let name = str_field(&org, "displayName")
                .unwrap_or(&tenant)
                .to_string();
            Some(named(TENANT, tenant, name, None))
        }
        ScopeKind::ManagementGroup(name) => {
            let (id, mg) = find_ci(items, Collection::ManagementGroup, "", name)?;
            let display = prop(&mg, "displayName").unwrap_or(&id).to_string();
            Some(named(MANAGEMENT_GROUP, id, display, None))
        }
        ScopeKind::Subscription(sub) => {
            let (id, s) = find_ci(items, Collection::Subscription, "", sub)?;
            let display = str_field(&s, "displayName").unwrap_or(&id).to_string();
            Some(named(SUBSCRIPTION, id, display, Some(sub)))
        }
        ScopeKind::ResourceGroup(sub, rg) => {
            let (id, _) = find_ci(
                items,
                Collection::ResourceGroup,
                &format!("{}:", sub.to_ascii_lowercase()),
                &format!("{}:{rg}", sub.to_ascii_lowercase()),
            )?;
            let display = id.split(':').nth(1).unwrap_or(rg).to_string();
            Some(named(RESOURCE_GROUP, id, display, Some(sub)))
        }
        ScopeKind::StorageAccount(sub, rg, account) => {
            let (id, _) = find_ci(
                items,
                Collection::StorageAccount,
                &format!("{}:", sub.to_ascii_lowercase()),
                &format!("{}:{rg}:{account}", sub.to_ascii_lowercase()),
            )?;
            let display = id.rsplit(':').next().unwrap_or(account).to_string();
            Some(named(STORAGE_ACCOUNT, id, display, Some(sub)))
        }
        ScopeKind::Container(sub, rg, account, container) => {
            if options.skip_storage_containers {
                return None;
            }
            let (id, _) = find_ci(
                items,
                Collection::Container,
                &format!("{}:", sub.to_ascii_lowercase()),
                &format!("{}:{rg}:{account}:{container}", sub.to_ascii_lowercase()),
            )?;
            let display = id.rsplit(':').next().unwrap_or(container).to_string();
            Some(named(CONTAINER, id, display, Some(sub)))
        }
        ScopeKind::AzureResource(..) => azure_resource(scope, items, options),
    }
}

/// The `azure_resource` a scope with assignments stands for. Its spelling comes from the first
/// assignment (or eligibility) at the scope, its resource group's from the resource group item.
fn azure_resource(
    scope: &str,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Option<ScopeResource> {
    let mut collections = vec![Collection::RoleAssignment];
    if !options.skip_p2 {
        collections.push(Collection::RoleEligibility);
    }
    let spelled = collections.into_iter().find_map(|c| {
        items.referencing(scope, c).into_iter().find_map(|id| {
            let v = items.item(&ItemKey::new(c, id.as_str()))?;
            prop(&v, "scope").map(|s| s.trim_end_matches('/').to_string())
        })
    })?;
    let ScopeKind::AzureResource(sub, rg, tail) = classify(&spelled)? else {
        return None;
    };
    let sub = sub.to_ascii_lowercase();
    let rg = items
        .ids(Collection::ResourceGroup, &format!("{sub}:"))
        .into_iter()
        .find_map(|id| {
            let name = id.split_once(':')?.1;
            name.eq_ignore_ascii_case(rg).then(|| name.to_string())
        })
        .unwrap_or_else(|| rg.to_string());
    let id = format!("{sub}:{rg}:{tail}");
    let display = tail.rsplit('/').next().unwrap_or(tail).to_string();
    let mut profile = Profile::default();
    profile
        .string("id", &spelled)
        .string("resourceType", &resource_type_of(tail));
    let resource = build::resource(ResourceParts {
        id: resource_id(AZURE_RESOURCE, &id),
        parent: Some(resource_id(RESOURCE_GROUP, &format!("{sub}:{rg}"))),
        display_name: display.clone(),
        description: String::new(),
        trait_annotation: proto::any(&proto::AppTrait {
            help_url: String::new(),
            profile: Some(profile.build()),
        }),
        children: Vec::new(),
        link: Some(build::arm_link(options, &spelled)),
    });
    Some(ScopeResource {
        id: resource_id(AZURE_RESOURCE, &id),
        display_name: display,
        subscription: Some(sub),
        azure_resource: Some(resource),
    })
}

/// `Microsoft.KeyVault/vaults` from `Microsoft.KeyVault/vaults/kv-prod` (every other segment
/// after the namespace is a type, the ones between are names).
fn resource_type_of(tail: &str) -> String {
    let parts: Vec<&str> = tail.split('/').collect();
    let mut out = vec![parts[0]];
    out.extend(parts.iter().skip(1).step_by(2));
    out.join("/")
}

/// A role's name: from the subscription's own definition when the scope lies in one, else from
/// any stored definition of that GUID.
fn role_name(guid: &str, subscription: Option<&str>, items: &dyn ItemLookup) -> Option<String> {
    let own = subscription.and_then(|sub| {
        items.item(&ItemKey::new(
            Collection::RoleDefinition,
            format!("{sub}:{guid}"),
        ))
    });
    let definition = own.or_else(|| {
        items
            .referencing(guid, Collection::RoleDefinition)
            .into_iter()
            .find_map(|id| items.item(&ItemKey::new(Collection::RoleDefinition, id)))
    })?;
    prop(&definition, "roleName").map(str::to_string)
}

/// The `role:` and `eligible:` entitlements of a scope, and its `azure_resource` if it is one.
pub fn scope(scope: &str, items: &dyn ItemLookup, options: &ProjectionOptions) -> Vec<Record> {
    let Some(target) = resolve_scope(scope, items, options) else {
        return Vec::new();
    };
    // role GUID -> has an eligibility here
    let mut roles: BTreeMap<String, bool> = BTreeMap::new();
    for id in items.referencing(scope, Collection::RoleAssignment) {
        if let Some(guid) = items
            .item(&ItemKey::new(Collection::RoleAssignment, id))
            .and_then(|v| assignment_role(&v))
        {
            roles.entry(guid).or_insert(false);
        }
    }
    if !options.skip_p2 {
        for id in items.referencing(scope, Collection::RoleEligibility) {
            if let Some(guid) = items
                .item(&ItemKey::new(Collection::RoleEligibility, id))
                .and_then(|v| assignment_role(&v))
            {
                roles.insert(guid, true);
            }
        }
    }
    let mut records = Vec::new();
    if let Some(resource) = target.azure_resource.clone() {
        if roles.is_empty() {
            return Vec::new();
        }
        records.push(Record::Resource(resource));
    }
    if target.id.resource_type == SUBSCRIPTION && !options.skip_unused_roles {
        let prefix = format!("{}:", target.id.resource);
        for id in items.ids(Collection::RoleDefinition, &prefix) {
            let here = items
                .item(&ItemKey::new(Collection::RoleDefinition, id.as_str()))
                .is_none_or(|definition| {
                    assignable_at_subscription(&definition, &target.id.resource)
                });
            if !here {
                continue;
            }
            if let Some(guid) = id.strip_prefix(&prefix) {
                roles.entry(guid.to_ascii_lowercase()).or_insert(false);
            }
        }
    }
    let sub = target.subscription.as_deref();
    let resource = build::resource_ref(&target.id, &target.display_name);
    let where_ = format!(
        "{} {}",
        build::resource_type(&target.id.resource_type).display_name,
        target.display_name
    );
    for (guid, eligible) in roles {
        let name = role_name(&guid, sub, items).unwrap_or_else(|| guid.clone());
        records.push(Record::Entitlement(build::entitlement(EntitlementParts {
            resource: resource.clone(),
            slug: format!("role:{guid}"),
            display_name: name.clone(),
            description: format!("{name} role on {where_}"),
            purpose: Purpose::Assignment,
            grantable_to: &PRINCIPAL_TYPES,
        })));
        if eligible {
            records.push(Record::Entitlement(build::entitlement(EntitlementParts {
                resource: resource.clone(),
                slug: format!("eligible:{guid}"),
                display_name: format!("{name} (eligible)"),
                description: format!("Eligible for the {name} role on {where_}"),
                purpose: Purpose::Assignment,
                grantable_to: &PRINCIPAL_TYPES,
            })));
        }
    }
    records
}

/// Whether a role definition listed at a subscription may be assigned at the subscription
/// itself (an assignable scope at the root, a management group, or the subscription): the list
/// asks `atScopeAndBelow()`, so it also holds custom roles assignable only below it (resource
/// groups, resources). A definition that names no scopes counts as assignable.
fn assignable_at_subscription(definition: &Value, subscription: &str) -> bool {
    let Some(scopes) = definition
        .get("properties")
        .and_then(|p| p.get("assignableScopes"))
        .and_then(Value::as_array)
    else {
        return true;
    };
    let itself = format!("/subscriptions/{}", subscription.to_ascii_lowercase());
    scopes.iter().filter_map(Value::as_str).any(|scope| {
        let scope = scope.trim_end_matches('/').to_ascii_lowercase();
        scope.is_empty() || scope.starts_with("/providers/microsoft.management/") || scope == itself
    })
}

/// The grant of an Azure role assignment (`role:`) or eligibility (`eligible:`), attributed to
/// the assignment's own scope. Should two items stand for one grant (eligibility instances of
/// one principal, role and scope), the one with the smallest id owns it.
pub fn role_grant(
    key: &ItemKey,
    value: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    let eligible = key.collection == Collection::RoleEligibility;
    if eligible && options.skip_p2 {
        return Vec::new();
    }
    let (Some(scope), Some(guid), Some(principal_id)) = (
        assignment_scope(value),
        assignment_role(value),
        prop(value, "principalId"),
    ) else {
        return Vec::new();
    };
    let Some(target) = resolve_scope(&scope, items, options) else {
        return Vec::new();
    };
    let principal_lower = principal_id.to_ascii_lowercase();
    let same_grant = twins(key, &scope, &principal_lower, items)
        .into_iter()
        .filter(|id| id.as_str() < key.id.as_str())
        .filter_map(|id| items.item(&ItemKey::new(key.collection, id)))
        .any(|v| assignment_role(&v).as_deref() == Some(guid.as_str()));
    if same_grant {
        return Vec::new();
    }
    let Some(principal) = Kind::from_principal_type(prop(value, "principalType"))
        .and_then(|kind| principal::resolve(kind, principal_id, items, options))
    else {
        return Vec::new();
    };
    let slug = if eligible {
        format!("eligible:{guid}")
    } else {
        format!("role:{guid}")
    };
    vec![Record::Grant(build::grant(
        &target.id, &slug, &principal, None,
    ))]
}

/// The other items of `key`'s collection naming the same principal at the same scope.
pub fn twins(key: &ItemKey, scope: &str, principal: &str, items: &dyn ItemLookup) -> Vec<String> {
    let at_scope: std::collections::BTreeSet<String> = items
        .referencing(scope, key.collection)
        .into_iter()
        .collect();
    items
        .referencing(principal, key.collection)
        .into_iter()
        .filter(|id| *id != key.id && at_scope.contains(id))
        .collect()
}

/// The management group a management group or subscription item names as its parent, if that
/// group is stored ("readable").
fn parent_group(candidates: Vec<String>, items: &dyn ItemLookup) -> Option<String> {
    candidates
        .into_iter()
        .find_map(|name| find_ci(items, Collection::ManagementGroup, "", &name).map(|(id, _)| id))
}

/// The parent name a management group item gives (`properties.details.parent` of a
/// `managementGroups` GET, or `properties.parent` of an `entities` listing).
pub fn management_group_parent(mg: &Value) -> Option<String> {
    let props = mg.get("properties")?;
    let parent = props
        .get("details")
        .and_then(|d| d.get("parent"))
        .or_else(|| props.get("parent"))?;
    if let Some(name) = str_field(parent, "name") {
        return Some(name.to_string());
    }
    str_field(parent, "id")?
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The subscriptions a management group item lists among its `children`.
pub fn management_group_subscriptions(mg: &Value) -> Vec<String> {
    mg.get("properties")
        .and_then(|p| p.get("children"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| str_field(c, "type").is_some_and(|t| t.eq_ignore_ascii_case("/subscriptions")))
        .filter_map(|c| str_field(c, "name").map(str::to_ascii_lowercase))
        .collect()
}

fn tenant_parent(items: &dyn ItemLookup) -> Option<proto::ResourceId> {
    tenant_id(items).map(|t| resource_id(TENANT, &t))
}

pub fn management_group(
    id: &str,
    mg: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    let parent = management_group_parent(mg)
        .filter(|p| !p.eq_ignore_ascii_case(id))
        .and_then(|p| parent_group(vec![p], items))
        .map(|p| resource_id(MANAGEMENT_GROUP, &p))
        .or_else(|| tenant_parent(items));
    let mut profile = Profile::default();
    profile.string("name", id).string_from("id", mg, "id");
    if let Some(display) = prop(mg, "displayName") {
        profile.string("displayName", display);
    }
    let resource = build::resource(ResourceParts {
        id: resource_id(MANAGEMENT_GROUP, id),
        parent,
        display_name: prop(mg, "displayName").unwrap_or(id).to_string(),
        description: String::new(),
        trait_annotation: proto::any(&proto::GroupTrait {
            profile: Some(profile.build()),
        }),
        children: vec![MANAGEMENT_GROUP, SUBSCRIPTION],
        link: Some(build::arm_link(
            options,
            &format!("/providers/Microsoft.Management/managementGroups/{id}"),
        )),
    });
    vec![Record::Resource(resource)]
}

pub fn subscription(
    id: &str,
    sub: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    // The management group that lists the subscription among its children (a `managementGroups`
    // GET with `$expand=children`); a subscription item itself does not name its group.
    let candidates = items.referencing(&id.to_ascii_lowercase(), Collection::ManagementGroup);
    let parent = parent_group(candidates, items)
        .map(|p| resource_id(MANAGEMENT_GROUP, &p))
        .or_else(|| tenant_parent(items));
    let mut profile = Profile::default();
    profile
        .string("subscriptionId", id)
        .string_from("displayName", sub, "displayName")
        .string_from("state", sub, "state")
        .string_from("tenantId", sub, "tenantId");
    let resource = build::resource(ResourceParts {
        id: resource_id(SUBSCRIPTION, id),
        parent,
        display_name: str_field(sub, "displayName").unwrap_or(id).to_string(),
        description: String::new(),
        trait_annotation: proto::any(&proto::AppTrait {
            help_url: String::new(),
            profile: Some(profile.build()),
        }),
        children: vec![RESOURCE_GROUP],
        link: Some(build::arm_link(options, &format!("/subscriptions/{id}"))),
    });
    vec![Record::Resource(resource)]
}

/// Resource groups, storage accounts and containers: resources named by their key.
pub fn scope_item(key: &ItemKey, value: &Value, options: &ProjectionOptions) -> Vec<Record> {
    let parts: Vec<&str> = key.id.split(':').collect();
    let (resource_type, parent, children, trait_annotation): (_, _, Vec<&'static str>, _) =
        match (key.collection, parts.as_slice()) {
            (Collection::ResourceGroup, [sub, _]) => {
                let mut profile = Profile::default();
                profile
                    .string_from("id", value, "id")
                    .string_from("location", value, "location");
                (
                    RESOURCE_GROUP,
                    resource_id(SUBSCRIPTION, sub),
                    vec![STORAGE_ACCOUNT, AZURE_RESOURCE],
                    proto::any(&proto::GroupTrait {
                        profile: Some(profile.build()),
                    }),
                )
            }
            (Collection::StorageAccount, [sub, rg, _]) => {
                let mut profile = Profile::default();
                profile
                    .string_from("id", value, "id")
                    .string_from("location", value, "location")
                    .string_from("kind", value, "kind");
                if let Some(sku) = value.get("sku") {
                    profile.string_from("skuName", sku, "name");
                }
                let children = if options.skip_storage_containers {
                    Vec::new()
                } else {
                    vec![CONTAINER]
                };
                (
                    STORAGE_ACCOUNT,
                    resource_id(RESOURCE_GROUP, &format!("{sub}:{rg}")),
                    children,
                    app_trait(profile),
                )
            }
            (Collection::Container, [sub, rg, account, _]) if !options.skip_storage_containers => {
                let mut profile = Profile::default();
                profile.string_from("id", value, "id");
                if let Some(access) = prop(value, "publicAccess") {
                    profile.string("publicAccess", access);
                }
                (
                    CONTAINER,
                    resource_id(STORAGE_ACCOUNT, &format!("{sub}:{rg}:{account}")),
                    Vec::new(),
                    app_trait(profile),
                )
            }
            _ => return Vec::new(),
        };
    let name = parts.last().copied().unwrap_or_default();
    let link = str_field(value, "id").map(|arm_id| build::arm_link(options, arm_id));
    vec![Record::Resource(build::resource(ResourceParts {
        id: resource_id(resource_type, &key.id),
        parent: Some(parent),
        display_name: str_field(value, "name").unwrap_or(name).to_string(),
        description: String::new(),
        trait_annotation,
        children,
        link,
    }))]
}

fn app_trait(mut profile: Profile) -> proto::Any {
    proto::any(&proto::AppTrait {
        help_url: String::new(),
        profile: Some(profile.build()),
    })
}

/// The `role` resource of an ARM role definition GUID, from its first stored definition.
pub fn role(guid: &str, items: &dyn ItemLookup, options: &ProjectionOptions) -> Vec<Record> {
    // In use = assigned (or, with P2, made eligible) at a scope that is emitted.
    let in_use = || {
        let collections: &[Collection] = if options.skip_p2 {
            &[Collection::RoleAssignment]
        } else {
            &[Collection::RoleAssignment, Collection::RoleEligibility]
        };
        collections.iter().any(|&c| {
            items.referencing(guid, c).into_iter().any(|id| {
                items
                    .item(&ItemKey::new(c, id))
                    .and_then(|v| assignment_scope(&v))
                    .and_then(|scope| {
                        classify(&scope).map(|kind| {
                            !(options.skip_storage_containers
                                && matches!(kind, ScopeKind::Container(..)))
                        })
                    })
                    .unwrap_or(false)
            })
        })
    };
    if options.skip_unused_roles && !in_use() {
        return Vec::new();
    }
    let Some(definition) = items
        .referencing(guid, Collection::RoleDefinition)
        .into_iter()
        .find_map(|id| items.item(&ItemKey::new(Collection::RoleDefinition, id)))
    else {
        return Vec::new();
    };
    let name = prop(&definition, "roleName").unwrap_or(guid).to_string();
    let mut profile = Profile::default();
    profile.string("roleId", guid).string("roleName", &name);
    if let Some(t) = prop(&definition, "type") {
        profile.string("type", t);
    }
    vec![Record::Resource(build::resource(ResourceParts {
        id: resource_id(ROLE, guid),
        parent: tenant_parent(items),
        display_name: name,
        description: prop(&definition, "description")
            .unwrap_or_default()
            .to_string(),
        trait_annotation: proto::any(&proto::RoleTrait {
            profile: Some(profile.build()),
        }),
        children: Vec::new(),
        link: Some(build::arm_link(
            options,
            &format!("/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
        )),
    }))]
}
