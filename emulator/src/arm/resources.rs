//! ARM's resource containers and resources: subscriptions, tenants, management groups and the
//! entities hierarchy, resource groups, storage accounts, blob containers and generic resources.

use serde_json::{Value, json};

use super::{ArmContext, ArmError, ArmReply, ArmRequest, PAGE_SIZE, page, subscription_id};
use crate::tenant::{
    ArmResource, ManagementGroup, ResourceGroup, StorageAccount, Subscription, Tenant,
    container_scope, derived_uuid, management_group_scope, resource_group_scope,
    storage_account_scope, subscription_scope,
};

fn subscription_json(tenant: &Tenant, s: &Subscription) -> Value {
    json!({
        "id": subscription_scope(s.id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": s.id.to_string(),
        "tenantId": tenant.tenant_id().to_string(),
        "displayName": s.display_name,
        "state": s.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off"
        }
    })
}

pub fn list_subscriptions(ctx: &ArmContext, request: &ArmRequest) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let mut items: Vec<Value> = tenant
        .subscriptions
        .values()
        .map(|s| subscription_json(&tenant, s))
        .collect();
    let foreign = ctx.state.wire().foreign_subscriptions;
    items.extend((0..foreign).map(|n| delegated_subscription_json(&tenant, n)));
    page(ctx, request, items, PAGE_SIZE)
}

/// A subscription of another tenant that this one manages through Azure Lighthouse: the list
/// names the customer's tenant in `tenantId` and ours in `managedByTenants` (Subscriptions -
/// List, subscriptions.json 2022-12-01). Only the list shows it; nothing else about it is served.
fn delegated_subscription_json(tenant: &Tenant, n: usize) -> Value {
    let ours = tenant.tenant_id().to_string();
    let customer = derived_uuid(&[b"lighthouse-customer", ours.as_bytes()]);
    let id = derived_uuid(&[
        b"lighthouse-subscription",
        ours.as_bytes(),
        &n.to_le_bytes(),
    ]);
    json!({
        "id": subscription_scope(id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [{"tenantId": ours}],
        "subscriptionId": id.to_string(),
        "tenantId": customer.to_string(),
        "displayName": format!("Customer subscription {n}"),
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off"
        }
    })
}

pub fn get_subscription(ctx: &ArmContext, id: &str) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let sid = subscription_id(&tenant, id)?;
    let s = tenant.subscriptions.get(&sid).ok_or_else(|| {
        ArmError::not_found(
            "SubscriptionNotFound",
            format!("The subscription '{id}' could not be found."),
        )
    })?;
    Ok(ArmReply::ok(subscription_json(&tenant, s)))
}

pub fn list_tenants(ctx: &ArmContext, request: &ArmRequest) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let org = &tenant.organization;
    let item = json!({
        "id": format!("/tenants/{}", org.tenant_id),
        "tenantId": org.tenant_id.to_string(),
        "countryCode": "US",
        "displayName": org.display_name,
        "domains": org.verified_domains,
        "defaultDomain": org.verified_domains.first(),
        "tenantCategory": "Home",
        "tenantType": "AAD",
    });
    page(ctx, request, vec![item], PAGE_SIZE)
}

fn management_group_json(tenant: &Tenant, g: &ManagementGroup) -> Value {
    json!({
        "id": management_group_scope(&g.name),
        "type": "Microsoft.Management/managementGroups",
        "name": g.name,
        "properties": {
            "tenantId": tenant.tenant_id().to_string(),
            "displayName": g.display_name,
        }
    })
}

pub fn list_management_groups(
    ctx: &ArmContext,
    request: &ArmRequest,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let items = tenant
        .management_groups
        .values()
        .map(|g| management_group_json(&tenant, g))
        .collect();
    page(ctx, request, items, PAGE_SIZE)
}

fn find_management_group<'a>(
    tenant: &'a Tenant,
    name: &str,
) -> Result<&'a ManagementGroup, ArmError> {
    tenant
        .management_groups
        .values()
        .find(|g| g.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            ArmError::not_found("NotFound", format!("Management group '{name}' not found."))
        })
}

/// `GET .../managementGroups/{name}`, with `details.parent` and, on `$expand=children`, the
/// direct children.
/// Management Groups - Get. With `management_group_cache` on, a request without
/// `Cache-Control: no-cache` gets the answer as first served after the switch (a cache); a
/// `no-cache` one is read fresh and refreshes it.
pub fn get_management_group(
    ctx: &ArmContext,
    request: &ArmRequest,
    name: &str,
) -> Result<ArmReply, ArmError> {
    if !ctx.state.wire().management_group_cache {
        return read_management_group(ctx, request, name);
    }
    let mut query: Vec<_> = request.query.iter().collect();
    query.sort();
    let key = format!("{}?{query:?}", request.path.to_ascii_lowercase());
    let mut cache = ctx
        .management_group_cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !request.no_cache
        && let Some(cached) = cache.get(&key)
    {
        return Ok(ArmReply::ok(cached.clone()));
    }
    let reply = read_management_group(ctx, request, name)?;
    if let Some(body) = &reply.body {
        cache.insert(key, body.clone());
    }
    Ok(reply)
}

fn read_management_group(
    ctx: &ArmContext,
    request: &ArmRequest,
    name: &str,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let group = find_management_group(&tenant, name)?;
    let mut body = management_group_json(&tenant, group);
    let parent = group.parent.as_ref().and_then(|p| tenant.management_groups.get(p)).map(|p| {
        json!({"id": management_group_scope(&p.name), "name": p.name, "displayName": p.display_name})
    });
    body["properties"]["details"] = json!({
        "version": 1,
        "updatedTime": super::arm_time(tenant.organization.created),
        "updatedBy": tenant.client_app_id.to_string(),
        "parent": parent,
    });
    if request
        .param("$expand")
        .is_some_and(|e| e.eq_ignore_ascii_case("children"))
    {
        // `$recurse=true` (documented with `$expand=children`) nests every level below.
        let recurse = request
            .param("$recurse")
            .is_some_and(|r| r.eq_ignore_ascii_case("true"));
        body["properties"]["children"] =
            Value::Array(management_group_children(&tenant, &group.name, recurse));
    }
    Ok(ArmReply::ok(body))
}

/// The direct children of a management group (groups, then subscriptions), each group with its
/// own `children` when `recurse`.
fn management_group_children(tenant: &Tenant, name: &str, recurse: bool) -> Vec<Value> {
    let mut children: Vec<Value> = tenant
        .management_groups
        .values()
        .filter(|g| g.parent.as_deref() == Some(name))
        .map(|g| {
            let mut child = json!({"id": management_group_scope(&g.name), "type": "Microsoft.Management/managementGroups", "name": g.name, "displayName": g.display_name});
            if recurse {
                child["children"] = Value::Array(management_group_children(tenant, &g.name, true));
            }
            child
        })
        .collect();
    children.extend(tenant.subscriptions.values().filter(|s| s.management_group == name).map(|s| {
        json!({"id": subscription_scope(s.id), "type": "/subscriptions", "name": s.id.to_string(), "displayName": s.display_name})
    }));
    children
}

/// `POST /providers/Microsoft.Management/getEntities`: every management group and subscription
/// with its parent.
pub fn get_entities(ctx: &ArmContext, request: &ArmRequest) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let tenant_id = tenant.tenant_id().to_string();
    let chain = |start: Option<&str>| -> (Vec<String>, Vec<String>) {
        let Some(start) = start else {
            return (Vec::new(), Vec::new());
        };
        // ARM lists the chain from the root down to the direct parent.
        let mut names = tenant.management_group_ancestors(start);
        names.reverse();
        let display = names
            .iter()
            .map(|n| {
                tenant
                    .management_groups
                    .get(n)
                    .map(|g| g.display_name.clone())
                    .unwrap_or_default()
            })
            .collect();
        (names, display)
    };
    let mut items = Vec::new();
    for g in tenant.management_groups.values() {
        let (names, display) = chain(g.parent.as_deref());
        let child_groups = tenant
            .management_groups
            .values()
            .filter(|c| c.parent.as_deref() == Some(g.name.as_str()))
            .count();
        let child_subscriptions = tenant
            .subscriptions
            .values()
            .filter(|s| s.management_group == g.name)
            .count();
        let under = |start: &str| tenant.management_group_ancestors(start).contains(&g.name);
        let descendants = tenant
            .management_groups
            .values()
            .filter(|c| c.name != g.name && under(&c.name))
            .count()
            + tenant
                .subscriptions
                .values()
                .filter(|s| under(&s.management_group))
                .count();
        items.push(json!({
            "id": management_group_scope(&g.name),
            "type": "Microsoft.Management/managementGroups",
            "name": g.name,
            "properties": {
                "tenantId": tenant_id,
                "displayName": g.display_name,
                "parent": g.parent.as_ref().map(|p| json!({"id": management_group_scope(p)})),
                "permissions": "view",
                "inheritedPermissions": "view",
                "parentNameChain": names,
                "parentDisplayNameChain": display,
                "numberOfDescendants": descendants,
                "numberOfChildren": child_groups + child_subscriptions,
                "numberOfChildGroups": child_groups,
            }
        }));
    }
    for s in tenant.subscriptions.values() {
        let (names, display) = chain(Some(&s.management_group));
        items.push(json!({
            "id": subscription_scope(s.id),
            "type": "/subscriptions",
            "name": s.id.to_string(),
            "properties": {
                "tenantId": tenant_id,
                "displayName": s.display_name,
                "parent": {"id": management_group_scope(&s.management_group)},
                "permissions": "view",
                "inheritedPermissions": "view",
                "parentNameChain": names,
                "parentDisplayNameChain": display,
            }
        }));
    }
    let total = items.len();
    let mut reply = page(ctx, request, items, PAGE_SIZE)?;
    if let Some(body) = reply.body.as_mut() {
        body["count"] = json!(total);
    }
    Ok(reply)
}

fn resource_group_json(rg: &ResourceGroup) -> Value {
    json!({
        "id": resource_group_scope(rg.subscription, &rg.name),
        "name": rg.name,
        "type": "Microsoft.Resources/resourceGroups",
        "location": rg.location,
        "properties": {"provisioningState": "Succeeded"}
    })
}

pub fn list_resource_groups(
    ctx: &ArmContext,
    request: &ArmRequest,
    subscription: &str,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let sid = subscription_id(&tenant, subscription)?;
    let items = tenant
        .resource_groups
        .values()
        .filter(|rg| rg.subscription == sid)
        .map(resource_group_json)
        .collect();
    page(ctx, request, items, PAGE_SIZE)
}

fn rg_not_found(name: &str) -> ArmError {
    ArmError::not_found(
        "ResourceGroupNotFound",
        format!("Resource group '{name}' could not be found."),
    )
}

pub fn get_resource_group(
    ctx: &ArmContext,
    subscription: &str,
    name: &str,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let sid = subscription_id(&tenant, subscription)?;
    let rg = tenant
        .resource_group(sid, name)
        .ok_or_else(|| rg_not_found(name))?;
    Ok(ArmReply::ok(resource_group_json(rg)))
}

fn storage_account_json(a: &StorageAccount) -> Value {
    let tier = if a.sku.starts_with("Premium") {
        "Premium"
    } else {
        "Standard"
    };
    json!({
        "id": storage_account_scope(a),
        "name": a.name,
        "type": "Microsoft.Storage/storageAccounts",
        "location": a.location,
        "kind": a.kind,
        "sku": {"name": a.sku, "tier": tier},
        "tags": {},
        "properties": {
            "provisioningState": "Succeeded",
            "accessTier": "Hot",
            "allowBlobPublicAccess": false,
            "minimumTlsVersion": "TLS1_2",
            "supportsHttpsTrafficOnly": true,
            "primaryLocation": a.location,
            "statusOfPrimary": "available",
            "primaryEndpoints": {
                "blob": format!("https://{}.blob.core.windows.net/", a.name),
                "queue": format!("https://{}.queue.core.windows.net/", a.name),
                "table": format!("https://{}.table.core.windows.net/", a.name),
                "file": format!("https://{}.file.core.windows.net/", a.name),
            }
        }
    })
}

pub fn list_storage_accounts(
    ctx: &ArmContext,
    request: &ArmRequest,
    subscription: &str,
    resource_group: Option<&str>,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let sid = subscription_id(&tenant, subscription)?;
    if let Some(rg) = resource_group
        && tenant.resource_group(sid, rg).is_none()
    {
        return Err(rg_not_found(rg));
    }
    let items = tenant
        .storage_accounts
        .values()
        .filter(|a| a.subscription == sid)
        .filter(|a| resource_group.is_none_or(|rg| a.resource_group.eq_ignore_ascii_case(rg)))
        .map(storage_account_json)
        .collect();
    page(ctx, request, items, PAGE_SIZE)
}

fn find_account<'a>(
    tenant: &'a Tenant,
    subscription: &str,
    rg: &str,
    name: &str,
) -> Result<&'a StorageAccount, ArmError> {
    let sid = subscription_id(tenant, subscription)?;
    if tenant.resource_group(sid, rg).is_none() {
        return Err(rg_not_found(rg));
    }
    tenant.storage_account(sid, rg, name).ok_or_else(|| {
        ArmError::not_found(
            "ResourceNotFound",
            format!("The Resource 'Microsoft.Storage/storageAccounts/{name}' under resource group '{rg}' was not found."),
        )
    })
}

pub fn get_storage_account(
    ctx: &ArmContext,
    subscription: &str,
    rg: &str,
    name: &str,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let account = find_account(&tenant, subscription, rg, name)?;
    Ok(ArmReply::ok(storage_account_json(account)))
}

pub fn list_containers(
    ctx: &ArmContext,
    request: &ArmRequest,
    subscription: &str,
    rg: &str,
    name: &str,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let account = find_account(&tenant, subscription, rg, name)?;
    let modified = super::arm_time(tenant.organization.created);
    let items = account
        .containers
        .iter()
        .map(|c| {
            json!({
                "id": container_scope(account, c),
                "name": c,
                "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
                "etag": "\"0x8DB0000000000000\"",
                "properties": {
                    "publicAccess": "None",
                    "leaseStatus": "Unlocked",
                    "leaseState": "Available",
                    "lastModifiedTime": modified,
                    "hasImmutabilityPolicy": false,
                    "hasLegalHold": false,
                    "deleted": false,
                    "remainingRetentionDays": 0,
                }
            })
        })
        .collect();
    page(ctx, request, items, PAGE_SIZE)
}

fn generic_resource_json(r: &ArmResource) -> Value {
    json!({
        "id": r.arm_id(),
        "name": r.name(),
        "type": r.resource_type(),
        "location": r.location,
        "tags": {},
    })
}

/// `GET /subscriptions/{id}/resources`: storage accounts and every other resource.
pub fn list_resources(
    ctx: &ArmContext,
    request: &ArmRequest,
    subscription: &str,
) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    let sid = subscription_id(&tenant, subscription)?;
    let mut items: Vec<Value> = tenant
        .storage_accounts
        .values()
        .filter(|a| a.subscription == sid)
        .map(|a| json!({"id": storage_account_scope(a), "name": a.name, "type": "Microsoft.Storage/storageAccounts", "kind": a.kind, "sku": {"name": a.sku}, "location": a.location, "tags": {}}))
        .collect();
    items.extend(
        tenant
            .arm_resources
            .values()
            .filter(|r| r.subscription == sid)
            .map(generic_resource_json),
    );
    page(ctx, request, items, PAGE_SIZE)
}

/// `GET` of any other resource by its id (a key vault, ...).
pub fn get_generic_resource(ctx: &ArmContext, path: &str) -> Result<ArmReply, ArmError> {
    let tenant = ctx.state.read_tenant();
    tenant
        .arm_resources
        .get(&path.trim_end_matches('/').to_ascii_lowercase())
        .map(|r| ArmReply::ok(generic_resource_json(r)))
        .ok_or_else(|| {
            ArmError::not_found(
                "ResourceNotFound",
                format!("The Resource '{path}' was not found."),
            )
        })
}
