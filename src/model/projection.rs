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
