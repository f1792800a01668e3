//! `capabilities`: the protojson of an `Any` wrapping `c1.connector.v2.ConnectorCapabilities`,
//! as baton connectors print it (c1z-format.md section 6).
//!
//! Every resource type of the data model is synced. The types with an entitlement `provision`
//! can grant and revoke also claim `CAPABILITY_PROVISION`; users, managed identities and Azure
//! role definitions have none to grant.

use serde_json::{Value, json};

/// The resource types that hold grantable entitlements (DATA_MODEL.md, `provision`).
const PROVISIONED: &[&str] = &[
    "tenant",
    "group",
    "enterprise_application",
    "directory_role",
    "management_group",
    "subscription",
    "resource_group",
    "storage_account",
    "container",
    "azure_resource",
];

/// The resource types of the data model: id, display name, trait.
const RESOURCE_TYPES: &[(&str, &str, &str)] = &[
    ("tenant", "Tenant", "TRAIT_APP"),
    ("user", "User", "TRAIT_USER"),
    ("group", "Group", "TRAIT_GROUP"),
    (
        "enterprise_application",
        "Enterprise Application",
        "TRAIT_APP",
    ),
    ("managed_identity", "Managed Identity", "TRAIT_USER"),
    ("directory_role", "Directory Role", "TRAIT_ROLE"),
    ("management_group", "Management Group", "TRAIT_GROUP"),
    ("subscription", "Subscription", "TRAIT_APP"),
    ("resource_group", "Resource Group", "TRAIT_GROUP"),
    ("role", "Role", "TRAIT_ROLE"),
    ("storage_account", "Storage Account", "TRAIT_APP"),
    ("container", "Container", "TRAIT_APP"),
    ("azure_resource", "Azure Resource", "TRAIT_APP"),
];

pub fn capabilities() -> Value {
    let per_type: Vec<Value> = RESOURCE_TYPES
        .iter()
        .map(|(id, display_name, resource_trait)| {
            let capabilities = if PROVISIONED.contains(id) {
                json!(["CAPABILITY_SYNC", "CAPABILITY_PROVISION"])
            } else {
                json!(["CAPABILITY_SYNC"])
            };
            json!({
                "resourceType": {
                    "id": id,
                    "displayName": display_name,
                    "traits": [resource_trait],
                },
                "capabilities": capabilities,
            })
        })
        .collect();
    json!({
        "@type": "type.googleapis.com/c1.connector.v2.ConnectorCapabilities",
        "resourceTypeCapabilities": per_type,
        "connectorCapabilities": ["CAPABILITY_SYNC", "CAPABILITY_PROVISION"],
    })
}
