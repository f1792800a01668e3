//! `capabilities`: the protojson of an `Any` wrapping `c1.connector.v2.ConnectorCapabilities`,
//! as baton connectors print it (c1z-format.md section 6).
//!
//! Every resource type of the data model is synced. The types with an entitlement `provision`
//! can grant and revoke also claim `CAPABILITY_PROVISION`; users, managed identities and Azure
//! role definitions have none to grant. The connector also serves baton's
//! event feed (`--event-feed`, and `event_feed` tasks in service mode): `CAPABILITY_EVENT_FEED`.
//! Service mode's `Hello` sends the same capabilities as prost messages ([`connector_metadata`]).

use serde_json::{Value, json};

use crate::model::connector::{
    Capability, ConnectorCapabilities, ConnectorMetadata, ResourceTypeCapability,
};
use crate::model::proto::{ResourceType, Trait};

/// What the connector as a whole does.
const CONNECTOR_CAPABILITIES: [(Capability, &str); 3] = [
    (Capability::Sync, "CAPABILITY_SYNC"),
    (Capability::Provision, "CAPABILITY_PROVISION"),
    (Capability::EventFeed, "CAPABILITY_EVENT_FEED"),
];

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

/// What a resource type supports: sync, and provisioning where it has grantable entitlements.
fn type_capabilities(id: &str) -> &'static [(Capability, &'static str)] {
    if PROVISIONED.contains(&id) {
        &CONNECTOR_CAPABILITIES[..2]
    } else {
        &CONNECTOR_CAPABILITIES[..1]
    }
}

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
                "capabilities": type_capabilities(id).iter().map(|(_, name)| *name).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "@type": "type.googleapis.com/c1.connector.v2.ConnectorCapabilities",
        "resourceTypeCapabilities": per_type,
        "connectorCapabilities": CONNECTOR_CAPABILITIES.iter().map(|(_, name)| *name).collect::<Vec<_>>(),
    })
}

fn trait_number(name: &str) -> Trait {
    match name {
        "TRAIT_USER" => Trait::User,
        "TRAIT_GROUP" => Trait::Group,
        "TRAIT_ROLE" => Trait::Role,
        "TRAIT_APP" => Trait::App,
        _ => Trait::Unspecified,
    }
}

/// The `c1.connector.v2.ConnectorMetadata` service mode's `Hello` carries.
pub fn connector_metadata() -> ConnectorMetadata {
    let per_type = RESOURCE_TYPES
        .iter()
        .map(
            |(id, display_name, resource_trait)| ResourceTypeCapability {
                resource_type: Some(ResourceType {
                    id: id.to_string(),
                    display_name: display_name.to_string(),
                    traits: vec![trait_number(resource_trait) as i32],
                    ..ResourceType::default()
                }),
                capabilities: type_capabilities(id)
                    .iter()
                    .map(|(c, _)| *c as i32)
                    .collect(),
            },
        )
        .collect();
    ConnectorMetadata {
        display_name: "Microsoft Entra ID and Azure (baton-azure-delta)".to_string(),
        description: "Incremental Microsoft Entra ID and Azure access sync: reads the tenant \
                      once, then follows its changes"
            .to_string(),
        capabilities: Some(ConnectorCapabilities {
            resource_type_capabilities: per_type,
            connector_capabilities: CONNECTOR_CAPABILITIES
                .iter()
                .map(|(c, _)| *c as i32)
                .collect(),
        }),
        ..ConnectorMetadata::default()
    }
}
