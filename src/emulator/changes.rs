//! Changing a running tenant: the [`TenantChange`] vocabulary, seeded random churn, and the Rust
//! [`Control`] surface tests use (the HTTP control surface calls the same methods).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use uuid::Uuid;

use super::EmulatorState;
use super::expected::{ExpectedGraph, ExpectedOptions};
use super::faults::FaultConfig;
use super::quota::RequestCounts;
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
        let _ = change;
        todo!("emu-core: in progress")
    }

    /// Realistic mixed changes touching about `fraction` of the users.
    pub fn random_churn(&self, rng_seed: u64, fraction: f64) -> ChurnSummary {
        let _ = (rng_seed, fraction);
        todo!("emu-core: in progress")
    }

    pub fn advance_clock(&self, by: Duration) {
        self.state.clock.advance(by);
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

    pub fn set_p2_license(&self, on: bool) {
        self.state.write_tenant().organization.has_p2_license = on;
    }

    /// Runs `read` against the current tenant under its read lock.
    pub fn with_tenant<R>(&self, read: impl FnOnce(&super::Tenant) -> R) -> R {
        read(&self.state.read_tenant())
    }
}
