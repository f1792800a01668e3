//! Record builders: the baton id conventions (c1z-format.md 5.1), the static resource types, the
//! profile `Struct`s and the portal links, shared by the Entra and ARM projections.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::model::proto::{self, Purpose, Trait};
use crate::model::record::Record;

use super::ProjectionOptions;

pub const TENANT: &str = "tenant";
pub const USER: &str = "user";
pub const GROUP: &str = "group";
pub const ENTERPRISE_APPLICATION: &str = "enterprise_application";
pub const MANAGED_IDENTITY: &str = "managed_identity";
pub const DIRECTORY_ROLE: &str = "directory_role";
pub const MANAGEMENT_GROUP: &str = "management_group";
pub const SUBSCRIPTION: &str = "subscription";
pub const RESOURCE_GROUP: &str = "resource_group";
pub const ROLE: &str = "role";
pub const STORAGE_ACCOUNT: &str = "storage_account";
pub const CONTAINER: &str = "container";
pub const AZURE_RESOURCE: &str = "azure_resource";

/// The default app role every enterprise application can be assigned with.
pub const DEFAULT_APP_ROLE: &str = "00000000-0000-0000-0000-000000000000";

/// (id, display name, trait, has no entitlements of its own) for every resource type, in the
/// order a snapshot lists them.
const RESOURCE_TYPES: [(&str, &str, Trait, bool); 13] = [
    (TENANT, "Tenant", Trait::App, false),
    (USER, "User", Trait::User, true),
    (GROUP, "Group", Trait::Group, false),
    (
        ENTERPRISE_APPLICATION,
        "Enterprise Application",
        Trait::App,
        false,
    ),
    (MANAGED_IDENTITY, "Managed Identity", Trait::User, true),
    (DIRECTORY_ROLE, "Directory Role", Trait::Role, false),
    (MANAGEMENT_GROUP, "Management Group", Trait::Group, false),
    (SUBSCRIPTION, "Subscription", Trait::App, false),
    (RESOURCE_GROUP, "Resource Group", Trait::Group, false),
    (ROLE, "Role", Trait::Role, true),
    (STORAGE_ACCOUNT, "Storage Account", Trait::App, false),
    (CONTAINER, "Container", Trait::App, false),
    (AZURE_RESOURCE, "Azure Resource", Trait::App, false),
];

/// The records of the static resource types. `container` is left out when containers are
/// skipped. The principal types stay declared with external principals: grants still name
/// principals of those types.
pub fn resource_types(options: &ProjectionOptions) -> Vec<Record> {
    RESOURCE_TYPES
        .iter()
        .filter(|(id, ..)| !(options.skip_storage_containers && *id == CONTAINER))
        .map(|(id, _, _, skip)| {
            let mut rt = resource_type(id);
            if *skip {
                rt.annotations
                    .push(proto::any(&proto::SkipEntitlementsAndGrants {}));
            }
            Record::ResourceType(rt)
        })
        .collect()
}

/// A bare `ResourceType` (id, name, trait), as embedded in `Entitlement.grantable_to`.
pub fn resource_type(id: &str) -> proto::ResourceType {
    let (display_name, t) = RESOURCE_TYPES
        .iter()
        .find(|(rt, ..)| *rt == id)
        .map(|(_, name, t, _)| (*name, *t))
        .unwrap_or((id, Trait::Unspecified));
    proto::ResourceType {
        id: id.to_string(),
        display_name: display_name.to_string(),
        traits: vec![t as i32],
        annotations: Vec::new(),
        description: String::new(),
    }
}

pub fn resource_id(resource_type: &str, id: &str) -> proto::ResourceId {
    proto::ResourceId {
        resource_type: resource_type.to_string(),
        resource: id.to_string(),
    }
}

/// A resource record's content before annotations are put in their fixed order.
pub struct ResourceParts {
    pub id: proto::ResourceId,
    pub parent: Option<proto::ResourceId>,
    pub display_name: String,
    pub description: String,
    /// The trait annotation (UserTrait, GroupTrait, ...).
    pub trait_annotation: proto::Any,
    /// Child resource types, in a fixed order.
    pub children: Vec<&'static str>,
    pub link: Option<String>,
}

/// Builds the resource with its annotations in one fixed order: trait, child types, link.
pub fn resource(parts: ResourceParts) -> proto::Resource {
    let mut annotations = vec![parts.trait_annotation];
    for child in parts.children {
        annotations.push(proto::any(&proto::ChildResourceType {
            resource_type_id: child.to_string(),
        }));
    }
    if let Some(url) = parts.link {
        annotations.push(proto::any(&proto::ExternalLink { url }));
    }
    proto::Resource {
        id: Some(parts.id),
        parent_resource_id: parts.parent,
        display_name: parts.display_name,
        annotations,
        description: parts.description,
    }
}

/// The copy of a resource embedded in its entitlements: id and name only, so that a profile change
/// does not rewrite every entitlement.
pub fn resource_ref(resource: &proto::ResourceId, display_name: &str) -> proto::Resource {
    proto::Resource {
        id: Some(resource.clone()),
        display_name: display_name.to_string(),
        ..Default::default()
    }
}

pub struct EntitlementParts<'a> {
    pub resource: proto::Resource,
    pub slug: String,
    pub display_name: String,
    pub description: String,
    pub purpose: Purpose,
    pub grantable_to: &'a [&'a str],
}

/// `<resource_type>:<resource>:<slug>`.
pub fn entitlement_id(resource: &proto::ResourceId, slug: &str) -> String {
    format!("{}:{}:{}", resource.resource_type, resource.resource, slug)
}

pub fn entitlement(parts: EntitlementParts) -> proto::Entitlement {
    let id = match &parts.resource.id {
        Some(rid) => entitlement_id(rid, &parts.slug),
        None => parts.slug.clone(),
    };
    proto::Entitlement {
        resource: Some(parts.resource),
        id,
        display_name: parts.display_name,
        description: parts.description,
        grantable_to: parts
            .grantable_to
            .iter()
            .map(|t| resource_type(t))
            .collect(),
        annotations: Vec::new(),
        purpose: parts.purpose as i32,
        slug: parts.slug,
    }
}

/// A grant of entitlement `<resource>:<slug>` to `principal`, embedding the entitlement's id and
/// resource id and the principal's id (c1z-format.md 2.4). `metadata` becomes a `GrantMetadata`.
pub fn grant(
    resource: &proto::ResourceId,
    slug: &str,
    principal: &super::principal::Principal,
    metadata: Option<proto::Struct>,
) -> proto::Grant {
    let entitlement_id = entitlement_id(resource, slug);
    let principal_id = resource_id(principal.resource_type, &principal.id);
    let mut annotations = Vec::new();
    if principal.resource_type == GROUP {
        annotations.push(proto::any(&proto::GrantExpandable {
            entitlement_ids: vec![format!("{GROUP}:{}:members", principal.id)],
            shallow: false,
            resource_type_ids: Vec::new(),
        }));
    }
    if principal.external {
        annotations.push(proto::any(&proto::ExternalResourceMatchId {
            id: principal.id.clone(),
        }));
    }
    if let Some(metadata) = metadata {
        annotations.push(proto::any(&proto::GrantMetadata {
            metadata: Some(metadata),
        }));
    }
    proto::Grant {
        id: format!(
            "{entitlement_id}:{}:{}",
            principal_id.resource_type, principal_id.resource
        ),
        entitlement: Some(proto::Entitlement {
            resource: Some(proto::Resource {
                id: Some(resource.clone()),
                ..Default::default()
            }),
            id: entitlement_id,
            ..Default::default()
        }),
        principal: Some(proto::Resource {
            id: Some(principal_id),
            ..Default::default()
        }),
        annotations,
        sources: None,
    }
}

/// A profile under construction; keys are sorted (BTreeMap) so the encoding is deterministic.
#[derive(Default)]
pub struct Profile(BTreeMap<String, proto::Value>);

impl Profile {
    /// Adds `key` with the JSON string at `source[field]`, when it is a non-empty string.
    pub fn string_from(&mut self, key: &str, source: &Json, field: &str) -> &mut Self {
        if let Some(s) = str_field(source, field) {
            self.string(key, s);
        }
        self
    }

    pub fn string(&mut self, key: &str, value: &str) -> &mut Self {
        self.0.insert(key.to_string(), string_value(value));
        self
    }

    /// Adds `key` with the JSON bool at `source[field]`, when present.
    pub fn bool_from(&mut self, key: &str, source: &Json, field: &str) -> &mut Self {
        if let Some(b) = source.get(field).and_then(Json::as_bool) {
            self.0.insert(
                key.to_string(),
                proto::Value {
                    kind: Some(prost_types::value::Kind::BoolValue(b)),
                },
            );
        }
        self
    }

    pub fn list(&mut self, key: &str, values: &[String]) -> &mut Self {
        self.0.insert(
            key.to_string(),
            proto::Value {
                kind: Some(prost_types::value::Kind::ListValue(proto::ListValue {
                    values: values.iter().map(|v| string_value(v)).collect(),
                })),
            },
        );
        self
    }

    pub fn build(&mut self) -> proto::Struct {
        proto::Struct {
            fields: std::mem::take(&mut self.0),
        }
    }
}

fn string_value(s: &str) -> proto::Value {
    proto::Value {
        kind: Some(prost_types::value::Kind::StringValue(s.to_string())),
    }
}

/// The non-empty string at `value[field]`.
pub fn str_field<'a>(value: &'a Json, field: &str) -> Option<&'a str> {
    value
        .get(field)
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
}

/// The non-empty string at `value.properties[field]` (ARM objects).
pub fn prop<'a>(value: &'a Json, field: &str) -> Option<&'a str> {
    value.get("properties").and_then(|p| str_field(p, field))
}

/// An RFC 3339 timestamp as Graph writes them (`2024-01-01T10:00:00Z`).
pub fn timestamp(value: &Json, field: &str) -> Option<proto::Timestamp> {
    str_field(value, field).and_then(|s| s.parse().ok())
}

/// The portal host for a Graph domain: national clouds have their own portal.
fn portal_host(options: &ProjectionOptions) -> &'static str {
    match options.graph_domain.trim_end_matches('/') {
        "graph.microsoft.us" | "dod-graph.microsoft.us" => "portal.azure.us",
        "microsoftgraph.chinacloudapi.cn" => "portal.azure.cn",
        _ => "portal.azure.com",
    }
}

/// A link to a blade of the Entra or Azure portal, `fragment` being what follows `#`.
pub fn portal_link(options: &ProjectionOptions, fragment: &str) -> String {
    format!("https://{}/#{fragment}", portal_host(options))
}

/// A link to an ARM object's page (`#resource/<arm id>`), as the portal addresses resources.
pub fn arm_link(options: &ProjectionOptions, arm_id: &str) -> String {
    portal_link(options, &format!("resource{arm_id}"))
}
