//! Projection: pure functions from stored source items to baton records
//! (../shared/DATA_MODEL.md), and the dependency rule that says which records a changed item can
//! affect.
//!
//! CONTRACT (the store calls exactly this):
//!
//! ```ignore
//! /// Every option of ../shared/DATA_MODEL.md that changes what lands in a .c1z.
//! #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
//! pub struct ProjectionOptions { pub mailbox_settings: bool, pub skip_ad_groups: bool, pub skip_unused_roles: bool,
//!     pub skip_storage_containers: bool, pub skip_p2: bool, pub external_principals: bool, pub graph_domain: String, ... }
//!
//! /// Read access to the store's items during projection.
//! pub trait ItemLookup {
//!     fn item(&self, key: &ItemKey) -> Option<serde_json::Value>;
//!     fn ids(&self, collection: Collection, prefix: &str) -> Vec<String>;
//! }
//!
//! /// An origin is an item (or a synthetic key) that owns a set of records: a user owns its
//! /// resource; a group owns its resource and entitlements; a GroupMember item owns one grant; a
//! /// scope owns its `role:` entitlements. Every record has exactly one origin.
//! pub enum Origin { Item(ItemKey), Scope(String /* ARM scope, lower-cased */), ResourceTypes }
//!
//! /// The records an origin owns, given the current items. Pure and deterministic.
//! pub fn project(origin: &Origin, items: &dyn ItemLookup, options: &ProjectionOptions) -> Vec<Record>;
//!
//! /// The origins whose records may change when `key` changes (besides `key` itself): e.g. a
//! /// user's grants (GroupMember items naming it), a group's member grants, a subscription's role
//! /// entitlements when a role definition changes.
//! pub fn dependents(key: &ItemKey, items: &dyn ItemLookup) -> Vec<Origin>;
//!
//! /// Every origin in the store (for a full snapshot or a full re-projection).
//! pub fn all_origins(items: &dyn ItemLookup) -> Vec<Origin>;   // may be an iterator
//! ```
//!
//! Additions to the contract: [`ItemLookup::referencing`] (answered from the store's reverse
//! reference index), [`references`] (what the store indexes), and [`Origin::Role`] (the `role`
//! resource of one ARM role GUID, which several per-subscription RoleDefinition items describe).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::feeds::change::{Collection, ItemKey};
use crate::model::record::Record;

/// Every option of ../shared/DATA_MODEL.md that changes what lands in a .c1z.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectionOptions {
    /// `--mailboxSettings`: room, equipment and shared mailboxes become SERVICE accounts.
    pub mailbox_settings: bool,
    /// `--skip-ad-groups`: groups synced from on-premises AD, and grants on them, are left out.
    pub skip_ad_groups: bool,
    /// `--skip-unused-roles`: a subscription gets `role:` entitlements only for roles in use.
    pub skip_unused_roles: bool,
    /// `--skip-sync-storage-containers`: no `container` resources (nor their entitlements).
    pub skip_storage_containers: bool,
    /// `--skip-entra-id-p2-license-features`: no `eligible*` entitlements or grants.
    pub skip_p2: bool,
    /// `--enable-sync-external-resources-via-baton-id`: users, groups and managed identities are
    /// not emitted; grants name them with `ExternalResourceMatchID`.
    pub external_principals: bool,
    /// `--graph-domain`: picks the portal host of the `ExternalLink`s (national clouds).
    pub graph_domain: String,
}

impl Default for ProjectionOptions {
    fn default() -> Self {
        ProjectionOptions {
            mailbox_settings: false,
            skip_ad_groups: false,
            skip_unused_roles: false,
            skip_storage_containers: false,
            skip_p2: false,
            external_principals: false,
            graph_domain: "graph.microsoft.com".to_string(),
        }
    }
}

/// Read access to the store's items during projection.
pub trait ItemLookup {
    /// The item as stored, if present.
    fn item(&self, key: &ItemKey) -> Option<Value>;
    /// The ids of every item of `collection` whose id starts with `prefix`, in ascending order.
    fn ids(&self, collection: Collection, prefix: &str) -> Vec<String>;
    /// The ids of every item of `collection` whose [`references`] include `target`, in ascending
    /// order (the store's reverse reference index).
    fn referencing(&self, target: &str, collection: Collection) -> Vec<String>;
}

/// Something that owns a set of records. Every record has exactly one origin.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Origin {
    /// A source item: a user owns its resource; a group owns its resource and entitlements; a
    /// GroupMember item owns one grant.
    Item(ItemKey),
    /// An ARM scope, lower-cased (`/`, `/providers/microsoft.management/managementgroups/<name>`,
    /// `/subscriptions/<sub>`, ...): owns its `role:`/`eligible:` entitlements and, for a scope
    /// below a resource group that is no storage account or container, its `azure_resource`.
    Scope(String),
    /// The `role` resource of one ARM role definition GUID (lower-cased).
    Role(String),
    /// The static resource types.
    ResourceTypes,
}

/// The records an origin owns, given the current items. Pure and deterministic.
pub fn project(origin: &Origin, items: &dyn ItemLookup, options: &ProjectionOptions) -> Vec<Record> {
    let _ = (origin, items, options);
    Vec::new()
}

/// The origins whose records may change when `key` changes, besides `Origin::Item(key)` itself.
/// The store evaluates it both before and after applying a change and projects the union.
pub fn dependents(key: &ItemKey, items: &dyn ItemLookup) -> Vec<Origin> {
    let _ = (key, items);
    Vec::new()
}

/// Every origin in the store (for a full snapshot or a full re-projection), without duplicates.
pub fn all_origins(items: &dyn ItemLookup) -> Vec<Origin> {
    let _ = items;
    Vec::new()
}

/// The targets an item names, for the store's reverse index (`ItemLookup::referencing`):
/// principal object ids, a manager id, lower-cased ARM scopes, role definition GUIDs.
pub fn references(key: &ItemKey, value: &Value) -> Vec<String> {
    let _ = (key, value);
    Vec::new()
}
