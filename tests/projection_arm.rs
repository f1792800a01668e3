//! The ARM records of docs/DATA_MODEL.md: scope resources and their parents, `role:` and
//! `eligible:` entitlements attributed by each assignment's own scope, and role grants.

mod projection_support;

use baton_azure_delta::item::Collection;
use baton_azure_delta::model::Table;
use baton_azure_delta::model::projection::ProjectionOptions;
use baton_azure_delta::model::proto;
use projection_support::*;

fn defaults() -> ProjectionOptions {
    ProjectionOptions::default()
}

fn parent(r: &proto::Resource) -> Option<(String, String)> {
    r.parent_resource_id
        .as_ref()
        .map(|p| (p.resource_type.clone(), p.resource.clone()))
}

fn pair(t: &str, id: &str) -> Option<(String, String)> {
    Some((t.to_string(), id.to_string()))
}

#[test]
fn scope_resources_and_their_parents() {
    let s = snapshot(&tenant(), &defaults());
    let root = resource(&s, &format!("management_group:{TENANT}"));
    assert_eq!(root.display_name, "Tenant Root Group");
    assert_eq!(parent(root), pair("tenant", TENANT));
    assert_eq!(
        parent(resource(&s, "management_group:Prod")),
        pair("management_group", TENANT)
    );
    // The subscription is a child of Prod (Prod lists it among its children).
    let sub = resource(&s, &format!("subscription:{SUB}"));
    assert_eq!(sub.display_name, "Prod subscription");
    assert_eq!(parent(sub), pair("management_group", "Prod"));
    let rg = resource(&s, &format!("resource_group:{SUB}:RG-Web"));
    assert_eq!(parent(rg), pair("subscription", SUB));
    let account = resource(&s, &format!("storage_account:{SUB}:RG-Web:stweb"));
    assert_eq!(
        parent(account),
        pair("resource_group", &format!("{SUB}:RG-Web"))
    );
    let container = resource(&s, &format!("container:{SUB}:RG-Web:stweb:logs"));
    assert_eq!(
        parent(container),
        pair("storage_account", &format!("{SUB}:RG-Web:stweb"))
    );
    let vault = resource(
        &s,
        &format!("azure_resource:{SUB}:RG-Web:Microsoft.KeyVault/vaults/kv-prod"),
    );
    assert_eq!(vault.display_name, "kv-prod");
    assert_eq!(
        parent(vault),
        pair("resource_group", &format!("{SUB}:RG-Web"))
    );
    let role = resource(&s, &format!("role:{OWNER}"));
    assert_eq!(role.display_name, "Owner");
    assert_eq!(parent(role), pair("tenant", TENANT));
    // Only scopes with an assignment become azure_resources.
    let azure: Vec<_> = ids(&s, Table::Resources)
        .into_iter()
        .filter(|r| r.starts_with("azure_resource:"))
        .collect();
    assert_eq!(azure.len(), 1, "{azure:?}");
}

#[test]
fn subscription_without_a_readable_group_hangs_under_the_tenant() {
    let mut items = tenant();
    items.remove(Collection::ManagementGroup, "Prod");
    let s = snapshot(&items, &defaults());
    assert_eq!(
        parent(resource(&s, &format!("subscription:{SUB}"))),
        pair("tenant", TENANT)
    );
    // The Prod scope's entitlements go with it.
    assert!(
        !ids(&s, Table::Entitlements)
            .iter()
            .any(|e| e.starts_with("management_group:Prod:"))
    );
}

#[test]
fn role_entitlements_per_scope_with_unused_roles_on_subscriptions() {
    let s = snapshot(&tenant(), &defaults());
    let sub_roles: Vec<String> = ids(&s, Table::Entitlements)
        .into_iter()
        .filter(|e| e.starts_with(&format!("subscription:{SUB}:")))
        .collect();
    assert_eq!(
        sub_roles,
        vec![
            format!("subscription:{SUB}:eligible:{OWNER}"),
            format!("subscription:{SUB}:role:{OWNER}"),
            format!("subscription:{SUB}:role:{READER}"),
            format!("subscription:{SUB}:role:{CONTRIBUTOR}"),
        ]
    );
    let contributor = entitlement(&s, &format!("subscription:{SUB}:role:{CONTRIBUTOR}"));
    assert_eq!(contributor.display_name, "Contributor");
    assert!(
        contributor.description.contains("Prod subscription"),
        "{}",
        contributor.description
    );
    assert_eq!(contributor.slug, format!("role:{CONTRIBUTOR}"));
    // The resource group assignment is spelled "resourcegroups/rg-web"; it lands on RG-Web.
    let rg_reader = entitlement(&s, &format!("resource_group:{SUB}:RG-Web:role:{READER}"));
    assert_eq!(rg_reader.display_name, "Reader");
    entitlement(&s, &format!("tenant:{TENANT}:role:{OWNER}"));
    entitlement(&s, &format!("management_group:Prod:role:{READER}"));
    entitlement(
        &s,
        &format!("container:{SUB}:RG-Web:stweb:logs:role:{READER}"),
    );
    entitlement(
        &s,
        &format!("azure_resource:{SUB}:RG-Web:Microsoft.KeyVault/vaults/kv-prod:role:{OWNER}"),
    );
    // Inherited assignments are not repeated on the scopes below.
    assert!(
        !ids(&s, Table::Entitlements)
            .contains(&format!("resource_group:{SUB}:RG-Web:role:{CONTRIBUTOR}"))
    );

    let used = snapshot(
        &tenant(),
        &ProjectionOptions {
            skip_unused_roles: true,
            ..defaults()
        },
    );
    assert!(
        !ids(&used, Table::Entitlements).contains(&format!("subscription:{SUB}:role:{READER}"))
    );
    entitlement(&used, &format!("subscription:{SUB}:role:{CONTRIBUTOR}"));
    // A role held only through an eligibility still counts as used.
    entitlement(&used, &format!("subscription:{SUB}:role:{OWNER}"));
}

#[test]
fn role_grants_by_principal_type() {
    let s = snapshot(&tenant(), &defaults());
    let g = grant(
        &s,
        &format!("subscription:{SUB}:role:{CONTRIBUTOR}:user:{ALICE}"),
    );
    let e = g.entitlement.as_ref().unwrap();
    assert_eq!(e.id, format!("subscription:{SUB}:role:{CONTRIBUTOR}"));
    assert_eq!(
        e.resource
            .as_ref()
            .unwrap()
            .id
            .as_ref()
            .unwrap()
            .resource_type,
        "subscription"
    );
    let to_group = grant(
        &s,
        &format!("resource_group:{SUB}:RG-Web:role:{READER}:group:{ENG}"),
    );
    assert!(proto::find_annotation::<proto::GrantExpandable>(&to_group.annotations).is_some());
    grant(
        &s,
        &format!(
            "azure_resource:{SUB}:RG-Web:Microsoft.KeyVault/vaults/kv-prod:role:{OWNER}:managed_identity:{MI}"
        ),
    );
    grant(&s, &format!("tenant:{TENANT}:role:{OWNER}:user:{BOB}"));
    grant(
        &s,
        &format!("subscription:{SUB}:eligible:{OWNER}:user:{BOB}"),
    );
    grant(
        &s,
        &format!("management_group:Prod:role:{READER}:group:{ADG}"),
    );
    grant(
        &s,
        &format!("container:{SUB}:RG-Web:stweb:logs:role:{READER}:user:{ALICE}"),
    );
}

#[test]
fn options_remove_containers_eligibility_and_hidden_principals() {
    let s = snapshot(
        &tenant(),
        &ProjectionOptions {
            skip_storage_containers: true,
            skip_p2: true,
            skip_ad_groups: true,
            ..defaults()
        },
    );
    let all: Vec<String> = [Table::Resources, Table::Entitlements, Table::Grants]
        .into_iter()
        .flat_map(|t| ids(&s, t))
        .collect();
    assert!(
        !all.iter().any(|id| id.starts_with("container:")),
        "containers left"
    );
    assert!(
        !all.iter().any(|id| id.contains(":eligible:")),
        "eligibility left"
    );
    assert!(
        !all.iter().any(|id| id.ends_with(&format!("group:{ADG}"))),
        "hidden group's grant left"
    );
    // The management group keeps its Reader entitlement, only the grant to the hidden group goes.
    entitlement(&s, &format!("management_group:Prod:role:{READER}"));
}

#[test]
fn assignment_to_an_unknown_principal_or_type_is_left_out() {
    let mut items = tenant();
    let sub_scope = format!("/subscriptions/{SUB}");
    for (name, principal, kind) in [
        ("ra-ghost", GHOST, "User"),
        ("ra-foreign", BOB, "ForeignGroup"),
        ("ra-legacy", LEGACY, "ServicePrincipal"),
    ] {
        let (id, value) = arm_assignment(&sub_scope, name, READER, principal, kind);
        items.put(Collection::RoleAssignment, &id, value);
    }
    let s = snapshot(&items, &defaults());
    let grants = ids(&s, Table::Grants);
    assert!(
        !grants
            .iter()
            .any(|g| g.contains(GHOST) || g.contains(LEGACY)),
        "{grants:?}"
    );
    assert!(!grants.contains(&format!("subscription:{SUB}:role:{READER}:group:{BOB}")));
    // The role is still assigned at that scope, so its entitlement is there.
    let used = snapshot(
        &items,
        &ProjectionOptions {
            skip_unused_roles: true,
            ..defaults()
        },
    );
    entitlement(&used, &format!("subscription:{SUB}:role:{READER}"));
}

#[test]
fn duplicate_eligibility_instances_make_one_grant() {
    let mut items = tenant();
    let (id, mut value) = arm_assignment(
        &format!("/subscriptions/{SUB}"),
        "re-sub-bob-2",
        OWNER,
        BOB,
        "User",
    );
    value["type"] = serde_json::json!("Microsoft.Authorization/roleEligibilityScheduleInstances");
    items.put(
        Collection::RoleEligibility,
        &id.replace("roleassignments", "roleeligibilityscheduleinstances"),
        value,
    );
    // `snapshot` panics if two origins produce the same grant.
    let s = snapshot(&items, &defaults());
    grant(
        &s,
        &format!("subscription:{SUB}:eligible:{OWNER}:user:{BOB}"),
    );
}

#[test]
fn azure_resource_keeps_arm_spelling_from_its_first_assignment() {
    let mut items = tenant();
    // A second assignment at the same vault, spelled in lower case, sorts after the first.
    let lower = KEY_VAULT_SCOPE.to_ascii_lowercase();
    let (id, value) = arm_assignment(&lower, "zz-ra-kv-alice", READER, ALICE, "User");
    items.put(Collection::RoleAssignment, &id, value);
    let s = snapshot(&items, &defaults());
    let id = format!("azure_resource:{SUB}:RG-Web:Microsoft.KeyVault/vaults/kv-prod");
    resource(&s, &id);
    grant(&s, &format!("{id}:role:{READER}:user:{ALICE}"));
    assert_eq!(
        ids(&s, Table::Resources)
            .iter()
            .filter(|r| r.starts_with("azure_resource:"))
            .count(),
        1
    );
}

/// Eligibility the tenant feed stores at a management group or at `/` lands on that group or
/// the tenant, like an assignment there (and not with P2 skipped).
#[test]
fn eligibility_at_a_management_group_and_the_root_is_granted_there() {
    let mut items = tenant();
    for (scope, name, role, principal, kind) in [
        (
            "/providers/Microsoft.Management/managementGroups/Prod",
            "re-mg-alice",
            CONTRIBUTOR,
            ALICE,
            "User",
        ),
        ("/", "re-root-eng", READER, ENG, "Group"),
    ] {
        let (id, mut value) = arm_assignment(scope, name, role, principal, kind);
        value["type"] =
            serde_json::json!("Microsoft.Authorization/roleEligibilityScheduleInstances");
        items.put(
            Collection::RoleEligibility,
            &id.replace("roleassignments", "roleeligibilityscheduleinstances"),
            value,
        );
    }
    let s = snapshot(&items, &defaults());
    let on_group = entitlement(&s, &format!("management_group:Prod:eligible:{CONTRIBUTOR}"));
    assert_eq!(on_group.display_name, "Contributor (eligible)");
    entitlement(&s, &format!("management_group:Prod:role:{CONTRIBUTOR}"));
    grant(
        &s,
        &format!("management_group:Prod:eligible:{CONTRIBUTOR}:user:{ALICE}"),
    );
    let to_group = grant(
        &s,
        &format!("tenant:{TENANT}:eligible:{READER}:group:{ENG}"),
    );
    assert!(proto::find_annotation::<proto::GrantExpandable>(&to_group.annotations).is_some());

    let skipped = snapshot(
        &items,
        &ProjectionOptions {
            skip_p2: true,
            ..defaults()
        },
    );
    assert!(
        !ids(&skipped, Table::Entitlements)
            .iter()
            .any(|id| id.contains(":eligible:"))
    );
}
