//! Projection: pure functions from stored source items to baton records
//! (docs/DATA_MODEL.md), and the dependency rule that says which records a changed item can
//! affect.
//!
//! The store calls [`project`] for each origin a change can affect ([`dependents`], answered
//! through [`ItemLookup`], whose `referencing` comes from the store's reverse index of
//! [`references`]); [`affects_dependents`] lets it skip dependents for changes that cannot reach
//! them, and [`all_origins`] enumerates a full snapshot. An origin is an item, an ARM scope, an
//! ARM role GUID ([`Origin::Role`]) or the static resource types.
//!
//! Rules that keep "every record has exactly one origin": an item's own records (a user's
//! resource, a group's resource and entitlements, one grant per membership or assignment item);
//! a scope's `role:`/`eligible:` entitlements and its `azure_resource` belong to the scope; when
//! several items stand for one grant (one directory role at several directory scopes, repeated
//! eligibility instances) the grant belongs to the item with the smallest id.

mod arm;
mod build;
mod entra;
mod principal;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::item::{Collection, ItemKey};
use crate::model::record::Record;

/// Every option of docs/DATA_MODEL.md that changes what lands in a .c1z.
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
    /// Whether the item is present; a store answers without decoding it (most grants only
    /// need to know that their principal exists).
    fn exists(&self, key: &ItemKey) -> bool {
        self.item(key).is_some()
    }
    /// The ids of every item of `collection` whose id starts with `prefix`, in ascending order.
    fn ids(&self, collection: Collection, prefix: &str) -> Vec<String>;
    /// The ids of every item of `collection` whose [`references`] include `target`, in ascending
    /// order (the store's reverse reference index).
    fn referencing(&self, target: &str, collection: Collection) -> Vec<String>;
    /// Calls `f` with every item of `collection` and its value, in ascending id order, and
    /// stops at its first error. A store answers with one ordered scan rather than a point read
    /// per item, which is what a full snapshot of a million items needs.
    fn scan(
        &self,
        collection: Collection,
        f: &mut dyn FnMut(ItemKey, Value) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        for id in self.ids(collection, "") {
            let key = ItemKey::new(collection, id);
            if let Some(value) = self.item(&key) {
                f(key, value)?;
            }
        }
        Ok(())
    }
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
pub fn project(
    origin: &Origin,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    match origin {
        Origin::ResourceTypes => build::resource_types(options),
        Origin::Scope(scope) => arm::scope(scope, items, options),
        Origin::Role(guid) => arm::role(guid, items, options),
        Origin::Item(key) => match items.item(key) {
            Some(value) => project_item(key, &value, items, options),
            None => Vec::new(),
        },
    }
}

fn project_item(
    key: &ItemKey,
    value: &Value,
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
) -> Vec<Record> {
    let id = key.id.as_str();
    match key.collection {
        Collection::Organization => entra::organization(id, value, options),
        Collection::User => entra::user(id, value, items, options),
        Collection::Group => entra::group(id, value, options),
        Collection::GroupMember | Collection::GroupOwner => {
            entra::group_relation(key, value, items, options)
        }
        Collection::GroupEligibility => entra::group_eligibility(key, value, items, options),
        Collection::ServicePrincipal => entra::service_principal(id, value, options),
        Collection::ServicePrincipalOwner => {
            entra::service_principal_owner(key, value, items, options)
        }
        Collection::AppRoleAssignment => entra::app_role_assignment(key, value, items, options),
        Collection::DirectoryRoleDefinition => entra::directory_role(id, value, items, options),
        Collection::DirectoryRoleAssignment | Collection::DirectoryRoleEligibility => {
            entra::directory_role_grant(key, value, items, options)
        }
        Collection::ManagementGroup => arm::management_group(id, value, items, options),
        Collection::Subscription => arm::subscription(id, value, items, options),
        Collection::ResourceGroup | Collection::StorageAccount | Collection::Container => {
            arm::scope_item(key, value, options)
        }
        Collection::RoleAssignment | Collection::RoleEligibility => {
            arm::role_grant(key, value, items, options)
        }
        // Read by the user's projection and by the role and scope origins.
        Collection::Mailbox | Collection::RoleDefinition => Vec::new(),
    }
}

/// The collections whose items name a principal and own a grant to it.
const GRANT_COLLECTIONS: [Collection; 9] = [
    Collection::GroupMember,
    Collection::GroupOwner,
    Collection::GroupEligibility,
    Collection::ServicePrincipalOwner,
    Collection::AppRoleAssignment,
    Collection::DirectoryRoleAssignment,
    Collection::DirectoryRoleEligibility,
    Collection::RoleAssignment,
    Collection::RoleEligibility,
];

/// The origins whose records may change when `key` changes, besides `Origin::Item(key)` itself.
/// The store evaluates it both before and after applying a change and projects the union, so
/// the rule only needs the item as it is at the time of the call.
pub fn dependents(key: &ItemKey, items: &dyn ItemLookup) -> Vec<Origin> {
    let value = items.item(key);
    let mut out = BTreeSet::new();
    let item = |c: Collection, id: String| Origin::Item(ItemKey::new(c, id));
    let id = key.id.as_str();
    match key.collection {
        Collection::Organization => {
            // The tenant is the parent of directory roles, roles, top management groups and
            // subscriptions, and the resource of the `/` scope's entitlements and grants.
            for c in [
                Collection::DirectoryRoleDefinition,
                Collection::ManagementGroup,
                Collection::Subscription,
            ] {
                out.extend(items.ids(c, "").into_iter().map(|i| item(c, i)));
            }
            out.extend(role_guids(items).into_iter().map(Origin::Role));
            out.extend(scope_and_grants("/", items));
        }
        Collection::User => {
            out.extend(principal_grants(id, items));
            // Users whose profile carries this user as manager (id and email).
            let lower = id.to_ascii_lowercase();
            out.extend(
                items
                    .referencing(&lower, Collection::User)
                    .into_iter()
                    .map(|u| item(Collection::User, u)),
            );
        }
        Collection::Mailbox => {
            out.insert(item(Collection::User, id.to_string()));
        }
        Collection::Group => {
            out.extend(principal_grants(id, items));
            let prefix = format!("{id}/");
            for c in [Collection::GroupMember, Collection::GroupOwner] {
                out.extend(items.ids(c, &prefix).into_iter().map(|i| item(c, i)));
            }
            out.extend(
                items
                    .referencing(&id.to_ascii_lowercase(), Collection::GroupEligibility)
                    .into_iter()
                    .map(|i| item(Collection::GroupEligibility, i)),
            );
        }
        Collection::ServicePrincipal => {
            out.extend(principal_grants(id, items));
            let prefix = format!("{id}/");
            for c in [
                Collection::ServicePrincipalOwner,
                Collection::AppRoleAssignment,
            ] {
                out.extend(items.ids(c, &prefix).into_iter().map(|i| item(c, i)));
            }
        }
        Collection::GroupMember | Collection::GroupOwner | Collection::ServicePrincipalOwner => {}
        Collection::GroupEligibility
        | Collection::AppRoleAssignment
        | Collection::DirectoryRoleAssignment
        | Collection::DirectoryRoleEligibility => {
            // Items that may share this one's grant (see `entra::is_leader`).
            if let Some(value) = &value {
                out.extend(
                    entra::siblings(key, value, items)
                        .into_iter()
                        .map(|i| item(key.collection, i)),
                );
            }
        }
        Collection::DirectoryRoleDefinition => {
            for c in [
                Collection::DirectoryRoleAssignment,
                Collection::DirectoryRoleEligibility,
            ] {
                out.extend(
                    items
                        .referencing(&id.to_ascii_lowercase(), c)
                        .into_iter()
                        .map(|i| item(c, i)),
                );
            }
        }
        Collection::ManagementGroup => {
            let lower = id.to_ascii_lowercase();
            // Child groups name it as parent; subscriptions are listed as its children.
            out.extend(
                items
                    .referencing(&lower, Collection::ManagementGroup)
                    .into_iter()
                    .map(|i| item(Collection::ManagementGroup, i)),
            );
            if let Some(value) = &value {
                for sub in arm::management_group_subscriptions(value) {
                    for s in items.ids(Collection::Subscription, "") {
                        if s.eq_ignore_ascii_case(&sub) {
                            out.insert(item(Collection::Subscription, s));
                        }
                    }
                }
            }
            out.extend(item_scope_dependents(key, items));
        }
        Collection::Subscription | Collection::StorageAccount | Collection::Container => {
            out.extend(item_scope_dependents(key, items))
        }
        Collection::ResourceGroup => {
            out.extend(item_scope_dependents(key, items));
            // The azure_resources below take their resource group's spelling from this item.
            // An assignment's id starts with its scope, so its id finds those below.
            if let Some(scope) = arm::item_scope(key) {
                for c in [Collection::RoleAssignment, Collection::RoleEligibility] {
                    for i in items.ids(c, &format!("{scope}/")) {
                        if let Some(below) = items
                            .item(&ItemKey::new(c, i.as_str()))
                            .and_then(|v| arm::assignment_scope(&v))
                            .filter(|s| {
                                matches!(arm::classify(s), Some(arm::ScopeKind::AzureResource(..)))
                            })
                        {
                            out.extend(scope_and_grants(&below, items));
                        }
                    }
                }
            }
        }
        Collection::RoleDefinition => {
            if let Some((sub, guid)) = id.split_once(':') {
                let guid = guid.to_ascii_lowercase();
                out.insert(Origin::Role(guid.clone()));
                out.insert(Origin::Scope(format!(
                    "/subscriptions/{}",
                    sub.to_ascii_lowercase()
                )));
                // Every scope with an assignment of this role shows its name.
                for c in [Collection::RoleAssignment, Collection::RoleEligibility] {
                    for i in items.referencing(&guid, c) {
                        if let Some(scope) = items
                            .item(&ItemKey::new(c, i.as_str()))
                            .and_then(|v| arm::assignment_scope(&v))
                        {
                            out.insert(Origin::Scope(scope));
                        }
                    }
                }
            }
        }
        Collection::RoleAssignment | Collection::RoleEligibility => {
            // With skip_unused_roles a role resource exists only while something assigns it.
            if let Some(guid) = value.as_ref().and_then(arm::assignment_role) {
                out.insert(Origin::Role(guid.to_ascii_lowercase()));
            }
            if let Some(value) = &value
                && let Some(scope) = arm::assignment_scope(value)
            {
                out.insert(Origin::Scope(scope.clone()));
                if matches!(
                    arm::classify(&scope),
                    Some(arm::ScopeKind::AzureResource(..))
                ) {
                    // An azure_resource's id is spelled as its first assignment spells it.
                    out.extend(scope_and_grants(&scope, items));
                } else if let Some(principal) = build::prop(value, "principalId") {
                    out.extend(
                        arm::twins(key, &scope, &principal.to_ascii_lowercase(), items)
                            .into_iter()
                            .map(|i| item(key.collection, i)),
                    );
                }
            }
        }
    }
    out.remove(&Origin::Item(key.clone()));
    out.into_iter().collect()
}

/// Whether changing an item from `before` to `after` (None: absent) can change the records of
/// its [`dependents`]. The store may skip the dependents when it cannot: a group repeated on
/// every page of a members delta, or a user whose job title changed, then re-projects only
/// itself instead of every grant naming it.
pub fn affects_dependents(key: &ItemKey, before: Option<&Value>, after: Option<&Value>) -> bool {
    let (Some(before), Some(after)) = (before, after) else {
        return before.is_some() || after.is_some();
    };
    let differs = |field: &str| before.get(field) != after.get(field);
    match key.collection {
        // Grants to a group, and on it, depend only on it being emitted.
        Collection::Group => differs("onPremisesSyncEnabled"),
        // Grants to a user depend on it existing; the users it manages show its email.
        Collection::User => differs("mail") || differs("userPrincipalName"),
        // Grants to and on a service principal depend on its type and its app roles.
        Collection::ServicePrincipal => differs("servicePrincipalType") || differs("appRoles"),
        _ => before != after,
    }
}

/// The grants naming object `id` as principal (its type, or whether it is emitted, may change).
fn principal_grants(id: &str, items: &dyn ItemLookup) -> Vec<Origin> {
    let lower = id.to_ascii_lowercase();
    GRANT_COLLECTIONS
        .iter()
        .flat_map(|&c| {
            items
                .referencing(&lower, c)
                .into_iter()
                .map(move |i| Origin::Item(ItemKey::new(c, i)))
        })
        .collect()
}

/// A scope origin and the grants of the assignments made at it.
fn scope_and_grants(scope: &str, items: &dyn ItemLookup) -> Vec<Origin> {
    let mut out = vec![Origin::Scope(scope.to_string())];
    for c in [Collection::RoleAssignment, Collection::RoleEligibility] {
        out.extend(
            items
                .referencing(scope, c)
                .into_iter()
                .map(|i| Origin::Item(ItemKey::new(c, i))),
        );
    }
    out
}

fn item_scope_dependents(key: &ItemKey, items: &dyn ItemLookup) -> Vec<Origin> {
    arm::item_scope(key)
        .map(|scope| scope_and_grants(&scope, items))
        .unwrap_or_default()
}

/// The distinct ARM role GUIDs with a stored definition.
fn role_guids(items: &dyn ItemLookup) -> BTreeSet<String> {
    items
        .ids(Collection::RoleDefinition, "")
        .into_iter()
        .filter_map(|id| id.split_once(':').map(|(_, g)| g.to_ascii_lowercase()))
        .collect()
}

/// The collections whose items own records of their own.
const ITEM_ORIGINS: [Collection; 19] = [
    Collection::Organization,
    Collection::User,
    Collection::Group,
    Collection::GroupMember,
    Collection::GroupOwner,
    Collection::GroupEligibility,
    Collection::ServicePrincipal,
    Collection::ServicePrincipalOwner,
    Collection::AppRoleAssignment,
    Collection::DirectoryRoleDefinition,
    Collection::DirectoryRoleAssignment,
    Collection::DirectoryRoleEligibility,
    Collection::ManagementGroup,
    Collection::Subscription,
    Collection::ResourceGroup,
    Collection::StorageAccount,
    Collection::Container,
    Collection::RoleAssignment,
    Collection::RoleEligibility,
];

/// Every origin in the store (for a full snapshot or a full re-projection), without duplicates,
/// in a stable order.
pub fn all_origins(items: &dyn ItemLookup) -> Vec<Origin> {
    let mut out = vec![Origin::ResourceTypes];
    let mut scopes = BTreeSet::new();
    scopes.insert("/".to_string());
    for c in ITEM_ORIGINS {
        for id in items.ids(c, "") {
            let key = ItemKey::new(c, id);
            scopes.extend(scopes_of(&key, || items.item(&key)));
            out.push(Origin::Item(key));
        }
    }
    out.extend(role_guids(items).into_iter().map(Origin::Role));
    out.extend(scopes.into_iter().map(Origin::Scope));
    out
}

/// The ARM scopes an item brings into a snapshot: the scope the item itself is (a resource
/// group, a storage account, ...) and, for a role assignment or eligibility, the scope it is made
/// at, read from the item's value (`value` is asked for those only).
fn scopes_of(key: &ItemKey, value: impl FnOnce() -> Option<Value>) -> Vec<String> {
    let mut scopes: Vec<String> = arm::item_scope(key).into_iter().collect();
    if matches!(
        key.collection,
        Collection::RoleAssignment | Collection::RoleEligibility
    ) {
        scopes.extend(value().and_then(|v| arm::assignment_scope(&v)));
    }
    scopes
}

/// Every record of a full snapshot, streamed to `sink` origin by origin in [`all_origins`]
/// order: the records `project` gives for each origin, without first listing the origins and
/// reading every item once more. Stops at the first error of `sink` or of a scan.
pub fn project_all(
    items: &dyn ItemLookup,
    options: &ProjectionOptions,
    sink: &mut dyn FnMut(Record) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for record in build::resource_types(options) {
        sink(record)?;
    }
    let mut scopes = BTreeSet::new();
    scopes.insert("/".to_string());
    for collection in ITEM_ORIGINS {
        items.scan(collection, &mut |key, value| {
            scopes.extend(scopes_of(&key, || Some(value.clone())));
            for record in project_item(&key, &value, items, options) {
                sink(record)?;
            }
            Ok(())
        })?;
    }
    for guid in role_guids(items) {
        for record in arm::role(&guid, items, options) {
            sink(record)?;
        }
    }
    for scope in scopes {
        for record in arm::scope(&scope, items, options) {
            sink(record)?;
        }
    }
    Ok(())
}

/// The targets an item names, for the store's reverse index (`ItemLookup::referencing`):
/// principal object ids, a manager id, parent management groups, lower-cased ARM scopes and role
/// definition GUIDs. All lower-cased, sorted, without duplicates.
pub fn references(key: &ItemKey, value: &Value) -> Vec<String> {
    let mut out = BTreeSet::new();
    let mut add = |s: Option<&str>| {
        if let Some(s) = s.filter(|s| !s.is_empty()) {
            out.insert(s.to_ascii_lowercase());
        }
    };
    match key.collection {
        Collection::User => add(entra::manager_id(value)),
        Collection::GroupMember | Collection::GroupOwner | Collection::ServicePrincipalOwner => {
            add(key.id.split_once('/').map(|(_, p)| p))
        }
        Collection::GroupEligibility => {
            add(build::str_field(value, "groupId"));
            add(build::str_field(value, "principalId"));
        }
        Collection::AppRoleAssignment => add(build::str_field(value, "principalId")),
        Collection::DirectoryRoleAssignment | Collection::DirectoryRoleEligibility => {
            add(build::str_field(value, "principalId"));
            add(build::str_field(value, "roleDefinitionId"));
        }
        Collection::ManagementGroup => {
            add(arm::management_group_parent(value).as_deref());
            for sub in arm::management_group_subscriptions(value) {
                add(Some(&sub));
            }
        }
        Collection::RoleDefinition => add(key.id.split_once(':').map(|(_, g)| g)),
        Collection::RoleAssignment | Collection::RoleEligibility => {
            add(build::prop(value, "principalId"));
            add(arm::assignment_scope(value).as_deref());
            add(arm::assignment_role(value).as_deref());
        }
        Collection::Organization
        | Collection::Mailbox
        | Collection::Group
        | Collection::Subscription
        | Collection::ServicePrincipal
        | Collection::DirectoryRoleDefinition
        | Collection::ResourceGroup
        | Collection::StorageAccount
        | Collection::Container => {}
    }
    out.into_iter().collect()
}
