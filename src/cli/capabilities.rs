//! `capabilities`: the protojson of an `Any` wrapping `c1.connector.v2.ConnectorCapabilities`,
//! as baton connectors print it (c1z-format.md section 6).
//!
//! Every resource type of the data model is synced; none is provisioned yet (grant and revoke
//! are not built), so no type claims `CAPABILITY_PROVISION`.

use serde_json::{Value, json};

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
            json!({
                "resourceType": {
                    "id": id,
                    "displayName": display_name,
                    "traits": [resource_trait],
                },
                "capabilities": ["CAPABILITY_SYNC"],
            })
        })
        .collect();
    json!({
        "@type": "type.googleapis.com/c1.connector.v2.ConnectorCapabilities",
        "resourceTypeCapabilities": per_type,
        "connectorCapabilities": ["CAPABILITY_SYNC"],
    })
}
