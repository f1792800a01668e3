//! Changing a running tenant: the [`TenantChange`] vocabulary, seeded random churn, and the Rust
//! [`Control`] surface tests use (the HTTP control surface calls the same methods).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use time::OffsetDateTime;
use uuid::Uuid;

use super::EmulatorState;
use super::expected::{ExpectedGraph, ExpectedOptions};
use super::faults::FaultConfig;
use super::quota::RequestCounts;
use super::tenant::{
    AppRoleAssignment, DirectoryObjectKind, DirectoryRole, DirectoryRoleAssignment,
    DirectoryRoleEligibility, GroupEligibility, PrincipalKind, ResourceGroup, RoleAssignment,
    RoleDefinition, RoleEligibility, ScheduleInfo, StorageAccount, Subscription, Tenant,
    TenantError, UserType, app_role_assignment_id, derived_uuid, directory_role_assignment_id,
    resource_group_scope, storage_account_scope, subscription_scope,
};
use super::tenant::{ArmPrincipalType, Group, GroupAccess, Mailbox, ServicePrincipal, User};

/// Optional new values for a user's properties; `None` leaves a property alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub mail: Option<String>,
    pub account_enabled: Option<bool>,
    pub employee_id: Option<String>,
    pub manager: Option<Uuid>,
    pub mailbox: Option<Mailbox>,
}

/// One change to the tenant. Creations carry the new object's id so the caller knows it.
#[derive(Debug, Clone)]
pub enum TenantChange {
    CreateUser(Box<User>),
    UpdateUser {
        id: Uuid,
        patch: UserPatch,
    },
    SoftDeleteUser(Uuid),
    RestoreUser(Uuid),
    HardDeleteUser(Uuid),

    CreateGroup(Box<Group>),
    UpdateGroup {
        id: Uuid,
        display_name: Option<String>,
        description: Option<String>,
    },
    /// Soft for Microsoft 365 groups, hard for security groups, as Entra ID does.
    DeleteGroup(Uuid),
    RestoreGroup(Uuid),
    HardDeleteGroup(Uuid),
    AddMember {
        group: Uuid,
        member: Uuid,
    },
    RemoveMember {
        group: Uuid,
        member: Uuid,
    },
    AddOwner {
        group: Uuid,
        owner: Uuid,
    },
    RemoveOwner {
        group: Uuid,
        owner: Uuid,
    },

    CreateServicePrincipal(Box<ServicePrincipal>),
    DeleteServicePrincipal(Uuid),
    AddServicePrincipalOwner {
        service_principal: Uuid,
        owner: Uuid,
    },
    RemoveServicePrincipalOwner {
        service_principal: Uuid,
        owner: Uuid,
    },
    AssignAppRole {
        resource: Uuid,
        principal: Uuid,
        app_role: Uuid,
    },
    UnassignAppRole {
        resource: Uuid,
        principal: Uuid,
        app_role: Uuid,
    },

    /// Active directory role assignment; `directory_scope_id` is `/` for the whole tenant.
    AssignDirectoryRole {
        role_definition: Uuid,
        principal: Uuid,
        directory_scope_id: String,
    },
    UnassignDirectoryRole {
        role_definition: Uuid,
        principal: Uuid,
        directory_scope_id: String,
    },
    AddDirectoryRoleEligibility {
        role_definition: Uuid,
        principal: Uuid,
        directory_scope_id: String,
    },
    RemoveDirectoryRoleEligibility {
        role_definition: Uuid,
        principal: Uuid,
        directory_scope_id: String,
    },
    AddGroupEligibility {
        group: Uuid,
        principal: Uuid,
        access: GroupAccess,
    },
    RemoveGroupEligibility {
        group: Uuid,
        principal: Uuid,
        access: GroupAccess,
    },

    /// A custom Azure role, assignable at its `assignable_scopes`.
    CreateRoleDefinition(Box<RoleDefinition>),
    /// An RBAC assignment at an ARM scope; recorded in the Activity Log of its subscription.
    CreateRoleAssignment {
        name: Uuid,
        scope: String,
        role_definition: Uuid,
        principal: Uuid,
        principal_type: ArmPrincipalType,
    },
    DeleteRoleAssignment {
        name: Uuid,
    },
    AddRoleEligibility {
        name: Uuid,
        scope: String,
        role_definition: Uuid,
        principal: Uuid,
        principal_type: ArmPrincipalType,
    },
    RemoveRoleEligibility {
        name: Uuid,
    },

    CreateSubscription {
        id: Uuid,
        display_name: String,
        management_group: String,
    },
    DeleteSubscription(Uuid),
    /// Moves a subscription under another management group (Management Group Subscriptions -
    /// Create); its role assignments stay, inherited ones now come from the new parent.
    MoveSubscription {
        id: Uuid,
        management_group: String,
    },
    CreateResourceGroup {
        subscription: Uuid,
        name: String,
        location: String,
    },
    DeleteResourceGroup {
        subscription: Uuid,
        name: String,
    },
    CreateStorageAccount {
        subscription: Uuid,
        resource_group: String,
        name: String,
        kind: String,
        sku: String,
    },
    DeleteStorageAccount {
        subscription: Uuid,
        resource_group: String,
        name: String,
    },
    CreateContainer {
        subscription: Uuid,
        resource_group: String,
        account: String,
        name: String,
    },
    DeleteContainer {
        subscription: Uuid,
        resource_group: String,
        account: String,
        name: String,
    },
}

/// How many changes of each kind a `random_churn` made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChurnSummary {
    pub users_created: usize,
    pub users_updated: usize,
    pub users_soft_deleted: usize,
    pub users_restored: usize,
    pub users_hard_deleted: usize,
    pub members_added: usize,
    pub members_removed: usize,
    pub owners_changed: usize,
    pub app_role_assignments_changed: usize,
    pub directory_role_assignments_changed: usize,
    pub role_assignments_changed: usize,
    /// Draws the tenant refused (a member already present, a duplicate assignment): not made.
    pub refused: usize,
}

impl ChurnSummary {
    /// Every change made, of any kind.
    pub fn total(&self) -> usize {
        self.users_created
            + self.users_updated
            + self.users_soft_deleted
            + self.users_restored
            + self.users_hard_deleted
            + self.members_added
            + self.members_removed
            + self.owners_changed
            + self.app_role_assignments_changed
            + self.directory_role_assignments_changed
            + self.role_assignments_changed
    }
}

/// The Rust control surface of a running emulator. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    state: Arc<EmulatorState>,
}

impl Control {
    pub fn new(state: Arc<EmulatorState>) -> Self {
        Control { state }
    }

    /// Applies one change under the tenant's write lock; a refused change names why.
    pub fn apply(&self, change: TenantChange) -> anyhow::Result<()> {
        let now = self.state.clock.now();
        let description = format!("{change:?}");
        apply_to(&mut self.state.write_tenant(), change, now)
            .map_err(|e| anyhow::anyhow!("tenant change refused: {e} ({})", short(&description)))
    }

    /// Realistic mixed changes: about `fraction` of the user count, in the proportions a busy
    /// tenant sees (mostly profile edits and membership changes, a few deletions, restores and
    /// access assignments). Same seed, same tenant: same changes.
    pub fn random_churn(&self, rng_seed: u64, fraction: f64) -> ChurnSummary {
        let now = self.state.clock.now();
        churn(&mut self.state.write_tenant(), rng_seed, fraction, now)
    }

    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
    }

    /// The emulator's current time (real time plus every `advance_clock`).
    pub fn now(&self) -> time::OffsetDateTime {
        self.state.clock.now()
    }

    pub fn request_counts(&self) -> RequestCounts {
        self.state.meter.counts()
    }

    pub fn reset_counts(&self) {
        self.state.meter.reset_counts();
    }

    pub fn expected_graph(&self, options: &ExpectedOptions) -> ExpectedGraph {
        ExpectedGraph::compute(&self.state.read_tenant(), options)
    }

    pub fn set_faults(&self, faults: FaultConfig) {
        self.state.faults.set(faults);
    }

    /// While on, delta requests with a token answer 410 Gone.
    pub fn force_delta_resync(&self, on: bool) {
        self.state.force_delta_resync.store(on, Ordering::SeqCst);
    }

    /// Switches the documented wire behaviours of `wire::WireBehaviours` on or off.
    pub fn set_wire(&self, wire: super::WireBehaviours) {
        *self
            .state
            .wire
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = wire;
    }

    pub fn set_p2_license(&self, on: bool) {
        self.state.write_tenant().organization.has_p2_license = on;
    }

    /// Runs `read` against the current tenant under its read lock.
    pub fn with_tenant<R>(&self, read: impl FnOnce(&super::Tenant) -> R) -> R {
        read(&self.state.read_tenant())
    }
}

/// Who the Activity Log names for changes made through the control surface.
const CONTROL_CALLER: &str = "emulator-control";

fn short(text: &str) -> &str {
    match text.char_indices().nth(200) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// Applies one change to `tenant` at emulator time `now`.
pub fn apply_to(
    tenant: &mut Tenant,
    change: TenantChange,
    now: OffsetDateTime,
) -> Result<(), TenantError> {
    match change {
        TenantChange::CreateUser(user) => tenant.create_user(*user),
        TenantChange::UpdateUser { id, patch } => update_user(tenant, id, patch),
        TenantChange::SoftDeleteUser(id) => tenant.soft_delete_user(id, now),
        TenantChange::RestoreUser(id) => tenant.restore_user(id),
        TenantChange::HardDeleteUser(id) => tenant.hard_delete_user(id),

        TenantChange::CreateGroup(group) => tenant.create_group(*group),
        TenantChange::UpdateGroup {
            id,
            display_name,
            description,
        } => {
            let mut properties = Vec::new();
            if display_name.is_some() {
                properties.push("displayName");
            }
            if description.is_some() {
                properties.push("description");
            }
            if properties.is_empty() {
                return Err(TenantError::Invalid(format!(
                    "update of group {id} changes nothing"
                )));
            }
            tenant.update_group(id, &properties, |g| {
                if let Some(name) = display_name {
                    g.display_name = name;
                }
                if description.is_some() {
                    g.description = description;
                }
            })
        }
        TenantChange::DeleteGroup(id) => tenant.delete_group(id, now).map(|_| ()),
        TenantChange::RestoreGroup(id) => tenant.restore_group(id),
        TenantChange::HardDeleteGroup(id) => tenant.hard_delete_group(id),
        TenantChange::AddMember { group, member } => tenant.add_group_member(group, member),
        TenantChange::RemoveMember { group, member } => tenant.remove_group_member(group, member),
        TenantChange::AddOwner { group, owner } => tenant.add_group_owner(group, owner),
        TenantChange::RemoveOwner { group, owner } => tenant.remove_group_owner(group, owner),

        TenantChange::CreateServicePrincipal(sp) => tenant.create_service_principal(*sp),
        TenantChange::DeleteServicePrincipal(id) => tenant.delete_service_principal(id),
        TenantChange::AddServicePrincipalOwner {
            service_principal,
            owner,
        } => {
            match tenant.directory_object_kind(owner) {
                Some(DirectoryObjectKind::User | DirectoryObjectKind::ServicePrincipal) => {}
                _ => {
                    return Err(TenantError::NotFound {
                        kind: "user or servicePrincipal",
                        id: owner.to_string(),
                    });
                }
            }
            let sp = tenant
                .service_principals
                .get_mut(&service_principal)
                .ok_or_else(|| TenantError::NotFound {
                    kind: "servicePrincipal",
                    id: service_principal.to_string(),
                })?;
            if sp.owners.contains(&owner) {
                return Err(TenantError::LinkExists {
                    container: service_principal,
                    target: owner,
                    relation: "owner",
                });
            }
            sp.owners.push(owner);
            Ok(())
        }
        TenantChange::RemoveServicePrincipalOwner {
            service_principal,
            owner,
        } => {
            let sp = tenant
                .service_principals
                .get_mut(&service_principal)
                .ok_or_else(|| TenantError::NotFound {
                    kind: "servicePrincipal",
                    id: service_principal.to_string(),
                })?;
            let Some(position) = sp.owners.iter().position(|o| *o == owner) else {
                return Err(TenantError::LinkMissing {
                    container: service_principal,
                    target: owner,
                    relation: "owner",
                });
            };
            sp.owners.remove(position);
            Ok(())
        }
        TenantChange::AssignAppRole {
            resource,
            principal,
            app_role,
        } => {
            let principal_type = match tenant.directory_object_kind(principal) {
                Some(DirectoryObjectKind::User) => PrincipalKind::User,
                Some(DirectoryObjectKind::Group) => PrincipalKind::Group,
                Some(DirectoryObjectKind::ServicePrincipal) => PrincipalKind::ServicePrincipal,
                None => {
                    return Err(TenantError::NotFound {
                        kind: "directory object",
                        id: principal.to_string(),
                    });
                }
            };
            let principal_display_name = tenant
                .directory_object_name(principal)
                .unwrap_or_default()
                .to_string();
            let resource_display_name = tenant
                .service_principals
                .get(&resource)
                .map(|s| s.display_name.clone())
                .ok_or_else(|| TenantError::NotFound {
                    kind: "servicePrincipal",
                    id: resource.to_string(),
                })?;
            tenant.add_app_role_assignment(AppRoleAssignment {
                id: app_role_assignment_id(principal, resource, app_role),
                principal_id: principal,
                principal_type,
                principal_display_name,
                resource_id: resource,
                resource_display_name,
                app_role_id: app_role,
                created: now,
            })
        }
        TenantChange::UnassignAppRole {
            resource,
            principal,
            app_role,
        } => tenant
            .remove_app_role_assignment(
                resource,
                &app_role_assignment_id(principal, resource, app_role),
            )
            .map(|_| ()),

        TenantChange::AssignDirectoryRole {
            role_definition,
            principal,
            directory_scope_id,
        } => assign_directory_role(tenant, role_definition, principal, directory_scope_id, now),
        TenantChange::UnassignDirectoryRole {
            role_definition,
            principal,
            directory_scope_id,
        } => {
            let id = directory_role_assignment_id(role_definition, principal, &directory_scope_id);
            if tenant.directory_role_assignments.remove(&id).is_none() {
                return Err(TenantError::NotFound {
                    kind: "directory role assignment",
                    id,
                });
            }
            if directory_scope_id == "/"
                && let Some(active) =
                    tenant.directory_role_by_template(template_of(tenant, role_definition))
            {
                let active = active.id;
                tenant.remove_directory_role_member(active, principal)?;
            }
            Ok(())
        }
        TenantChange::AddDirectoryRoleEligibility {
            role_definition,
            principal,
            directory_scope_id,
        } => {
            if !tenant
                .directory_role_definitions
                .contains_key(&role_definition)
            {
                return Err(TenantError::NotFound {
                    kind: "directory role definition",
                    id: role_definition.to_string(),
                });
            }
            if tenant.directory_object_kind(principal).is_none() {
                return Err(TenantError::NotFound {
                    kind: "directory object",
                    id: principal.to_string(),
                });
            }
            let id = derived_uuid(&[
                b"roleEligibilitySchedule",
                role_definition.as_bytes(),
                principal.as_bytes(),
                directory_scope_id.as_bytes(),
            ]);
            if tenant.directory_role_eligibilities.contains_key(&id) {
                return Err(TenantError::AlreadyExists {
                    kind: "directory role eligibility",
                    id: id.to_string(),
                });
            }
            tenant.directory_role_eligibilities.insert(
                id,
                DirectoryRoleEligibility {
                    id,
                    instance_id: derived_uuid(&[b"instance", id.as_bytes()]),
                    role_definition_id: role_definition,
                    principal_id: principal,
                    directory_scope_id,
                    member_type: "Direct".into(),
                    status: "Provisioned".into(),
                    schedule: ScheduleInfo {
                        start: now,
                        end: None,
                    },
                    created: now,
                },
            );
            Ok(())
        }
        TenantChange::RemoveDirectoryRoleEligibility {
            role_definition,
            principal,
            directory_scope_id,
        } => {
            let before = tenant.directory_role_eligibilities.len();
            tenant.directory_role_eligibilities.retain(|_, e| {
                !(e.role_definition_id == role_definition
                    && e.principal_id == principal
                    && e.directory_scope_id == directory_scope_id)
            });
            if tenant.directory_role_eligibilities.len() == before {
                return Err(TenantError::NotFound {
                    kind: "directory role eligibility",
                    id: format!("{role_definition}/{principal}"),
                });
            }
            Ok(())
        }
        TenantChange::AddGroupEligibility {
            group,
            principal,
            access,
        } => {
            if tenant
                .groups
                .get(&group)
                .is_none_or(|g| g.deleted.is_some())
            {
                return Err(TenantError::NotFound {
                    kind: "group",
                    id: group.to_string(),
                });
            }
            if tenant.directory_object_kind(principal).is_none() {
                return Err(TenantError::NotFound {
                    kind: "directory object",
                    id: principal.to_string(),
                });
            }
            let id = derived_uuid(&[
                b"groupEligibility",
                group.as_bytes(),
                principal.as_bytes(),
                access.as_str().as_bytes(),
            ]);
            if tenant.group_eligibilities.contains_key(&id) {
                return Err(TenantError::AlreadyExists {
                    kind: "group eligibility",
                    id: id.to_string(),
                });
            }
            tenant.group_eligibilities.insert(
                id,
                GroupEligibility {
                    id,
                    instance_id: derived_uuid(&[b"instance", id.as_bytes()]),
                    group_id: group,
                    principal_id: principal,
                    access,
                    member_type: "Direct".into(),
                    status: "Provisioned".into(),
                    schedule: ScheduleInfo {
                        start: now,
                        end: None,
                    },
                    created: now,
                },
            );
            Ok(())
        }
        TenantChange::RemoveGroupEligibility {
            group,
            principal,
            access,
        } => {
            let before = tenant.group_eligibilities.len();
            tenant.group_eligibilities.retain(|_, e| {
                !(e.group_id == group && e.principal_id == principal && e.access == access)
            });
            if tenant.group_eligibilities.len() == before {
                return Err(TenantError::NotFound {
                    kind: "group eligibility",
                    id: format!("{group}/{principal}"),
                });
            }
            Ok(())
        }

        TenantChange::CreateRoleAssignment {
            name,
            scope,
            role_definition,
            principal,
            principal_type,
        } => tenant.put_role_assignment(
            RoleAssignment {
                name,
                scope,
                role_definition,
                principal_id: principal,
                principal_type,
                created: now,
                created_by: Uuid::nil(),
            },
            CONTROL_CALLER,
            now,
        ),
        TenantChange::DeleteRoleAssignment { name } => tenant
            .delete_role_assignment(name, CONTROL_CALLER, now)
            .map(|_| ()),
        TenantChange::AddRoleEligibility {
            name,
            scope,
            role_definition,
            principal,
            principal_type,
        } => {
            if !tenant.scope_exists(&scope) {
                return Err(TenantError::NotFound {
                    kind: "scope",
                    id: scope,
                });
            }
            if !tenant.role_definitions.contains_key(&role_definition) {
                return Err(TenantError::NotFound {
                    kind: "role definition",
                    id: role_definition.to_string(),
                });
            }
            if tenant.role_eligibilities.contains_key(&name) {
                return Err(TenantError::AlreadyExists {
                    kind: "role eligibility",
                    id: name.to_string(),
                });
            }
            tenant.role_eligibilities.insert(
                name,
                RoleEligibility {
                    name,
                    instance_name: derived_uuid(&[b"instance", name.as_bytes()]),
                    scope,
                    role_definition,
                    principal_id: principal,
                    principal_type,
                    member_type: "Direct".into(),
                    status: "Provisioned".into(),
                    schedule: ScheduleInfo {
                        start: now,
                        end: Some(now + time::Duration::days(365)),
                    },
                    created: now,
                },
            );
            Ok(())
        }
        TenantChange::RemoveRoleEligibility { name } => tenant
            .role_eligibilities
            .remove(&name)
            .map(|_| ())
            .ok_or_else(|| TenantError::NotFound {
                kind: "role eligibility",
                id: name.to_string(),
            }),

        TenantChange::CreateSubscription {
            id,
            display_name,
            management_group,
        } => {
            if !tenant.management_groups.contains_key(&management_group) {
                return Err(TenantError::NotFound {
                    kind: "management group",
                    id: management_group,
                });
            }
            if tenant.subscriptions.contains_key(&id) {
                return Err(TenantError::AlreadyExists {
                    kind: "subscription",
                    id: id.to_string(),
                });
            }
            tenant.subscriptions.insert(
                id,
                Subscription {
                    id,
                    display_name,
                    state: "Enabled".into(),
                    management_group,
                },
            );
            Ok(())
        }
        TenantChange::CreateRoleDefinition(definition) => {
            if tenant.role_definitions.contains_key(&definition.id) {
                return Err(TenantError::AlreadyExists {
                    kind: "role definition",
                    id: definition.id.to_string(),
                });
            }
            tenant.role_definitions.insert(definition.id, *definition);
            Ok(())
        }
        TenantChange::MoveSubscription {
            id,
            management_group,
        } => {
            if !tenant.management_groups.contains_key(&management_group) {
                return Err(TenantError::NotFound {
                    kind: "management group",
                    id: management_group,
                });
            }
            let subscription = tenant
                .subscriptions
                .get_mut(&id)
                .ok_or(TenantError::NotFound {
                    kind: "subscription",
                    id: id.to_string(),
                })?;
            subscription.management_group = management_group;
            Ok(())
        }
        TenantChange::DeleteSubscription(id) => {
            if tenant.subscriptions.remove(&id).is_none() {
                return Err(TenantError::NotFound {
                    kind: "subscription",
                    id: id.to_string(),
                });
            }
            tenant.resource_groups.retain(|(s, _), _| *s != id);
            tenant.storage_accounts.retain(|(s, _, _), _| *s != id);
            tenant.arm_resources.retain(|_, r| r.subscription != id);
            remove_access_under(tenant, &subscription_scope(id));
            Ok(())
        }
        TenantChange::CreateResourceGroup {
            subscription,
            name,
            location,
        } => {
            if !tenant.subscriptions.contains_key(&subscription) {
                return Err(TenantError::NotFound {
                    kind: "subscription",
                    id: subscription.to_string(),
                });
            }
            let key = (subscription, name.to_ascii_lowercase());
            if tenant.resource_groups.contains_key(&key) {
                return Err(TenantError::AlreadyExists {
                    kind: "resource group",
                    id: name,
                });
            }
            tenant.resource_groups.insert(
                key,
                ResourceGroup {
                    subscription,
                    name,
                    location,
                },
            );
            Ok(())
        }
        TenantChange::DeleteResourceGroup { subscription, name } => {
            let lower = name.to_ascii_lowercase();
            let Some(rg) = tenant
                .resource_groups
                .remove(&(subscription, lower.clone()))
            else {
                return Err(TenantError::NotFound {
                    kind: "resource group",
                    id: name,
                });
            };
            tenant
                .storage_accounts
                .retain(|(s, r, _), _| !(*s == subscription && *r == lower));
            tenant.arm_resources.retain(|_, r| {
                !(r.subscription == subscription && r.resource_group.eq_ignore_ascii_case(&lower))
            });
            remove_access_under(tenant, &resource_group_scope(subscription, &rg.name));
            Ok(())
        }
        TenantChange::CreateStorageAccount {
            subscription,
            resource_group,
            name,
            kind,
            sku,
        } => {
            let Some(rg) = tenant.resource_group(subscription, &resource_group) else {
                return Err(TenantError::NotFound {
                    kind: "resource group",
                    id: resource_group,
                });
            };
            let (rg_name, location) = (rg.name.clone(), rg.location.clone());
            if tenant
                .storage_accounts
                .values()
                .any(|a| a.name.eq_ignore_ascii_case(&name))
            {
                return Err(TenantError::AlreadyExists {
                    kind: "storage account (names are global)",
                    id: name,
                });
            }
            tenant.storage_accounts.insert(
                (
                    subscription,
                    rg_name.to_ascii_lowercase(),
                    name.to_ascii_lowercase(),
                ),
                StorageAccount {
                    subscription,
                    resource_group: rg_name,
                    name,
                    location,
                    kind,
                    sku,
                    containers: Vec::new(),
                },
            );
            Ok(())
        }
        TenantChange::DeleteStorageAccount {
            subscription,
            resource_group,
            name,
        } => {
            let key = (
                subscription,
                resource_group.to_ascii_lowercase(),
                name.to_ascii_lowercase(),
            );
            let Some(account) = tenant.storage_accounts.remove(&key) else {
                return Err(TenantError::NotFound {
                    kind: "storage account",
                    id: name,
                });
            };
            remove_access_under(tenant, &storage_account_scope(&account));
            Ok(())
        }
        TenantChange::CreateContainer {
            subscription,
            resource_group,
            account,
            name,
        } => {
            let key = (
                subscription,
                resource_group.to_ascii_lowercase(),
                account.to_ascii_lowercase(),
            );
            let Some(storage) = tenant.storage_accounts.get_mut(&key) else {
                return Err(TenantError::NotFound {
                    kind: "storage account",
                    id: account,
                });
            };
            if storage.containers.iter().any(|c| c == &name) {
                return Err(TenantError::AlreadyExists {
                    kind: "container",
                    id: name,
                });
            }
            storage.containers.push(name);
            Ok(())
        }
        TenantChange::DeleteContainer {
            subscription,
            resource_group,
            account,
            name,
        } => {
            let key = (
                subscription,
                resource_group.to_ascii_lowercase(),
                account.to_ascii_lowercase(),
            );
            let Some(storage) = tenant.storage_accounts.get_mut(&key) else {
                return Err(TenantError::NotFound {
                    kind: "storage account",
                    id: account,
                });
            };
            let Some(position) = storage.containers.iter().position(|c| c == &name) else {
                return Err(TenantError::NotFound {
                    kind: "container",
                    id: name,
                });
            };
            storage.containers.remove(position);
            let scope = super::tenant::container_scope(storage, &name);
            remove_access_under(tenant, &scope);
            Ok(())
        }
    }
}

fn update_user(tenant: &mut Tenant, id: Uuid, patch: UserPatch) -> Result<(), TenantError> {
    let mut properties = Vec::new();
    for (set, name) in [
        (patch.display_name.is_some(), "displayName"),
        (patch.given_name.is_some(), "givenName"),
        (patch.surname.is_some(), "surname"),
        (patch.mail.is_some(), "mail"),
        (patch.account_enabled.is_some(), "accountEnabled"),
        (patch.employee_id.is_some(), "employeeId"),
        (patch.manager.is_some(), "manager"),
    ] {
        if set {
            properties.push(name);
        }
    }
    // The mailbox kind is Exchange state: not a user property delta reports.
    if properties.is_empty() && patch.mailbox.is_none() {
        return Err(TenantError::Invalid(format!(
            "update of user {id} changes nothing"
        )));
    }
    if let Some(manager) = patch.manager
        && (manager == id
            || tenant
                .users
                .get(&manager)
                .is_none_or(|m| m.deleted.is_some()))
    {
        return Err(TenantError::Invalid(format!(
            "manager {manager} of user {id} is not another live user"
        )));
    }
    if properties.is_empty() {
        let user = tenant
            .users
            .get_mut(&id)
            .filter(|u| u.deleted.is_none())
            .ok_or_else(|| TenantError::NotFound {
                kind: "user",
                id: id.to_string(),
            })?;
        if let Some(mailbox) = patch.mailbox {
            user.mailbox = mailbox;
        }
        return Ok(());
    }
    tenant.update_user(id, &properties, |u| {
        if let Some(v) = patch.display_name {
            u.display_name = v;
        }
        if patch.given_name.is_some() {
            u.given_name = patch.given_name;
        }
        if patch.surname.is_some() {
            u.surname = patch.surname;
        }
        if patch.mail.is_some() {
            u.mail = patch.mail;
        }
        if let Some(v) = patch.account_enabled {
            u.account_enabled = v;
        }
        if patch.employee_id.is_some() {
            u.employee_id = patch.employee_id;
        }
        if patch.manager.is_some() {
            u.manager = patch.manager;
        }
        if let Some(mailbox) = patch.mailbox {
            u.mailbox = mailbox;
        }
    })
}

fn template_of(tenant: &Tenant, role_definition: Uuid) -> Uuid {
    tenant
        .directory_role_definitions
        .get(&role_definition)
        .map(|d| d.template_id)
        .unwrap_or(role_definition)
}

/// An active directory role assignment; tenant-wide ones also make the principal a member of
/// the activated directory role (activating it first if nobody held it), as Entra ID does.
fn assign_directory_role(
    tenant: &mut Tenant,
    role_definition: Uuid,
    principal: Uuid,
    directory_scope_id: String,
    now: OffsetDateTime,
) -> Result<(), TenantError> {
    let Some(definition) = tenant.directory_role_definitions.get(&role_definition) else {
        return Err(TenantError::NotFound {
            kind: "directory role definition",
            id: role_definition.to_string(),
        });
    };
    let (template, display_name, description) = (
        definition.template_id,
        definition.display_name.clone(),
        definition.description.clone(),
    );
    if tenant.directory_object_kind(principal).is_none() {
        return Err(TenantError::NotFound {
            kind: "directory object",
            id: principal.to_string(),
        });
    }
    let id = directory_role_assignment_id(role_definition, principal, &directory_scope_id);
    if tenant.directory_role_assignments.contains_key(&id) {
        return Err(TenantError::AlreadyExists {
            kind: "directory role assignment",
            id,
        });
    }
    let tenant_wide = directory_scope_id == "/";
    tenant.directory_role_assignments.insert(
        id.clone(),
        DirectoryRoleAssignment {
            id,
            role_definition_id: role_definition,
            principal_id: principal,
            directory_scope_id,
            created: now,
        },
    );
    if tenant_wide {
        let active = tenant.activate_directory_role(DirectoryRole {
            id: derived_uuid(&[b"directoryRole", template.as_bytes()]),
            role_template_id: template,
            display_name,
            description,
            members: Vec::new(),
        });
        tenant.add_directory_role_member(active, principal)?;
    }
    Ok(())
}

/// ARM removes role assignments and eligibilities together with the scope they sit on.
fn remove_access_under(tenant: &mut Tenant, scope: &str) {
    let prefix = scope.to_ascii_lowercase();
    let under = |candidate: &str| {
        let candidate = candidate.to_ascii_lowercase();
        candidate == prefix || candidate.starts_with(&format!("{prefix}/"))
    };
    tenant.role_assignments.retain(|_, a| !under(&a.scope));
    tenant.role_eligibilities.retain(|_, e| !under(&e.scope));
}

/// The changes `random_churn` makes, drawn from `rng_seed`.
fn churn(tenant: &mut Tenant, rng_seed: u64, fraction: f64, now: OffsetDateTime) -> ChurnSummary {
    let mut rng = StdRng::seed_from_u64(rng_seed);
    let mut summary = ChurnSummary::default();
    let live_users = tenant.live_users().count();
    let changes = ((live_users as f64 * fraction.clamp(0.0, 1.0)).round() as usize).max(1);
    let mut users: Vec<Uuid> = tenant.live_users().map(|u| u.id).collect();
    let groups: Vec<Uuid> = tenant.live_groups().map(|g| g.id).collect();
    let apps: Vec<Uuid> = tenant
        .service_principals
        .values()
        .filter(|s| s.service_principal_type == super::tenant::ServicePrincipalType::Application)
        .map(|s| s.id)
        .collect();
    let directory_roles: Vec<Uuid> = tenant.directory_role_definitions.keys().copied().collect();
    let subscriptions: Vec<Uuid> = tenant.subscriptions.keys().copied().collect();
    let reader = Uuid::from_u128(0xacdd72a7_3385_48ef_bd42_f606fba81ae7);
    let mut soft_deleted: Vec<Uuid> = tenant
        .users
        .values()
        .filter(|u| u.deleted.is_some())
        .map(|u| u.id)
        .collect();
    let domain = tenant
        .organization
        .verified_domains
        .last()
        .cloned()
        .unwrap_or_default();
    for index in 0..changes {
        let roll = rng.random_range(0..100);
        let user = users.choose(&mut rng).copied();
        let group = groups.choose(&mut rng).copied();
        let tag = [rng_seed.to_be_bytes(), (index as u64).to_be_bytes()].concat();
        let outcome = match (roll, user, group) {
            (0..=34, Some(user), _) => {
                let patch = if rng.random_bool(0.2) {
                    let enabled = tenant.users.get(&user).is_some_and(|u| u.account_enabled);
                    UserPatch {
                        account_enabled: Some(!enabled),
                        ..UserPatch::default()
                    }
                } else {
                    UserPatch {
                        display_name: Some(format!("Renamed User {index}")),
                        ..UserPatch::default()
                    }
                };
                apply_to(tenant, TenantChange::UpdateUser { id: user, patch }, now)
                    .map(|_| summary.users_updated += 1)
            }
            (35..=54, Some(user), Some(group)) => apply_to(
                tenant,
                TenantChange::AddMember {
                    group,
                    member: user,
                },
                now,
            )
            .map(|_| summary.members_added += 1),
            (55..=69, _, Some(group)) => {
                let member = tenant
                    .groups
                    .get(&group)
                    .and_then(|g| g.members.choose(&mut rng).copied());
                match member {
                    Some(member) => {
                        apply_to(tenant, TenantChange::RemoveMember { group, member }, now)
                            .map(|_| summary.members_removed += 1)
                    }
                    None => Ok(()),
                }
            }
            (70..=77, _, _) => {
                let id = derived_uuid(&[b"churn-user", &tag]);
                let new_user = super::tenant::User {
                    id,
                    user_principal_name: format!("new.hire{index}.{rng_seed}@{domain}"),
                    mail: Some(format!("new.hire{index}.{rng_seed}@{domain}")),
                    display_name: format!("New Hire {index}"),
                    given_name: Some("New".into()),
                    surname: Some(format!("Hire {index}")),
                    account_enabled: true,
                    user_type: UserType::Member,
                    employee_id: Some(format!("N{rng_seed}-{index}")),
                    created: now,
                    manager: None,
                    on_premises_sync_enabled: false,
                    mailbox: super::tenant::Mailbox::User,
                    last_sign_in: None,
                    deleted: None,
                };
                let result = apply_to(tenant, TenantChange::CreateUser(Box::new(new_user)), now);
                if result.is_ok() {
                    users.push(id);
                    summary.users_created += 1;
                    if let Some(group) = group
                        && apply_to(tenant, TenantChange::AddMember { group, member: id }, now)
                            .is_ok()
                    {
                        summary.members_added += 1;
                    }
                }
                result
            }
            (78..=82, Some(user), _) => {
                let result = apply_to(tenant, TenantChange::SoftDeleteUser(user), now);
                if result.is_ok() {
                    users.retain(|u| *u != user);
                    soft_deleted.push(user);
                    summary.users_soft_deleted += 1;
                }
                result
            }
            (83..=85, _, _) if !soft_deleted.is_empty() => {
                let position = rng.random_range(0..soft_deleted.len());
                let user = soft_deleted.swap_remove(position);
                let result = apply_to(tenant, TenantChange::RestoreUser(user), now);
                if result.is_ok() {
                    users.push(user);
                    summary.users_restored += 1;
                }
                result
            }
            (86..=87, Some(user), _) => {
                let result = apply_to(tenant, TenantChange::HardDeleteUser(user), now);
                if result.is_ok() {
                    users.retain(|u| *u != user);
                    summary.users_hard_deleted += 1;
                }
                result
            }
            (88..=90, Some(user), Some(group)) => {
                let owned = tenant
                    .groups
                    .get(&group)
                    .is_some_and(|g| g.owners.contains(&user));
                let change = if owned {
                    TenantChange::RemoveOwner { group, owner: user }
                } else {
                    TenantChange::AddOwner { group, owner: user }
                };
                apply_to(tenant, change, now).map(|_| summary.owners_changed += 1)
            }
            (91..=94, Some(user), _) => match apps.choose(&mut rng).copied() {
                Some(resource) => {
                    let role = tenant
                        .service_principals
                        .get(&resource)
                        .and_then(|s| {
                            s.app_roles
                                .iter()
                                .filter(|r| r.allowed_member_types.iter().any(|t| t == "User"))
                                .map(|r| r.id)
                                .collect::<Vec<_>>()
                                .choose(&mut rng)
                                .copied()
                        })
                        .unwrap_or(super::tenant::DEFAULT_APP_ROLE_ID);
                    let assigned = tenant.service_principals.get(&resource).is_some_and(|s| {
                        s.app_role_assigned_to
                            .iter()
                            .any(|a| a.principal_id == user && a.app_role_id == role)
                    });
                    let change = if assigned {
                        TenantChange::UnassignAppRole {
                            resource,
                            principal: user,
                            app_role: role,
                        }
                    } else {
                        TenantChange::AssignAppRole {
                            resource,
                            principal: user,
                            app_role: role,
                        }
                    };
                    apply_to(tenant, change, now).map(|_| summary.app_role_assignments_changed += 1)
                }
                None => Ok(()),
            },
            (95..=96, Some(user), _) => match directory_roles.choose(&mut rng).copied() {
                Some(role_definition) => {
                    let id = directory_role_assignment_id(role_definition, user, "/");
                    let change = if tenant.directory_role_assignments.contains_key(&id) {
                        TenantChange::UnassignDirectoryRole {
                            role_definition,
                            principal: user,
                            directory_scope_id: "/".into(),
                        }
                    } else {
                        TenantChange::AssignDirectoryRole {
                            role_definition,
                            principal: user,
                            directory_scope_id: "/".into(),
                        }
                    };
                    apply_to(tenant, change, now)
                        .map(|_| summary.directory_role_assignments_changed += 1)
                }
                None => Ok(()),
            },
            (97..=99, Some(user), _) => {
                let existing = tenant
                    .role_assignments
                    .keys()
                    .nth(rng.random_range(0..tenant.role_assignments.len().max(1)))
                    .copied();
                let change = match (
                    rng.random_bool(0.5),
                    existing,
                    subscriptions.choose(&mut rng),
                ) {
                    (true, Some(name), _) => TenantChange::DeleteRoleAssignment { name },
                    (_, _, Some(subscription)) => TenantChange::CreateRoleAssignment {
                        name: derived_uuid(&[b"churn-rbac", &tag]),
                        scope: subscription_scope(*subscription),
                        role_definition: reader,
                        principal: user,
                        principal_type: super::tenant::ArmPrincipalType::User,
                    },
                    _ => continue,
                };
                apply_to(tenant, change, now).map(|_| summary.role_assignments_changed += 1)
            }
            _ => Ok(()),
        };
        if outcome.is_err() {
            summary.refused += 1;
        }
    }
    summary
}
