//! The vocabulary every layer shares: source items, their collections and keys, and the changes
//! a feed hands to the store, in the shape Microsoft sent them. The lowest module: `feeds`,
//! `store` and `model` import it, and it imports none of them.
//!
//! A source item is one JSON object as Graph or ARM returned it (normalised only as far as noted
//! on each [`Collection`]), addressed by an [`ItemKey`]. Relationships (a group's member, an app
//! role assignment, an Azure role assignment) are items too, so that one mechanism (put, merge,
//! remove, mark and sweep) serves every feed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The kinds of source item the store keeps. Each belongs to exactly one feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Collection {
    /// Graph `organization`; id = tenant GUID.
    Organization,
    /// Graph `users`; id = object id. The manager is normalised to `"manager": {"id": ...}` or
    /// null (from the list's `$expand=manager` and the delta's `manager@delta` alike).
    User,
    /// Graph `users/{id}/mailboxSettings`; id = user object id; value `{"userPurpose": ...}`
    /// or `{"noMailbox": true}` for a 404.
    Mailbox,
    /// Graph `groups`; id = object id. Value without `members@delta` / `owners@delta`.
    Group,
    /// A direct member of a group; id = `<groupId>/<memberId>`; value `{"@odata.type": ...}`.
    GroupMember,
    /// An owner of a group; id = `<groupId>/<ownerId>`; value `{"@odata.type": ...}`.
    GroupOwner,
    /// PIM for Groups eligibility; id = eligibility schedule id; value as Graph returns it.
    GroupEligibility,
    /// Graph `servicePrincipals`; id = object id.
    ServicePrincipal,
    /// An owner of a service principal; id = `<spId>/<ownerId>`; value `{"@odata.type": ...}`.
    ServicePrincipalOwner,
    /// `servicePrincipals/{id}/appRoleAssignedTo`; id = `<resourceSpId>/<assignmentId>`.
    AppRoleAssignment,
    /// `roleManagement/directory/roleDefinitions`; id = role definition id.
    DirectoryRoleDefinition,
    /// `roleManagement/directory/roleAssignments`; id = assignment id.
    DirectoryRoleAssignment,
    /// `roleManagement/directory/roleEligibilitySchedules`; id = schedule id.
    DirectoryRoleEligibility,
    /// ARM `managementGroups` (or entities); id = management group name. Value normalised from
    /// the `$expand=children&$recurse=true` tree: `{id, name, type, properties: {displayName,
    /// parent: {id, name} | null, children: [{id, name, type, displayName}]}}` (direct children,
    /// subscriptions included, so a subscription's parent is the group listing it).
    ManagementGroup,
    /// ARM `subscriptions`; id = subscription GUID.
    Subscription,
    /// ARM `resourcegroups`; id = `<subscriptionId>:<resourceGroupName>`.
    ResourceGroup,
    /// ARM `roleDefinitions`; id = `<subscriptionId>:<roleGuid>` (assignable in that subscription).
    RoleDefinition,
    /// ARM `roleAssignments`; id = the assignment's full ARM id, lower-cased.
    RoleAssignment,
    /// ARM `roleEligibilityScheduleInstances`; id = the full ARM id, lower-cased.
    RoleEligibility,
    /// ARM `storageAccounts`; id = `<subscriptionId>:<resourceGroupName>:<accountName>`.
    StorageAccount,
    /// ARM blob containers; id = `<storage account id>:<containerName>`.
    Container,
}

/// The address of one source item.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemKey {
    pub collection: Collection,
    pub id: String,
}

impl ItemKey {
    pub fn new(collection: Collection, id: impl Into<String>) -> ItemKey {
        ItemKey {
            collection,
            id: id.into(),
        }
    }
}

/// One change to the store's source items.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Put the whole item, replacing any stored one.
    Upsert { key: ItemKey, value: Value },
    /// Merge these top-level properties into the stored item (Graph `Prefer: return=minimal`);
    /// creates the item when it is absent.
    Merge { key: ItemKey, value: Value },
    /// The item is gone.
    Remove { key: ItemKey },
    /// Every item of `collection` whose id starts with `prefix` is gone (a deleted group's
    /// members and owners: prefix `<groupId>/`).
    RemovePrefix {
        collection: Collection,
        prefix: String,
    },
}
