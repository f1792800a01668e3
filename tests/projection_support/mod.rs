//! Shared by the projection tests: an in-memory item store that answers `ItemLookup` the way the
//! sled store does (reverse references from `projection::references`), and helpers to project
//! and inspect records.
#![allow(dead_code)] // each test crate uses a different part

use std::collections::{BTreeMap, BTreeSet};

use baton_azure_delta::item::{Collection, ItemKey};
use baton_azure_delta::model::projection::{self, ItemLookup, Origin, ProjectionOptions};
use baton_azure_delta::model::proto;
use baton_azure_delta::model::{Record, Table};
use serde_json::Value;

#[derive(Default, Clone)]
pub struct MemItems {
    items: BTreeMap<ItemKey, Value>,
    /// (collection, target) -> ids of the items naming target: the store's `ref` tree.
    refs: BTreeMap<(Collection, String), BTreeSet<String>>,
}

impl MemItems {
    pub fn put(&mut self, collection: Collection, id: &str, value: Value) -> &mut Self {
        self.set(ItemKey::new(collection, id), Some(value));
        self
    }

    pub fn remove(&mut self, collection: Collection, id: &str) -> &mut Self {
        self.set(ItemKey::new(collection, id), None);
        self
    }

    /// Puts (Some) or removes (None) an item, keeping the reverse references current.
    pub fn set(&mut self, key: ItemKey, value: Option<Value>) {
        if let Some(old) = self.items.remove(&key) {
            for target in projection::references(&key, &old) {
                if let Some(ids) = self.refs.get_mut(&(key.collection, target)) {
                    ids.remove(&key.id);
                }
            }
        }
        if let Some(value) = value {
            for target in projection::references(&key, &value) {
                self.refs
                    .entry((key.collection, target))
                    .or_default()
                    .insert(key.id.clone());
            }
            self.items.insert(key, value);
        }
    }

    pub fn get(&self, key: &ItemKey) -> Option<&Value> {
        self.items.get(key)
    }

    pub fn entries(&self) -> impl DoubleEndedIterator<Item = (&ItemKey, &Value)> {
        self.items.iter()
    }
}

impl ItemLookup for MemItems {
    fn item(&self, key: &ItemKey) -> Option<Value> {
        self.items.get(key).cloned()
    }

    fn ids(&self, collection: Collection, prefix: &str) -> Vec<String> {
        self.items
            .range(ItemKey::new(collection, prefix)..)
            .take_while(|(k, _)| k.collection == collection && k.id.starts_with(prefix))
            .map(|(k, _)| k.id.clone())
            .collect()
    }

    fn referencing(&self, target: &str, collection: Collection) -> Vec<String> {
        self.refs
            .get(&(collection, target.to_string()))
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// Every record of a full snapshot as `project_all` streams it, in its order.
pub fn streamed(items: &MemItems, options: &ProjectionOptions) -> Vec<Record> {
    let mut out = Vec::new();
    projection::project_all(items, options, &mut |record| {
        out.push(record);
        Ok(())
    })
    .expect("an in-memory projection does not fail");
    out
}

/// Every record of a full snapshot origin by origin: `project` over `all_origins`.
pub fn origin_by_origin(items: &MemItems, options: &ProjectionOptions) -> Vec<Record> {
    projection::all_origins(items)
        .iter()
        .flat_map(|origin| projection::project(origin, items, options))
        .collect()
}

/// Every record of a full snapshot, by (table, external id). Panics if two origins (or one origin
/// twice) produce the same record: every record has exactly one origin.
pub fn snapshot(
    items: &MemItems,
    options: &ProjectionOptions,
) -> BTreeMap<(Table, String), Record> {
    let mut out = BTreeMap::new();
    for origin in projection::all_origins(items) {
        for record in projection::project(&origin, items, options) {
            let key = (record.table(), record.external_id());
            assert!(
                out.insert(key.clone(), record).is_none(),
                "record {key:?} produced twice (second time by {origin:?})"
            );
        }
    }
    out
}

pub fn ids(snapshot: &BTreeMap<(Table, String), Record>, table: Table) -> BTreeSet<String> {
    snapshot
        .keys()
        .filter(|(t, _)| *t == table)
        .map(|(_, id)| id.clone())
        .collect()
}

pub fn resource<'a>(
    snapshot: &'a BTreeMap<(Table, String), Record>,
    external_id: &str,
) -> &'a proto::Resource {
    match snapshot.get(&(Table::Resources, external_id.to_string())) {
        Some(Record::Resource(r)) => r,
        other => panic!("no resource {external_id}: {other:?}"),
    }
}

pub fn entitlement<'a>(
    snapshot: &'a BTreeMap<(Table, String), Record>,
    external_id: &str,
) -> &'a proto::Entitlement {
    match snapshot.get(&(Table::Entitlements, external_id.to_string())) {
        Some(Record::Entitlement(e)) => e,
        other => panic!("no entitlement {external_id}: {other:?}"),
    }
}

pub fn grant<'a>(
    snapshot: &'a BTreeMap<(Table, String), Record>,
    external_id: &str,
) -> &'a proto::Grant {
    match snapshot.get(&(Table::Grants, external_id.to_string())) {
        Some(Record::Grant(g)) => g,
        other => panic!("no grant {external_id}: {other:?}"),
    }
}

/// The string values of a profile `Struct`.
pub fn profile_strings(profile: &proto::Struct) -> BTreeMap<String, String> {
    profile
        .fields
        .iter()
        .filter_map(|(k, v)| match &v.kind {
            Some(prost_types::value::Kind::StringValue(s)) => Some((k.clone(), s.clone())),
            _ => None,
        })
        .collect()
}

/// The origins' records kept incrementally the way the store does: after each change, re-project
/// the changed item and its dependents (evaluated before and after the change).
pub struct Incremental {
    pub items: MemItems,
    pub options: ProjectionOptions,
    records: BTreeMap<Origin, Vec<Record>>,
}

impl Incremental {
    pub fn new(items: MemItems, options: ProjectionOptions) -> Incremental {
        let records = projection::all_origins(&items)
            .into_iter()
            .map(|o| {
                let r = projection::project(&o, &items, &options);
                (o, r)
            })
            .collect();
        Incremental {
            items,
            options,
            records,
        }
    }

    /// Applies one change (Some = upsert, None = remove) and re-projects what it affects,
    /// skipping the dependents when `affects_dependents` says they cannot change.
    pub fn apply(&mut self, key: ItemKey, value: Option<Value>) {
        let before = self.items.get(&key).cloned();
        let mut affected: BTreeSet<Origin> = BTreeSet::new();
        let reaches = projection::affects_dependents(&key, before.as_ref(), value.as_ref());
        if reaches {
            affected.extend(projection::dependents(&key, &self.items));
        }
        self.items.set(key.clone(), value);
        if reaches {
            affected.extend(projection::dependents(&key, &self.items));
        }
        affected.insert(Origin::Item(key));
        for origin in affected {
            let records = projection::project(&origin, &self.items, &self.options);
            self.records.insert(origin, records);
        }
    }

    /// The records of every origin, by (table, external id), as bytes.
    pub fn current(&self) -> BTreeMap<(Table, String), Vec<u8>> {
        let mut out = BTreeMap::new();
        for records in self.records.values() {
            for r in records {
                let previous = out.insert((r.table(), r.external_id()), r.encode());
                assert!(previous.is_none(), "record {} twice", r.external_id());
            }
        }
        out
    }
}

pub fn encoded(snapshot: &BTreeMap<(Table, String), Record>) -> BTreeMap<(Table, String), Vec<u8>> {
    snapshot
        .iter()
        .map(|(k, r)| (k.clone(), r.encode()))
        .collect()
}

// ---- a small tenant, items shaped as Graph and ARM return them ----

pub const TENANT: &str = "11111111-1111-4111-8111-111111111111";
pub const ALICE: &str = "a0000000-0000-4000-8000-000000000001";
pub const BOB: &str = "b0000000-0000-4000-8000-000000000002";
pub const GUEST: &str = "c0000000-0000-4000-8000-000000000003";
pub const ROOM: &str = "d0000000-0000-4000-8000-000000000004";
pub const GHOST: &str = "d0000000-0000-4000-8000-0000000000ff";
pub const ENG: &str = "e1000000-0000-4000-8000-000000000001";
pub const ADG: &str = "e2000000-0000-4000-8000-000000000002";
pub const APP: &str = "f1000000-0000-4000-8000-000000000001";
pub const MI: &str = "f2000000-0000-4000-8000-000000000002";
pub const LEGACY: &str = "f3000000-0000-4000-8000-000000000003";
pub const APP_ROLE: &str = "9a000000-0000-4000-8000-0000000000a1";
pub const DEFAULT_ROLE: &str = "00000000-0000-0000-0000-000000000000";
pub const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";
pub const USER_ADMIN: &str = "fe930be7-5e62-47db-91af-98c3a49a38b1";
pub const SUB: &str = "aaaa0000-0000-4000-8000-00000000000a";
pub const READER: &str = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
pub const CONTRIBUTOR: &str = "b24988ac-6180-42a0-ab88-20f7382dd24c";
pub const OWNER: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
pub const KEY_VAULT_SCOPE: &str = "/subscriptions/aaaa0000-0000-4000-8000-00000000000a/resourceGroups/RG-Web/providers/Microsoft.KeyVault/vaults/kv-prod";

pub fn member(odata: &str) -> Value {
    serde_json::json!({ "@odata.type": format!("#microsoft.graph.{odata}") })
}

pub fn user(id: &str, name: &str, upn: &str, mail: Option<&str>) -> Value {
    serde_json::json!({
        "id": id, "displayName": name, "userPrincipalName": upn, "mail": mail,
        "accountEnabled": true, "userType": "Member", "givenName": name, "surname": "Example",
        "createdDateTime": "2024-03-01T09:30:00Z", "employeeId": format!("E-{name}"),
    })
}

pub fn role_definition_arm(guid: &str, name: &str) -> Value {
    serde_json::json!({
        "id": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
        "name": guid, "type": "Microsoft.Authorization/roleDefinitions",
        "properties": { "roleName": name, "type": "BuiltInRole", "description": format!("{name} role"),
                        "assignableScopes": ["/"] }
    })
}

/// An ARM role assignment (or eligibility instance) as `roleAssignments` lists it.
pub fn arm_assignment(
    scope: &str,
    name: &str,
    role: &str,
    principal: &str,
    principal_type: &str,
) -> (String, Value) {
    let id = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{name}",
        scope.trim_end_matches('/')
    );
    let value = serde_json::json!({
        "id": id, "name": name, "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": format!("/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            "principalId": principal, "principalType": principal_type, "scope": scope,
        }
    });
    (id.to_ascii_lowercase(), value)
}

pub fn tenant() -> MemItems {
    use serde_json::json;
    let mut m = MemItems::default();
    m.put(
        Collection::Organization,
        TENANT,
        json!({
            "id": TENANT, "displayName": "Contoso",
            "verifiedDomains": [{"name": "contoso.onmicrosoft.com", "isDefault": true}]
        }),
    );
    let mut alice = user(
        ALICE,
        "Alice",
        "alice@contoso.com",
        Some("alice@contoso.com"),
    );
    alice["manager@delta"] = json!([{"@odata.type": "#microsoft.graph.user", "id": BOB}]);
    alice["signInActivity"] = json!({"lastSignInDateTime": "2025-01-02T03:04:05Z"});
    m.put(Collection::User, ALICE, alice);
    m.put(
        Collection::User,
        BOB,
        user(BOB, "Bob", "bob@contoso.com", None),
    );
    let mut guest = user(
        GUEST,
        "Guest",
        "guest_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        None,
    );
    guest["userType"] = json!("Guest");
    m.put(Collection::User, GUEST, guest);
    m.put(
        Collection::User,
        ROOM,
        user(
            ROOM,
            "Room 1",
            "room1@contoso.com",
            Some("room1@contoso.com"),
        ),
    );
    m.put(Collection::Mailbox, ROOM, json!({"userPurpose": "room"}));
    m.put(Collection::Mailbox, BOB, json!({"noMailbox": true}));
    m.put(
        Collection::Group,
        ENG,
        json!({
            "id": ENG, "displayName": "Engineering", "description": "Builds things",
            "securityEnabled": true, "mailEnabled": false, "groupTypes": []
        }),
    );
    m.put(
        Collection::Group,
        ADG,
        json!({
            "id": ADG, "displayName": "On-prem admins", "securityEnabled": true,
            "onPremisesSyncEnabled": true, "groupTypes": []
        }),
    );
    for (id, odata) in [
        (ALICE, "user"),
        (ADG, "group"),
        (APP, "servicePrincipal"),
        (MI, "servicePrincipal"),
        (LEGACY, "servicePrincipal"),
        (GHOST, "user"),
    ] {
        m.put(
            Collection::GroupMember,
            &format!("{ENG}/{id}"),
            member(odata),
        );
    }
    m.put(
        Collection::GroupMember,
        &format!("{ADG}/{BOB}"),
        member("user"),
    );
    m.put(
        Collection::GroupOwner,
        &format!("{ENG}/{BOB}"),
        member("user"),
    );
    m.put(
        Collection::ServicePrincipal,
        APP,
        json!({
            "id": APP, "appId": "0a000000-0000-4000-8000-000000000001", "displayName": "Payroll",
            "servicePrincipalType": "Application", "accountEnabled": true,
            "appRoles": [{"id": APP_ROLE, "displayName": "Approver", "value": "approver",
                          "allowedMemberTypes": ["User"], "isEnabled": true}]
        }),
    );
    m.put(
        Collection::ServicePrincipal,
        MI,
        json!({
            "id": MI, "appId": "0a000000-0000-4000-8000-000000000002", "displayName": "vm-identity",
            "servicePrincipalType": "ManagedIdentity", "accountEnabled": true, "appRoles": []
        }),
    );
    m.put(
        Collection::ServicePrincipal,
        LEGACY,
        json!({
            "id": LEGACY, "displayName": "old", "servicePrincipalType": "Legacy", "appRoles": []
        }),
    );
    m.put(
        Collection::ServicePrincipalOwner,
        &format!("{APP}/{ALICE}"),
        member("user"),
    );
    m.put(
        Collection::AppRoleAssignment,
        &format!("{APP}/asg-1"),
        json!({
            "id": "asg-1", "appRoleId": APP_ROLE, "principalId": ENG, "principalType": "Group",
            "resourceId": APP, "principalDisplayName": "Engineering"
        }),
    );
    m.put(
        Collection::AppRoleAssignment,
        &format!("{APP}/asg-2"),
        json!({
            "id": "asg-2", "appRoleId": DEFAULT_ROLE, "principalId": ALICE, "principalType": "User",
            "resourceId": APP
        }),
    );
    m.put(
        Collection::DirectoryRoleDefinition,
        GLOBAL_ADMIN,
        json!({
            "id": GLOBAL_ADMIN, "displayName": "Global Administrator", "isBuiltIn": true,
            "isEnabled": true, "templateId": GLOBAL_ADMIN
        }),
    );
    m.put(
        Collection::DirectoryRoleDefinition,
        USER_ADMIN,
        json!({
            "id": USER_ADMIN, "displayName": "User Administrator", "isBuiltIn": true,
            "isEnabled": true, "templateId": USER_ADMIN
        }),
    );
    m.put(Collection::DirectoryRoleAssignment, "dra-1", json!({
        "id": "dra-1", "roleDefinitionId": GLOBAL_ADMIN, "principalId": ALICE, "directoryScopeId": "/"
    }));
    m.put(
        Collection::DirectoryRoleAssignment,
        "dra-2",
        json!({
            "id": "dra-2", "roleDefinitionId": USER_ADMIN, "principalId": BOB,
            "directoryScopeId": "/administrativeUnits/au-2"
        }),
    );
    m.put(
        Collection::DirectoryRoleAssignment,
        "dra-3",
        json!({
            "id": "dra-3", "roleDefinitionId": USER_ADMIN, "principalId": BOB,
            "directoryScopeId": "/administrativeUnits/au-1"
        }),
    );
    // A role-assignable group holding a directory role: the assignment does not say it is a group.
    m.put(Collection::DirectoryRoleAssignment, "dra-4", json!({
        "id": "dra-4", "roleDefinitionId": GLOBAL_ADMIN, "principalId": ENG, "directoryScopeId": "/"
    }));
    m.put(Collection::DirectoryRoleEligibility, "dre-1", json!({
        "id": "dre-1", "roleDefinitionId": GLOBAL_ADMIN, "principalId": BOB, "directoryScopeId": "/",
        "memberType": "Direct"
    }));
    m.put(Collection::GroupEligibility, "ge-1", json!({
        "id": "ge-1", "groupId": ENG, "principalId": BOB, "accessId": "member", "memberType": "direct",
        "status": "Provisioned"
    }));
    // ARM
    m.put(Collection::ManagementGroup, TENANT, json!({
        "id": format!("/providers/Microsoft.Management/managementGroups/{TENANT}"), "name": TENANT,
        "type": "Microsoft.Management/managementGroups",
        "properties": {"tenantId": TENANT, "displayName": "Tenant Root Group", "details": {"parent": null}}
    }));
    m.put(Collection::ManagementGroup, "Prod", json!({
        "id": "/providers/Microsoft.Management/managementGroups/Prod", "name": "Prod",
        "type": "Microsoft.Management/managementGroups",
        "properties": {"tenantId": TENANT, "displayName": "Production",
            "details": {"parent": {"id": format!("/providers/Microsoft.Management/managementGroups/{TENANT}"),
                                    "name": TENANT, "displayName": "Tenant Root Group"}},
            "children": [{"id": format!("/subscriptions/{SUB}"), "type": "/subscriptions", "name": SUB,
                          "displayName": "Prod subscription"}]}
    }));
    m.put(
        Collection::Subscription,
        SUB,
        json!({
            "id": format!("/subscriptions/{SUB}"), "subscriptionId": SUB, "tenantId": TENANT,
            "displayName": "Prod subscription", "state": "Enabled"
        }),
    );
    m.put(
        Collection::ResourceGroup,
        &format!("{SUB}:RG-Web"),
        json!({
            "id": format!("/subscriptions/{SUB}/resourceGroups/RG-Web"), "name": "RG-Web",
            "type": "Microsoft.Resources/resourceGroups", "location": "westeurope",
            "properties": {"provisioningState": "Succeeded"}
        }),
    );
    m.put(Collection::StorageAccount, &format!("{SUB}:RG-Web:stweb"), json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/RG-Web/providers/Microsoft.Storage/storageAccounts/stweb"),
        "name": "stweb", "type": "Microsoft.Storage/storageAccounts", "kind": "StorageV2",
        "location": "westeurope", "sku": {"name": "Standard_LRS", "tier": "Standard"}
    }));
    m.put(Collection::Container, &format!("{SUB}:RG-Web:stweb:logs"), json!({
        "id": format!("/subscriptions/{SUB}/resourceGroups/RG-Web/providers/Microsoft.Storage/storageAccounts/stweb/blobServices/default/containers/logs"),
        "name": "logs", "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
        "properties": {"publicAccess": "None"}
    }));
    for (guid, name) in [
        (READER, "Reader"),
        (CONTRIBUTOR, "Contributor"),
        (OWNER, "Owner"),
    ] {
        m.put(
            Collection::RoleDefinition,
            &format!("{SUB}:{guid}"),
            role_definition_arm(guid, name),
        );
    }
    let sub_scope = format!("/subscriptions/{SUB}");
    let assignments = [
        arm_assignment(&sub_scope, "ra-sub-alice", CONTRIBUTOR, ALICE, "User"),
        // ARM spells the resource group in lower case here; it is still RG-Web.
        arm_assignment(
            &format!("/subscriptions/{SUB}/resourcegroups/rg-web"),
            "ra-rg-eng",
            READER,
            ENG,
            "Group",
        ),
        arm_assignment(KEY_VAULT_SCOPE, "ra-kv-mi", OWNER, MI, "ServicePrincipal"),
        arm_assignment("/", "ra-root-bob", OWNER, BOB, "User"),
        arm_assignment(
            "/providers/Microsoft.Management/managementGroups/Prod",
            "ra-mg-adg",
            READER,
            ADG,
            "Group",
        ),
        arm_assignment(
            &format!(
                "/subscriptions/{SUB}/resourceGroups/RG-Web/providers/Microsoft.Storage/storageAccounts/stweb/blobServices/default/containers/logs"
            ),
            "ra-logs-alice",
            READER,
            ALICE,
            "User",
        ),
    ];
    for (id, value) in assignments {
        m.put(Collection::RoleAssignment, &id, value);
    }
    let (id, mut value) = arm_assignment(&sub_scope, "re-sub-bob", OWNER, BOB, "User");
    let id = id.replace("roleassignments", "roleeligibilityscheduleinstances");
    value["type"] = serde_json::json!("Microsoft.Authorization/roleEligibilityScheduleInstances");
    m.put(Collection::RoleEligibility, &id, value);
    m
}
