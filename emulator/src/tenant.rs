//! The emulated tenant: every Entra ID and Azure object the emulator serves, and the change
//! journal that Graph delta queries are answered from.
//!
//! All state lives in plain collections keyed by id (BTreeMaps, so listings have a stable order
//! that `$skiptoken`s can resume from). Mutations of delta-tracked objects (users, groups,
//! service principals, activated directory roles) and of group / directory-role links go through
//! the methods here, which stamp each change with the next journal `seq`. Objects present when the
//! tenant was generated carry no journal entry: they exist at seq 0.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use time::OffsetDateTime;
use uuid::Uuid;

/// The tenant root: Graph `organization` and ARM `tenants`.
#[derive(Debug, Clone)]
pub struct Organization {
    pub tenant_id: Uuid,
    pub display_name: String,
    /// The first one is the initial `*.onmicrosoft.com` domain.
    pub verified_domains: Vec<String>,
    pub has_p2_license: bool,
    pub created: OffsetDateTime,
}

/// What kind of mailbox a user has; `None` makes `users/{id}/mailboxSettings` answer 404.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mailbox {
    None,
    User,
    Shared,
    Room,
    Equipment,
    Linked,
    Others,
}

impl Mailbox {
    /// Graph's `userPurpose` value, `None` for users without a mailbox.
    pub fn user_purpose(self) -> Option<&'static str> {
        match self {
            Mailbox::None => None,
            Mailbox::User => Some("user"),
            Mailbox::Shared => Some("shared"),
            Mailbox::Room => Some("room"),
            Mailbox::Equipment => Some("equipment"),
            Mailbox::Linked => Some("linked"),
            Mailbox::Others => Some("others"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserType {
    Member,
    Guest,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Member => "Member",
            UserType::Guest => "Guest",
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub user_principal_name: String,
    pub mail: Option<String>,
    pub display_name: String,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub account_enabled: bool,
    pub user_type: UserType,
    pub employee_id: Option<String>,
    pub created: OffsetDateTime,
    pub manager: Option<Uuid>,
    pub on_premises_sync_enabled: bool,
    pub mailbox: Mailbox,
    /// `signInActivity.lastSignInDateTime`; only served to tenants with P1/P2.
    pub last_sign_in: Option<OffsetDateTime>,
    /// Set while the user sits in the deleted-items bin.
    pub deleted: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: Uuid,
    pub display_name: String,
    pub description: Option<String>,
    pub mail_enabled: bool,
    pub security_enabled: bool,
    /// `["Unified"]` for Microsoft 365 groups, empty for security groups.
    pub group_types: Vec<String>,
    pub on_premises_sync_enabled: bool,
    pub created: OffsetDateTime,
    /// Directory object ids of direct members (users, groups, service principals), in the
    /// order they were added.
    pub members: Vec<Uuid>,
    pub owners: Vec<Uuid>,
    pub deleted: Option<OffsetDateTime>,
}

impl Group {
    /// Only Microsoft 365 groups go to the deleted-items bin; security groups are deleted for good.
    pub fn is_unified(&self) -> bool {
        self.group_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case("Unified"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServicePrincipalType {
    Application,
    ManagedIdentity,
    Legacy,
}

impl ServicePrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServicePrincipalType::Application => "Application",
            ServicePrincipalType::ManagedIdentity => "ManagedIdentity",
            ServicePrincipalType::Legacy => "Legacy",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppRole {
    pub id: Uuid,
    pub display_name: String,
    pub description: String,
    pub value: Option<String>,
    /// "User", "Application", or both.
    pub allowed_member_types: Vec<String>,
    pub is_enabled: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    User,
    Group,
    ServicePrincipal,
}

impl PrincipalKind {
    /// Graph's `principalType` spelling on appRoleAssignment.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "User",
            PrincipalKind::Group => "Group",
            PrincipalKind::ServicePrincipal => "ServicePrincipal",
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppRoleAssignment {
    /// Graph's appRoleAssignment ids are opaque base64url strings, not GUIDs.
    pub id: String,
    pub principal_id: Uuid,
    pub principal_type: PrincipalKind,
    pub principal_display_name: String,
    pub resource_id: Uuid,
    pub resource_display_name: String,
    /// The all-zero GUID is the default role.
    pub app_role_id: Uuid,
    pub created: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct ServicePrincipal {
    pub id: Uuid,
    pub app_id: Uuid,
    pub display_name: String,
    pub service_principal_type: ServicePrincipalType,
    pub app_roles: Vec<AppRole>,
    pub account_enabled: bool,
    pub app_owner_organization_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub homepage: Option<String>,
    pub owners: Vec<Uuid>,
    pub created: OffsetDateTime,
    /// `servicePrincipals/{id}/appRoleAssignedTo`: assignments of this app's roles.
    pub app_role_assigned_to: Vec<AppRoleAssignment>,
}

/// The all-zero app role id Graph uses for "default access".
pub const DEFAULT_APP_ROLE_ID: Uuid = Uuid::nil();

#[derive(Debug, Clone)]
pub struct DirectoryRoleDefinition {
    /// For built-in roles the id equals the template id.
    pub id: Uuid,
    pub display_name: String,
    pub description: String,
    pub is_built_in: bool,
    pub template_id: Uuid,
}

/// An active `roleManagement/directory/roleAssignments` entry.
#[derive(Debug, Clone)]
pub struct DirectoryRoleAssignment {
    /// Graph spells these as opaque strings (base64url plus a suffix), not GUIDs.
    pub id: String,
    pub role_definition_id: Uuid,
    pub principal_id: Uuid,
    /// `/` for the whole tenant, `/administrativeUnits/{id}` or `/{appObjectId}` when scoped.
    pub directory_scope_id: String,
    pub created: OffsetDateTime,
}

/// PIM schedule timing (`scheduleInfo`).
#[derive(Debug, Clone)]
pub struct ScheduleInfo {
    pub start: OffsetDateTime,
    /// `None` means `expiration.type = noExpiration`.
    pub end: Option<OffsetDateTime>,
}

#[derive(Debug, Clone)]
pub struct DirectoryRoleEligibility {
    pub id: Uuid,
    /// The id of the matching `roleEligibilityScheduleInstances` entry.
    pub instance_id: Uuid,
    pub role_definition_id: Uuid,
    pub principal_id: Uuid,
    pub directory_scope_id: String,
    /// "Direct" or "Group".
    pub member_type: String,
    /// "Provisioned" for live schedules.
    pub status: String,
    pub schedule: ScheduleInfo,
    pub created: OffsetDateTime,
}

/// An activated directory role (`directoryRoles`, tracked by `directoryRoles/delta`).
#[derive(Debug, Clone)]
pub struct DirectoryRole {
    pub id: Uuid,
    pub role_template_id: Uuid,
    pub display_name: String,
    pub description: String,
    pub members: Vec<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupAccess {
    Member,
    Owner,
}

impl GroupAccess {
    /// Graph's `accessId` value.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupAccess::Member => "member",
            GroupAccess::Owner => "owner",
        }
    }
}

/// PIM for Groups eligibility (`identityGovernance/privilegedAccess/group/eligibilitySchedules`).
#[derive(Debug, Clone)]
pub struct GroupEligibility {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub group_id: Uuid,
    pub principal_id: Uuid,
    pub access: GroupAccess,
    pub member_type: String,
    pub status: String,
    pub schedule: ScheduleInfo,
    pub created: OffsetDateTime,
}

// ---- Azure Resource Manager ----

#[derive(Debug, Clone)]
pub struct ManagementGroup {
    /// The last segment of its ARM id; the root's name is the tenant id.
    pub name: String,
    pub display_name: String,
    /// `None` only for the tenant root group.
    pub parent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: Uuid,
    pub display_name: String,
    /// "Enabled", "Disabled", "Warned", "PastDue" or "Deleted".
    pub state: String,
    /// The management group name it sits under.
    pub management_group: String,
}

#[derive(Debug, Clone)]
pub struct ResourceGroup {
    pub subscription: Uuid,
    /// As created; ARM compares resource group names case-insensitively.
    pub name: String,
    pub location: String,
}

#[derive(Debug, Clone)]
pub struct StorageAccount {
    pub subscription: Uuid,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    /// "StorageV2", "BlobStorage", ...
    pub kind: String,
    /// "Standard_LRS", ...
    pub sku: String,
    pub containers: Vec<String>,
}

/// Any other ARM resource (key vaults, VMs): only emitted when it holds a role assignment.
#[derive(Debug, Clone)]
pub struct ArmResource {
    pub subscription: Uuid,
    pub resource_group: String,
    /// The id after `/providers/`, e.g. `Microsoft.KeyVault/vaults/kv-prod`.
    pub provider_tail: String,
    pub location: String,
}

impl ArmResource {
    /// ARM's `type`, e.g. `Microsoft.KeyVault/vaults`.
    pub fn resource_type(&self) -> String {
        let parts: Vec<&str> = self.provider_tail.split('/').collect();
        let mut out = parts.first().copied().unwrap_or_default().to_string();
        for segment in parts.iter().skip(1).step_by(2) {
            out.push('/');
            out.push_str(segment);
        }
        out
    }

    pub fn name(&self) -> &str {
        self.provider_tail.rsplit('/').next().unwrap_or_default()
    }

    pub fn arm_id(&self) -> String {
        format!(
            "{}/providers/{}",
            resource_group_scope(self.subscription, &self.resource_group),
            self.provider_tail
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleType {
    BuiltIn,
    Custom,
}

#[derive(Debug, Clone)]
pub struct RoleDefinition {
    /// The GUID that ends its ARM id.
    pub id: Uuid,
    pub role_name: String,
    pub description: String,
    pub role_type: RoleType,
    pub actions: Vec<String>,
    pub data_actions: Vec<String>,
    /// Built-in roles are assignable at `/`; custom roles list their scopes.
    pub assignable_scopes: Vec<String>,
}

/// ARM's `principalType` on role assignments and eligibilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArmPrincipalType {
    User,
    Group,
    ServicePrincipal,
    ForeignGroup,
    Device,
}

impl ArmPrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            ArmPrincipalType::User => "User",
            ArmPrincipalType::Group => "Group",
            ArmPrincipalType::ServicePrincipal => "ServicePrincipal",
            ArmPrincipalType::ForeignGroup => "ForeignGroup",
            ArmPrincipalType::Device => "Device",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            ArmPrincipalType::User,
            ArmPrincipalType::Group,
            ArmPrincipalType::ServicePrincipal,
            ArmPrincipalType::ForeignGroup,
            ArmPrincipalType::Device,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(text))
    }
}

#[derive(Debug, Clone)]
pub struct RoleAssignment {
    /// The assignment's `name` (a GUID).
    pub name: Uuid,
    /// The ARM scope as ARM spells it: `/`, `/providers/Microsoft.Management/managementGroups/x`,
    /// `/subscriptions/s`, `/subscriptions/s/resourceGroups/rg`, or a resource id.
    pub scope: String,
    pub role_definition: Uuid,
    pub principal_id: Uuid,
    pub principal_type: ArmPrincipalType,
    pub created: OffsetDateTime,
    pub created_by: Uuid,
}

/// ARM PIM eligibility (`roleEligibilitySchedules`; instances share the data).
#[derive(Debug, Clone)]
pub struct RoleEligibility {
    pub name: Uuid,
    pub instance_name: Uuid,
    pub scope: String,
    pub role_definition: Uuid,
    pub principal_id: Uuid,
    pub principal_type: ArmPrincipalType,
    pub member_type: String,
    pub status: String,
    pub schedule: ScheduleInfo,
    pub created: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct ActivityLogEvent {
    pub event_data_id: Uuid,
    pub correlation_id: Uuid,
    pub subscription: Uuid,
    /// e.g. `Microsoft.Authorization/roleAssignments/write`.
    pub operation_name: String,
    pub resource_provider: String,
    /// The role assignment's ARM id.
    pub resource_id: String,
    /// "Started" or "Succeeded".
    pub status: String,
    pub caller: String,
    pub event_timestamp: OffsetDateTime,
    /// Activity Log entries become visible only later; queries must not see them before this.
    pub submission_timestamp: OffsetDateTime,
}

pub fn subscription_scope(subscription: Uuid) -> String {
    format!("/subscriptions/{subscription}")
}

pub fn resource_group_scope(subscription: Uuid, resource_group: &str) -> String {
    format!("/subscriptions/{subscription}/resourceGroups/{resource_group}")
}

pub fn management_group_scope(name: &str) -> String {
    format!("/providers/Microsoft.Management/managementGroups/{name}")
}

pub fn storage_account_scope(account: &StorageAccount) -> String {
    format!(
        "{}/providers/Microsoft.Storage/storageAccounts/{}",
        resource_group_scope(account.subscription, &account.resource_group),
        account.name
    )
}

pub fn container_scope(account: &StorageAccount, container: &str) -> String {
    format!(
        "{}/blobServices/default/containers/{container}",
        storage_account_scope(account)
    )
}

// ---- The change journal ----

/// The collections Graph delta follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeltaKind {
    User,
    Group,
    ServicePrincipal,
    DirectoryRole,
}

impl DeltaKind {
    pub const ALL: [DeltaKind; 4] = [
        DeltaKind::User,
        DeltaKind::Group,
        DeltaKind::ServicePrincipal,
        DeltaKind::DirectoryRole,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectChange {
    Created,
    /// The Graph property names that changed.
    Updated(Vec<&'static str>),
    /// Moved to deleted items: delta reports `@removed: {"reason": "changed"}`.
    SoftDeleted,
    /// Back from deleted items: delta reports it like a new object.
    Restored,
    /// Gone for good: delta reports `@removed: {"reason": "deleted"}`.
    HardDeleted,
}

#[derive(Debug, Clone)]
pub struct ObjectChangeEntry {
    pub seq: u64,
    pub id: Uuid,
    pub change: ObjectChange,
}

/// Which link list of a group or directory role changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkRelation {
    Member,
    Owner,
}

#[derive(Debug, Clone)]
pub struct LinkChangeEntry {
    pub seq: u64,
    pub container_kind: DeltaKind,
    /// The group or directory role whose link list changed.
    pub container: Uuid,
    pub relation: LinkRelation,
    pub target: Uuid,
    pub added: bool,
}

/// Every change to delta-tracked objects and links since the tenant was generated, in `seq`
/// order. Entries are never rewritten, so a delta token's seq always names a consistent point.
#[derive(Debug, Default)]
pub struct Journal {
    last_seq: u64,
    objects: [Vec<ObjectChangeEntry>; 4],
    links: Vec<LinkChangeEntry>,
    /// Positions in `links` per container, for "membership changes of group G after S".
    links_by_container: HashMap<Uuid, Vec<usize>>,
}

impl Journal {
    /// The seq of the latest change; 0 for a freshly generated tenant.
    pub fn current_seq(&self) -> u64 {
        self.last_seq
    }

    fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    fn record_object(&mut self, kind: DeltaKind, id: Uuid, change: ObjectChange) {
        let seq = self.next_seq();
        self.objects[kind.index()].push(ObjectChangeEntry { seq, id, change });
    }

    fn record_link(
        &mut self,
        container_kind: DeltaKind,
        container: Uuid,
        relation: LinkRelation,
        target: Uuid,
        added: bool,
    ) {
        let seq = self.next_seq();
        self.links_by_container
            .entry(container)
            .or_default()
            .push(self.links.len());
        self.links.push(LinkChangeEntry {
            seq,
            container_kind,
            container,
            relation,
            target,
            added,
        });
    }

    /// Object changes of `kind` with seq > `after`, in seq order.
    pub fn objects_changed_after(&self, kind: DeltaKind, after: u64) -> &[ObjectChangeEntry] {
        let entries = &self.objects[kind.index()];
        &entries[entries.partition_point(|e| e.seq <= after)..]
    }

    /// Link changes (of every container) with seq > `after`, in seq order.
    pub fn link_changes_after(&self, after: u64) -> &[LinkChangeEntry] {
        &self.links[self.links.partition_point(|e| e.seq <= after)..]
    }

    /// Link changes of one group or directory role with seq > `after`, in seq order.
    pub fn link_changes_of(
        &self,
        container: Uuid,
        after: u64,
    ) -> impl Iterator<Item = &LinkChangeEntry> + '_ {
        let positions = self
            .links_by_container
            .get(&container)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let start = positions.partition_point(|&p| self.links[p].seq <= after);
        positions[start..].iter().map(|&p| &self.links[p])
    }

    /// The containers of `kind` that changed after `after` (their own properties or their
    /// links), each once, ordered by the seq of its latest change, as delta lists them.
    pub fn containers_changed_after(&self, kind: DeltaKind, after: u64) -> Vec<Uuid> {
        let mut latest: HashMap<Uuid, u64> = HashMap::new();
        for entry in self.objects_changed_after(kind, after) {
            latest.insert(entry.id, entry.seq);
        }
        for entry in self.link_changes_after(after) {
            if entry.container_kind == kind {
                latest.insert(entry.container, entry.seq);
            }
        }
        let mut ordered: Vec<(u64, Uuid)> = latest.into_iter().map(|(id, s)| (s, id)).collect();
        ordered.sort_unstable();
        ordered.into_iter().map(|(_, id)| id).collect()
    }
}

// ---- The tenant ----

/// What a directory object id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectoryObjectKind {
    User,
    Group,
    ServicePrincipal,
}

/// Why a mutation was refused; handlers map these to Graph or ARM errors.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("no {kind} with id {id}")]
    NotFound { kind: &'static str, id: String },
    #[error("{kind} {id} already exists")]
    AlreadyExists { kind: &'static str, id: String },
    #[error("{target} is already a {relation} of {container}")]
    LinkExists {
        container: Uuid,
        target: Uuid,
        relation: &'static str,
    },
    #[error("{target} is not a {relation} of {container}")]
    LinkMissing {
        container: Uuid,
        target: Uuid,
        relation: &'static str,
    },
    #[error("{kind} {id} is not in deleted items")]
    NotDeleted { kind: &'static str, id: Uuid },
    #[error("invalid change: {0}")]
    Invalid(String),
}

#[derive(Debug)]
pub struct Tenant {
    pub organization: Organization,
    /// The app registration the emulator's client credentials belong to.
    pub client_app_id: Uuid,
    pub client_secret: String,
    pub users: BTreeMap<Uuid, User>,
    pub groups: BTreeMap<Uuid, Group>,
    pub service_principals: BTreeMap<Uuid, ServicePrincipal>,
    pub directory_role_definitions: BTreeMap<Uuid, DirectoryRoleDefinition>,
    pub directory_role_assignments: BTreeMap<String, DirectoryRoleAssignment>,
    pub directory_role_eligibilities: BTreeMap<Uuid, DirectoryRoleEligibility>,
    /// Activated directory roles, keyed by their own id (not the template id).
    pub directory_roles: BTreeMap<Uuid, DirectoryRole>,
    pub group_eligibilities: BTreeMap<Uuid, GroupEligibility>,
    pub management_groups: BTreeMap<String, ManagementGroup>,
    pub subscriptions: BTreeMap<Uuid, Subscription>,
    /// Keyed by (subscription, lower-cased name) since ARM names are case-insensitive.
    pub resource_groups: BTreeMap<(Uuid, String), ResourceGroup>,
    /// Keyed by (subscription, lower-cased resource group, lower-cased account name).
    pub storage_accounts: BTreeMap<(Uuid, String, String), StorageAccount>,
    /// Keyed by lower-cased ARM id.
    pub arm_resources: BTreeMap<String, ArmResource>,
    pub role_definitions: BTreeMap<Uuid, RoleDefinition>,
    pub role_assignments: BTreeMap<Uuid, RoleAssignment>,
    pub role_eligibilities: BTreeMap<Uuid, RoleEligibility>,
    /// In event-timestamp order.
    pub activity_log: Vec<ActivityLogEvent>,
    pub journal: Journal,
}

fn not_found(kind: &'static str, id: impl ToString) -> TenantError {
    TenantError::NotFound {
        kind,
        id: id.to_string(),
    }
}

impl Tenant {
    /// An empty tenant: the generator fills it.
    pub fn new(organization: Organization, client_app_id: Uuid, client_secret: String) -> Self {
        Tenant {
            organization,
            client_app_id,
            client_secret,
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            service_principals: BTreeMap::new(),
            directory_role_definitions: BTreeMap::new(),
            directory_role_assignments: BTreeMap::new(),
            directory_role_eligibilities: BTreeMap::new(),
            directory_roles: BTreeMap::new(),
            group_eligibilities: BTreeMap::new(),
            management_groups: BTreeMap::new(),
            subscriptions: BTreeMap::new(),
            resource_groups: BTreeMap::new(),
            storage_accounts: BTreeMap::new(),
            arm_resources: BTreeMap::new(),
            role_definitions: BTreeMap::new(),
            role_assignments: BTreeMap::new(),
            role_eligibilities: BTreeMap::new(),
            activity_log: Vec::new(),
            journal: Journal::default(),
        }
    }

    pub fn tenant_id(&self) -> Uuid {
        self.organization.tenant_id
    }

    /// What a live (not soft-deleted) directory object id names.
    pub fn directory_object_kind(&self, id: Uuid) -> Option<DirectoryObjectKind> {
        if self.users.get(&id).is_some_and(|u| u.deleted.is_none()) {
            Some(DirectoryObjectKind::User)
        } else if self.groups.get(&id).is_some_and(|g| g.deleted.is_none()) {
            Some(DirectoryObjectKind::Group)
        } else if self.service_principals.contains_key(&id) {
            Some(DirectoryObjectKind::ServicePrincipal)
        } else {
            None
        }
    }

    /// The display name of a live directory object.
    pub fn directory_object_name(&self, id: Uuid) -> Option<&str> {
        match self.directory_object_kind(id)? {
            DirectoryObjectKind::User => self.users.get(&id).map(|u| u.display_name.as_str()),
            DirectoryObjectKind::Group => self.groups.get(&id).map(|g| g.display_name.as_str()),
            DirectoryObjectKind::ServicePrincipal => self
                .service_principals
                .get(&id)
                .map(|s| s.display_name.as_str()),
        }
    }

    pub fn live_users(&self) -> impl Iterator<Item = &User> + '_ {
        self.users.values().filter(|u| u.deleted.is_none())
    }

    pub fn live_groups(&self) -> impl Iterator<Item = &Group> + '_ {
        self.groups.values().filter(|g| g.deleted.is_none())
    }

    /// The live groups a directory object is a direct member of.
    pub fn groups_of(&self, member: Uuid) -> Vec<Uuid> {
        self.live_groups()
            .filter(|g| g.members.contains(&member))
            .map(|g| g.id)
            .collect()
    }

    // -- users --

    pub fn create_user(&mut self, user: User) -> Result<(), TenantError> {
        if self.directory_object_exists(user.id) {
            return Err(TenantError::AlreadyExists {
                kind: "user",
                id: user.id.to_string(),
            });
        }
        let id = user.id;
        self.users.insert(id, user);
        self.journal
            .record_object(DeltaKind::User, id, ObjectChange::Created);
        Ok(())
    }

    /// Changes a live user; `properties` are the Graph property names `edit` touches.
    pub fn update_user(
        &mut self,
        id: Uuid,
        properties: &[&'static str],
        edit: impl FnOnce(&mut User),
    ) -> Result<(), TenantError> {
        let user = self
            .users
            .get_mut(&id)
            .filter(|u| u.deleted.is_none())
            .ok_or_else(|| not_found("user", id))?;
        edit(user);
        self.journal.record_object(
            DeltaKind::User,
            id,
            ObjectChange::Updated(properties.to_vec()),
        );
        Ok(())
    }

    /// Moves a user to deleted items; its group memberships stay, as in Entra ID.
    pub fn soft_delete_user(&mut self, id: Uuid, now: OffsetDateTime) -> Result<(), TenantError> {
        let user = self
            .users
            .get_mut(&id)
            .filter(|u| u.deleted.is_none())
            .ok_or_else(|| not_found("user", id))?;
        user.deleted = Some(now);
        self.journal
            .record_object(DeltaKind::User, id, ObjectChange::SoftDeleted);
        Ok(())
    }

    pub fn restore_user(&mut self, id: Uuid) -> Result<(), TenantError> {
        let user = self
            .users
            .get_mut(&id)
            .ok_or_else(|| not_found("user", id))?;
        if user.deleted.is_none() {
            return Err(TenantError::NotDeleted { kind: "user", id });
        }
        user.deleted = None;
        self.journal
            .record_object(DeltaKind::User, id, ObjectChange::Restored);
        Ok(())
    }

    /// Removes a user for good (live or from deleted items), with every link and assignment
    /// that names it.
    pub fn hard_delete_user(&mut self, id: Uuid) -> Result<(), TenantError> {
        if self.users.remove(&id).is_none() {
            return Err(not_found("user", id));
        }
        self.journal
            .record_object(DeltaKind::User, id, ObjectChange::HardDeleted);
        self.remove_principal_everywhere(id);
        // The reports lose their manager: a change of their `manager` relationship, which
        // users delta with `$select=manager` reports.
        let mut reports = vec![];
        for user in self.users.values_mut() {
            if user.manager == Some(id) {
                user.manager = None;
                reports.push(user.id);
            }
        }
        for report in reports {
            self.journal.record_object(
                DeltaKind::User,
                report,
                ObjectChange::Updated(vec!["manager"]),
            );
        }
        Ok(())
    }

    // -- groups --

    pub fn create_group(&mut self, group: Group) -> Result<(), TenantError> {
        if self.directory_object_exists(group.id) {
            return Err(TenantError::AlreadyExists {
                kind: "group",
                id: group.id.to_string(),
            });
        }
        let id = group.id;
        let members = group.members.clone();
        let owners = group.owners.clone();
        self.groups.insert(id, group);
        self.journal
            .record_object(DeltaKind::Group, id, ObjectChange::Created);
        for member in members {
            self.journal
                .record_link(DeltaKind::Group, id, LinkRelation::Member, member, true);
        }
        for owner in owners {
            self.journal
                .record_link(DeltaKind::Group, id, LinkRelation::Owner, owner, true);
        }
        Ok(())
    }

    pub fn update_group(
        &mut self,
        id: Uuid,
        properties: &[&'static str],
        edit: impl FnOnce(&mut Group),
    ) -> Result<(), TenantError> {
        let group = self
            .groups
            .get_mut(&id)
            .filter(|g| g.deleted.is_none())
            .ok_or_else(|| not_found("group", id))?;
        edit(group);
        self.journal.record_object(
            DeltaKind::Group,
            id,
            ObjectChange::Updated(properties.to_vec()),
        );
        Ok(())
    }

    /// Deletes a group the way Entra ID does: a Microsoft 365 group goes to deleted items, a
    /// security group is gone for good. Returns the change that was recorded.
    pub fn delete_group(
        &mut self,
        id: Uuid,
        now: OffsetDateTime,
    ) -> Result<ObjectChange, TenantError> {
        let group = self
            .groups
            .get_mut(&id)
            .filter(|g| g.deleted.is_none())
            .ok_or_else(|| not_found("group", id))?;
        if group.is_unified() {
            group.deleted = Some(now);
            self.journal
                .record_object(DeltaKind::Group, id, ObjectChange::SoftDeleted);
            Ok(ObjectChange::SoftDeleted)
        } else {
            self.hard_delete_group(id)?;
            Ok(ObjectChange::HardDeleted)
        }
    }

    pub fn restore_group(&mut self, id: Uuid) -> Result<(), TenantError> {
        let group = self
            .groups
            .get_mut(&id)
            .ok_or_else(|| not_found("group", id))?;
        if group.deleted.is_none() {
            return Err(TenantError::NotDeleted { kind: "group", id });
        }
        group.deleted = None;
        self.journal
            .record_object(DeltaKind::Group, id, ObjectChange::Restored);
        Ok(())
    }

    pub fn hard_delete_group(&mut self, id: Uuid) -> Result<(), TenantError> {
        if self.groups.remove(&id).is_none() {
            return Err(not_found("group", id));
        }
        self.journal
            .record_object(DeltaKind::Group, id, ObjectChange::HardDeleted);
        self.remove_principal_everywhere(id);
        self.group_eligibilities.retain(|_, e| e.group_id != id);
        Ok(())
    }

    /// Adds a direct member (user, group or service principal) to a live group.
    pub fn add_group_member(&mut self, group: Uuid, member: Uuid) -> Result<(), TenantError> {
        self.add_group_link(group, member, LinkRelation::Member)
    }

    pub fn remove_group_member(&mut self, group: Uuid, member: Uuid) -> Result<(), TenantError> {
        self.remove_group_link(group, member, LinkRelation::Member)
    }

    pub fn add_group_owner(&mut self, group: Uuid, owner: Uuid) -> Result<(), TenantError> {
        self.add_group_link(group, owner, LinkRelation::Owner)
    }

    pub fn remove_group_owner(&mut self, group: Uuid, owner: Uuid) -> Result<(), TenantError> {
        self.remove_group_link(group, owner, LinkRelation::Owner)
    }

    fn add_group_link(
        &mut self,
        group_id: Uuid,
        target: Uuid,
        relation: LinkRelation,
    ) -> Result<(), TenantError> {
        let kind = self.directory_object_kind(target);
        match (relation, kind) {
            (_, None) => return Err(not_found("directory object", target)),
            (LinkRelation::Owner, Some(DirectoryObjectKind::Group)) => {
                return Err(TenantError::Invalid(format!(
                    "group {target} cannot own group {group_id}"
                )));
            }
            _ => {}
        }
        if target == group_id {
            return Err(TenantError::Invalid(format!(
                "group {group_id} cannot be a member of itself"
            )));
        }
        let group = self
            .groups
            .get_mut(&group_id)
            .filter(|g| g.deleted.is_none())
            .ok_or_else(|| not_found("group", group_id))?;
        let list = match relation {
            LinkRelation::Member => &mut group.members,
            LinkRelation::Owner => &mut group.owners,
        };
        if list.contains(&target) {
            return Err(TenantError::LinkExists {
                container: group_id,
                target,
                relation: relation_name(relation),
            });
        }
        list.push(target);
        self.journal
            .record_link(DeltaKind::Group, group_id, relation, target, true);
        Ok(())
    }

    fn remove_group_link(
        &mut self,
        group_id: Uuid,
        target: Uuid,
        relation: LinkRelation,
    ) -> Result<(), TenantError> {
        let group = self
            .groups
            .get_mut(&group_id)
            .filter(|g| g.deleted.is_none())
            .ok_or_else(|| not_found("group", group_id))?;
        let list = match relation {
            LinkRelation::Member => &mut group.members,
            LinkRelation::Owner => &mut group.owners,
        };
        let Some(position) = list.iter().position(|m| *m == target) else {
            return Err(TenantError::LinkMissing {
                container: group_id,
                target,
                relation: relation_name(relation),
            });
        };
        list.remove(position);
        self.journal
            .record_link(DeltaKind::Group, group_id, relation, target, false);
        Ok(())
    }

    // -- service principals --

    pub fn create_service_principal(&mut self, sp: ServicePrincipal) -> Result<(), TenantError> {
        if self.directory_object_exists(sp.id) {
            return Err(TenantError::AlreadyExists {
                kind: "servicePrincipal",
                id: sp.id.to_string(),
            });
        }
        let id = sp.id;
        self.service_principals.insert(id, sp);
        self.journal
            .record_object(DeltaKind::ServicePrincipal, id, ObjectChange::Created);
        Ok(())
    }

    pub fn update_service_principal(
        &mut self,
        id: Uuid,
        properties: &[&'static str],
        edit: impl FnOnce(&mut ServicePrincipal),
    ) -> Result<(), TenantError> {
        let sp = self
            .service_principals
            .get_mut(&id)
            .ok_or_else(|| not_found("servicePrincipal", id))?;
        edit(sp);
        self.journal.record_object(
            DeltaKind::ServicePrincipal,
            id,
            ObjectChange::Updated(properties.to_vec()),
        );
        Ok(())
    }

    /// Service principals are deleted for good (the emulator does not model their bin).
    pub fn delete_service_principal(&mut self, id: Uuid) -> Result<(), TenantError> {
        if self.service_principals.remove(&id).is_none() {
            return Err(not_found("servicePrincipal", id));
        }
        self.journal
            .record_object(DeltaKind::ServicePrincipal, id, ObjectChange::HardDeleted);
        self.remove_principal_everywhere(id);
        Ok(())
    }

    /// Adds an app role assignment to its resource service principal. Not delta-tracked.
    pub fn add_app_role_assignment(
        &mut self,
        assignment: AppRoleAssignment,
    ) -> Result<(), TenantError> {
        if self
            .directory_object_kind(assignment.principal_id)
            .is_none()
        {
            return Err(not_found("directory object", assignment.principal_id));
        }
        let resource = self
            .service_principals
            .get_mut(&assignment.resource_id)
            .ok_or_else(|| not_found("servicePrincipal", assignment.resource_id))?;
        if assignment.app_role_id != DEFAULT_APP_ROLE_ID
            && !resource
                .app_roles
                .iter()
                .any(|r| r.id == assignment.app_role_id)
        {
            return Err(TenantError::Invalid(format!(
                "app role {} is not defined on service principal {}",
                assignment.app_role_id, assignment.resource_id
            )));
        }
        if resource.app_role_assigned_to.iter().any(|a| {
            a.principal_id == assignment.principal_id && a.app_role_id == assignment.app_role_id
        }) {
            return Err(TenantError::AlreadyExists {
                kind: "appRoleAssignment",
                id: assignment.id,
            });
        }
        resource.app_role_assigned_to.push(assignment);
        Ok(())
    }

    pub fn remove_app_role_assignment(
        &mut self,
        resource_id: Uuid,
        assignment_id: &str,
    ) -> Result<AppRoleAssignment, TenantError> {
        let resource = self
            .service_principals
            .get_mut(&resource_id)
            .ok_or_else(|| not_found("servicePrincipal", resource_id))?;
        let position = resource
            .app_role_assigned_to
            .iter()
            .position(|a| a.id == assignment_id)
            .ok_or_else(|| not_found("appRoleAssignment", assignment_id))?;
        Ok(resource.app_role_assigned_to.remove(position))
    }

    // -- directory roles --

    /// Activates a directory role (from its template) if it is not active yet; returns its id.
    pub fn activate_directory_role(&mut self, role: DirectoryRole) -> Uuid {
        if let Some(existing) = self
            .directory_roles
            .values()
            .find(|r| r.role_template_id == role.role_template_id)
        {
            return existing.id;
        }
        let id = role.id;
        let members = role.members.clone();
        self.directory_roles.insert(id, role);
        self.journal
            .record_object(DeltaKind::DirectoryRole, id, ObjectChange::Created);
        for member in members {
            self.journal.record_link(
                DeltaKind::DirectoryRole,
                id,
                LinkRelation::Member,
                member,
                true,
            );
        }
        id
    }

    pub fn add_directory_role_member(
        &mut self,
        role_id: Uuid,
        member: Uuid,
    ) -> Result<(), TenantError> {
        let role = self
            .directory_roles
            .get_mut(&role_id)
            .ok_or_else(|| not_found("directoryRole", role_id))?;
        if role.members.contains(&member) {
            return Ok(());
        }
        role.members.push(member);
        self.journal.record_link(
            DeltaKind::DirectoryRole,
            role_id,
            LinkRelation::Member,
            member,
            true,
        );
        Ok(())
    }

    pub fn remove_directory_role_member(
        &mut self,
        role_id: Uuid,
        member: Uuid,
    ) -> Result<(), TenantError> {
        let role = self
            .directory_roles
            .get_mut(&role_id)
            .ok_or_else(|| not_found("directoryRole", role_id))?;
        let Some(position) = role.members.iter().position(|m| *m == member) else {
            return Ok(());
        };
        role.members.remove(position);
        self.journal.record_link(
            DeltaKind::DirectoryRole,
            role_id,
            LinkRelation::Member,
            member,
            false,
        );
        Ok(())
    }

    /// The activated role for a role definition's template, if any.
    pub fn directory_role_by_template(&self, template_id: Uuid) -> Option<&DirectoryRole> {
        self.directory_roles
            .values()
            .find(|r| r.role_template_id == template_id)
    }

    // -- ARM lookups --

    pub fn resource_group(&self, subscription: Uuid, name: &str) -> Option<&ResourceGroup> {
        self.resource_groups
            .get(&(subscription, name.to_ascii_lowercase()))
    }

    pub fn storage_account(
        &self,
        subscription: Uuid,
        resource_group: &str,
        name: &str,
    ) -> Option<&StorageAccount> {
        self.storage_accounts.get(&(
            subscription,
            resource_group.to_ascii_lowercase(),
            name.to_ascii_lowercase(),
        ))
    }

    /// The management group chain from `name` up to the root, `name` first.
    pub fn management_group_ancestors(&self, name: &str) -> Vec<String> {
        let mut chain = Vec::new();
        let mut current = Some(name.to_string());
        while let Some(group) = current {
            if chain.contains(&group) {
                break;
            }
            current = self
                .management_groups
                .get(&group)
                .and_then(|g| g.parent.clone());
            chain.push(group);
        }
        chain
    }

    // -- internal --

    fn directory_object_exists(&self, id: Uuid) -> bool {
        self.users.contains_key(&id)
            || self.groups.contains_key(&id)
            || self.service_principals.contains_key(&id)
    }

    /// A permanently deleted principal leaves every group, role and assignment that named it.
    fn remove_principal_everywhere(&mut self, id: Uuid) {
        let mut links = Vec::new();
        for group in self.groups.values_mut() {
            if let Some(p) = group.members.iter().position(|m| *m == id) {
                group.members.remove(p);
                links.push((DeltaKind::Group, group.id, LinkRelation::Member));
            }
            if let Some(p) = group.owners.iter().position(|m| *m == id) {
                group.owners.remove(p);
                links.push((DeltaKind::Group, group.id, LinkRelation::Owner));
            }
        }
        for role in self.directory_roles.values_mut() {
            if let Some(p) = role.members.iter().position(|m| *m == id) {
                role.members.remove(p);
                links.push((DeltaKind::DirectoryRole, role.id, LinkRelation::Member));
            }
        }
        for (kind, container, relation) in links {
            self.journal
                .record_link(kind, container, relation, id, false);
        }
        for sp in self.service_principals.values_mut() {
            sp.owners.retain(|o| *o != id);
            sp.app_role_assigned_to.retain(|a| a.principal_id != id);
        }
        self.directory_role_assignments
            .retain(|_, a| a.principal_id != id);
        self.directory_role_eligibilities
            .retain(|_, e| e.principal_id != id);
        self.group_eligibilities.retain(|_, e| e.principal_id != id);
        // ARM keeps role assignments to deleted principals (they show as "Identity not found"),
        // so role_assignments and role_eligibilities are left alone on purpose.
    }
}

fn relation_name(relation: LinkRelation) -> &'static str {
    match relation {
        LinkRelation::Member => "member",
        LinkRelation::Owner => "owner",
    }
}

/// Graph's id for an appRoleAssignment: base64url of the principal id's bytes followed by 16
/// bytes that tell the (resource, app role) pair apart, 43 characters as Graph shows them.
pub fn app_role_assignment_id(principal: Uuid, resource: Uuid, app_role: Uuid) -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&principal.to_bytes_le());
    let pair = resource.as_u128().rotate_left(64) ^ app_role.as_u128();
    bytes[16..].copy_from_slice(&pair.to_le_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Graph's id for an active directory role assignment: base64url of the role definition and
/// principal ids, then `-1` for the tenant-wide scope or a scope-derived suffix.
pub fn directory_role_assignment_id(
    role_definition: Uuid,
    principal: Uuid,
    directory_scope_id: &str,
) -> String {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(&role_definition.to_bytes_le());
    bytes[16..].copy_from_slice(&principal.to_bytes_le());
    let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    if directory_scope_id == "/" {
        format!("{body}-1")
    } else {
        let scope_hash = directory_scope_id
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        format!("{body}-{:x}", scope_hash & 0xffff_ffff)
    }
}

/// Whether ARM scope `scope` is `ancestor` or lies under it, following management groups and
/// the `/subscriptions/...` path. Comparison is case-insensitive, as ARM's is.
pub fn scope_is_within(tenant: &Tenant, scope: &str, ancestor: &str) -> bool {
    let scope_l = scope.to_ascii_lowercase();
    let ancestor_l = ancestor.trim_end_matches('/').to_ascii_lowercase();
    if ancestor_l.is_empty() {
        return true;
    }
    if scope_l == ancestor_l || scope_l.starts_with(&format!("{ancestor_l}/")) {
        return true;
    }
    // Under a management group: anything whose chain of groups passes through it.
    let prefix = "/providers/microsoft.management/managementgroups/";
    let Some(group) = ancestor_l.strip_prefix(prefix) else {
        return false;
    };
    let start_group = if let Some(name) = scope_l.strip_prefix(prefix) {
        Some(name.split('/').next().unwrap_or_default().to_string())
    } else if let Some(rest) = scope_l.strip_prefix("/subscriptions/") {
        let id = rest.split('/').next().unwrap_or_default();
        Uuid::parse_str(id)
            .ok()
            .and_then(|id| tenant.subscriptions.get(&id))
            .map(|s| s.management_group.to_ascii_lowercase())
    } else {
        None
    };
    let Some(start_group) = start_group else {
        return false;
    };
    let original = tenant
        .management_groups
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&start_group))
        .cloned()
        .unwrap_or(start_group);
    tenant
        .management_group_ancestors(&original)
        .iter()
        .any(|g| g.eq_ignore_ascii_case(group))
}

/// A stable GUID derived from `parts` (FNV-1a, twice with different offsets), for objects the
/// emulator creates on its own, so reruns give the same ids.
pub fn derived_uuid(parts: &[&[u8]]) -> Uuid {
    let hash = |offset: u64| {
        parts.iter().fold(offset, |h, part| {
            part.iter()
                .chain(b"\x1f")
                .fold(h, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
        })
    };
    let high = hash(0xcbf2_9ce4_8422_2325);
    let low = hash(0x8422_2325_cbf2_9ce4);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// How long after a write its Activity Log entry becomes queryable: one to five minutes,
/// fixed per event so a rerun sees the same delays.
fn activity_log_delay(event: Uuid) -> time::Duration {
    let spread = (event.as_u128() % 240) as i64;
    time::Duration::seconds(60 + spread)
}

impl Tenant {
    /// Whether an ARM scope names something that exists: the tenant root, a management group,
    /// a subscription, a resource group, a storage account, a container or another resource.
    pub fn scope_exists(&self, scope: &str) -> bool {
        let lower = scope.trim_end_matches('/').to_ascii_lowercase();
        if lower.is_empty() {
            return true;
        }
        if let Some(name) = lower.strip_prefix("/providers/microsoft.management/managementgroups/")
        {
            return self
                .management_groups
                .keys()
                .any(|k| k.eq_ignore_ascii_case(name));
        }
        let Some(rest) = lower.strip_prefix("/subscriptions/") else {
            return false;
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let Ok(subscription) = Uuid::parse_str(segments[0]) else {
            return false;
        };
        if !self.subscriptions.contains_key(&subscription) {
            return false;
        }
        match segments.as_slice() {
            [_] => true,
            [_, "resourcegroups", rg] => self.resource_group(subscription, rg).is_some(),
            [
                _,
                "resourcegroups",
                rg,
                "providers",
                "microsoft.storage",
                "storageaccounts",
                account,
            ] => self.storage_account(subscription, rg, account).is_some(),
            [
                _,
                "resourcegroups",
                rg,
                "providers",
                "microsoft.storage",
                "storageaccounts",
                account,
                "blobservices",
                "default",
                "containers",
                container,
            ] => self
                .storage_account(subscription, rg, account)
                .is_some_and(|a| {
                    a.containers
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(container))
                }),
            [_, "resourcegroups", _, "providers", ..] => self.arm_resources.contains_key(&lower),
            _ => false,
        }
    }

    /// The subscription an ARM scope lies in, if any (management group and root scopes have none).
    pub fn subscription_of_scope(scope: &str) -> Option<Uuid> {
        let lower = scope.to_ascii_lowercase();
        let rest = lower.strip_prefix("/subscriptions/")?;
        Uuid::parse_str(rest.split('/').next()?).ok()
    }

    /// Creates an RBAC role assignment (ARM PUT) and records it in the Activity Log of its
    /// subscription, the way ARM does: a `Started` and a `Succeeded` event, queryable a little
    /// later than they happened.
    pub fn put_role_assignment(
        &mut self,
        assignment: RoleAssignment,
        caller: &str,
        now: OffsetDateTime,
    ) -> Result<(), TenantError> {
        if !self.scope_exists(&assignment.scope) {
            return Err(not_found("scope", &assignment.scope));
        }
        let Some(role) = self.role_definitions.get(&assignment.role_definition) else {
            return Err(not_found("role definition", assignment.role_definition));
        };
        if !role
            .assignable_scopes
            .iter()
            .any(|a| scope_is_within(self, &assignment.scope, a))
        {
            return Err(TenantError::Invalid(format!(
                "role definition {} is not assignable at scope {}",
                assignment.role_definition, assignment.scope
            )));
        }
        if self.role_assignments.contains_key(&assignment.name) {
            return Err(TenantError::AlreadyExists {
                kind: "role assignment",
                id: assignment.name.to_string(),
            });
        }
        if self.role_assignments.values().any(|a| {
            a.scope.eq_ignore_ascii_case(&assignment.scope)
                && a.role_definition == assignment.role_definition
                && a.principal_id == assignment.principal_id
        }) {
            return Err(TenantError::AlreadyExists {
                kind: "role assignment for this scope, role and principal",
                id: assignment.name.to_string(),
            });
        }
        self.record_role_assignment_event(&assignment, "write", caller, now);
        self.role_assignments.insert(assignment.name, assignment);
        Ok(())
    }

    /// Deletes an RBAC role assignment (ARM DELETE), recorded in the Activity Log.
    pub fn delete_role_assignment(
        &mut self,
        name: Uuid,
        caller: &str,
        now: OffsetDateTime,
    ) -> Result<RoleAssignment, TenantError> {
        let assignment = self
            .role_assignments
            .remove(&name)
            .ok_or_else(|| not_found("role assignment", name))?;
        self.record_role_assignment_event(&assignment, "delete", caller, now);
        Ok(assignment)
    }

    /// ARM id of a role assignment: `{scope}/providers/Microsoft.Authorization/roleAssignments/{name}`.
    pub fn role_assignment_id(assignment: &RoleAssignment) -> String {
        format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{}",
            assignment.scope.trim_end_matches('/'),
            assignment.name
        )
    }

    fn record_role_assignment_event(
        &mut self,
        assignment: &RoleAssignment,
        verb: &str,
        caller: &str,
        now: OffsetDateTime,
    ) {
        // Tenant- and management-group-scope writes land in the tenant's log, not a subscription's.
        let Some(subscription) = Tenant::subscription_of_scope(&assignment.scope) else {
            return;
        };
        let operation_name = format!("Microsoft.Authorization/roleAssignments/{verb}");
        let resource_id = Tenant::role_assignment_id(assignment);
        let ordinal = (self.activity_log.len() as u64).to_be_bytes();
        let correlation_id = derived_uuid(&[b"correlation", resource_id.as_bytes(), &ordinal]);
        for (status, offset) in [("Started", 0), ("Succeeded", 2)] {
            let event_data_id = derived_uuid(&[
                b"event",
                resource_id.as_bytes(),
                status.as_bytes(),
                &ordinal,
            ]);
            let event_timestamp = now + time::Duration::seconds(offset);
            self.activity_log.push(ActivityLogEvent {
                event_data_id,
                correlation_id,
                subscription,
                operation_name: operation_name.clone(),
                resource_provider: "Microsoft.Authorization".into(),
                resource_id: resource_id.clone(),
                status: status.into(),
                caller: caller.to_string(),
                event_timestamp,
                submission_timestamp: event_timestamp + activity_log_delay(event_data_id),
            });
        }
    }
}
