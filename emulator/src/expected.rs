//! The expected access graph: what a correct worker must export for the emulator's tenant,
//! computed from the tenant alone, by docs/DATA_MODEL.md. Direct grants only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use super::tenant::{
    ArmPrincipalType, DEFAULT_APP_ROLE_ID, Group, GroupAccess, RoleEligibility,
    ServicePrincipalType, Tenant, container_scope, management_group_scope, resource_group_scope,
    scope_is_within, storage_account_scope, subscription_scope,
};

/// The worker options that change what is exported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedOptions {
    pub mailbox_settings: bool,
    pub skip_ad_groups: bool,
    pub skip_unused_roles: bool,
    pub skip_storage_containers: bool,
    pub skip_p2: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedResource {
    /// `"<type>:<id>"` of the parent resource.
    pub parent: Option<String>,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedEntitlement {
    /// `"<type>:<id>"` of the resource it belongs to.
    pub resource: String,
    pub slug: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedGrant {
    pub entitlement: String,
    /// `"<type>:<id>"` of the principal.
    pub principal: String,
    /// Entitlement ids of `GrantExpandable`.
    pub expandable: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedGraph {
    pub resource_types: BTreeSet<String>,
    /// Keyed by `"<type>:<id>"`.
    pub resources: BTreeMap<String, ExpectedResource>,
    /// Keyed by entitlement id.
    pub entitlements: BTreeMap<String, ExpectedEntitlement>,
    /// Keyed by grant id.
    pub grants: BTreeMap<String, ExpectedGrant>,
}

impl ExpectedGraph {
    /// The graph a correct worker exports for `tenant` with `options`.
    pub fn compute(tenant: &Tenant, options: &ExpectedOptions) -> ExpectedGraph {
        let mut builder = Builder {
            tenant,
            options,
            p2: tenant.organization.has_p2_license && !options.skip_p2,
            graph: ExpectedGraph::default(),
            scopes: HashMap::new(),
            principals: HashMap::new(),
            grants: Vec::new(),
        };
        builder.resource_types();
        builder.directory();
        builder.arm();
        // One bulk build is much faster than millions of ordered inserts.
        builder.graph.grants = builder.grants.into_iter().collect();
        builder.graph
    }

    /// The grants whose principal is `principal` (`"<type>:<id>"`), for focused assertions.
    pub fn grants_of<'a>(
        &'a self,
        principal: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a ExpectedGrant)> + 'a {
        self.grants
            .iter()
            .filter(move |(_, g)| g.principal == principal)
    }
}

/// Resource types the worker declares: all of them, less `container` when containers are
/// skipped.
const RESOURCE_TYPES: &[&str] = &[
    "tenant",
    "user",
    "group",
    "enterprise_application",
    "managed_identity",
    "directory_role",
    "management_group",
    "subscription",
    "resource_group",
    "role",
    "storage_account",
    "container",
    "azure_resource",
];

struct Builder<'a> {
    tenant: &'a Tenant,
    options: &'a ExpectedOptions,
    /// P2 features are read: the tenant has the licence and the option does not skip them.
    p2: bool,
    graph: ExpectedGraph,
    /// Lower-cased ARM scope -> `"<type>:<id>"` of the emitted scope resource.
    scopes: HashMap<String, String>,
    /// Emitted users, groups and service principals -> their resource type.
    principals: HashMap<Uuid, &'static str>,
    grants: Vec<(String, ExpectedGrant)>,
}

impl Builder<'_> {
    fn resource_types(&mut self) {
        for kind in RESOURCE_TYPES {
            if *kind == "container" && self.options.skip_storage_containers {
                continue;
            }
            self.graph.resource_types.insert((*kind).to_string());
        }
    }

    fn resource(&mut self, key: String, parent: Option<String>, display_name: &str) {
        self.graph.resources.insert(
            key,
            ExpectedResource {
                parent,
                display_name: display_name.to_string(),
            },
        );
    }

    fn entitlement(&mut self, resource: &str, slug: String) -> String {
        let id = format!("{resource}:{slug}");
        self.graph.entitlements.insert(
            id.clone(),
            ExpectedEntitlement {
                resource: resource.to_string(),
                slug,
            },
        );
        id
    }

    /// A grant of `entitlement` to `principal` (already known to be emitted), when the
    /// entitlement exists.
    fn grant(&mut self, entitlement: &str, principal: Option<String>) {
        let Some(principal) = principal else { return };
        if !self.graph.entitlements.contains_key(entitlement) {
            return;
        }
        let expandable = match principal.strip_prefix("group:") {
            Some(group) => vec![format!("group:{group}:members")],
            None => Vec::new(),
        };
        self.grants.push((
            format!("{entitlement}:{principal}"),
            ExpectedGrant {
                entitlement: entitlement.to_string(),
                principal,
                expandable,
            },
        ));
    }

    /// The emitted resource a directory object id names, by its real type (skipped
    /// on-premises groups, soft-deleted objects and legacy principals are not emitted).
    fn directory_principal(&self, id: Uuid) -> Option<String> {
        self.principals.get(&id).map(|kind| format!("{kind}:{id}"))
    }

    fn directory(&mut self) {
        let tenant = self.tenant;
        let tenant_key = format!("tenant:{}", tenant.tenant_id());
        self.resource(tenant_key.clone(), None, &tenant.organization.display_name);
        self.scopes.insert("/".into(), tenant_key.clone());

        for user in tenant.live_users() {
            self.resource(format!("user:{}", user.id), None, &user.display_name);
            self.principals.insert(user.id, "user");
        }
        let emitted_groups: Vec<&Group> = tenant
            .live_groups()
            .filter(|g| !(self.options.skip_ad_groups && g.on_premises_sync_enabled))
            .collect();
        for group in &emitted_groups {
            self.resource(format!("group:{}", group.id), None, &group.display_name);
            self.principals.insert(group.id, "group");
        }
        for sp in tenant.service_principals.values() {
            let kind = match sp.service_principal_type {
                ServicePrincipalType::Application => "enterprise_application",
                ServicePrincipalType::ManagedIdentity => "managed_identity",
                ServicePrincipalType::Legacy => continue,
            };
            self.resource(format!("{kind}:{}", sp.id), None, &sp.display_name);
            self.principals.insert(sp.id, kind);
        }
        for role in tenant.directory_role_definitions.values() {
            self.resource(
                format!("directory_role:{}", role.id),
                Some(tenant_key.clone()),
                &role.display_name,
            );
        }

        // Groups: members, owners, and PIM for Groups eligibility.
        for group in &emitted_groups {
            let key = format!("group:{}", group.id);
            let members = self.entitlement(&key, "members".into());
            let owners = self.entitlement(&key, "owners".into());
            for member in &group.members {
                let principal = self.directory_principal(*member);
                self.grant(&members, principal);
            }
            for owner in &group.owners {
                let principal = self.directory_principal(*owner);
                self.grant(&owners, principal);
            }
            if self.p2 {
                self.entitlement(&key, "eligible_members".into());
                self.entitlement(&key, "eligible_owners".into());
            }
        }
        if self.p2 {
            for eligibility in tenant.group_eligibilities.values() {
                let slug = match eligibility.access {
                    GroupAccess::Member => "eligible_members",
                    GroupAccess::Owner => "eligible_owners",
                };
                let entitlement = format!("group:{}:{slug}", eligibility.group_id);
                let principal = self.directory_principal(eligibility.principal_id);
                self.grant(&entitlement, principal);
            }
        }

        // Enterprise applications: owners and one entitlement per app role plus the default.
        for sp in tenant.service_principals.values() {
            if sp.service_principal_type != ServicePrincipalType::Application {
                continue;
            }
            let key = format!("enterprise_application:{}", sp.id);
            let owners = self.entitlement(&key, "owners".into());
            for owner in &sp.owners {
                let principal = self.directory_principal(*owner);
                self.grant(&owners, principal);
            }
            for role in &sp.app_roles {
                self.entitlement(&key, format!("assignment:{}", role.id));
            }
            self.entitlement(&key, format!("assignment:{DEFAULT_APP_ROLE_ID}"));
            for assignment in &sp.app_role_assigned_to {
                let entitlement = format!("{key}:assignment:{}", assignment.app_role_id);
                let principal = self.directory_principal(assignment.principal_id);
                self.grant(&entitlement, principal);
            }
        }

        // Directory roles: active assignments (any directory scope) and PIM eligibility.
        for role in tenant.directory_role_definitions.values() {
            let key = format!("directory_role:{}", role.id);
            self.entitlement(&key, "assigned".into());
            if self.p2 {
                self.entitlement(&key, "eligible".into());
            }
        }
        for assignment in tenant.directory_role_assignments.values() {
            let entitlement = format!("directory_role:{}:assigned", assignment.role_definition_id);
            let principal = self.directory_principal(assignment.principal_id);
            self.grant(&entitlement, principal);
        }
        if self.p2 {
            for eligibility in tenant.directory_role_eligibilities.values() {
                let entitlement =
                    format!("directory_role:{}:eligible", eligibility.role_definition_id);
                let principal = self.directory_principal(eligibility.principal_id);
                self.grant(&entitlement, principal);
            }
        }
    }

    /// The emitted resource an ARM principal names, by its `principalType` and the real type of
    /// a service principal.
    fn arm_principal(&self, id: Uuid, principal_type: ArmPrincipalType) -> Option<String> {
        let kind = *self.principals.get(&id)?;
        let matches = match principal_type {
            ArmPrincipalType::User => kind == "user",
            ArmPrincipalType::Group => kind == "group",
            ArmPrincipalType::ServicePrincipal => {
                kind == "enterprise_application" || kind == "managed_identity"
            }
            ArmPrincipalType::ForeignGroup | ArmPrincipalType::Device => false,
        };
        matches.then(|| format!("{kind}:{id}"))
    }

    fn arm(&mut self) {
        let tenant = self.tenant;
        let tenant_key = format!("tenant:{}", tenant.tenant_id());

        for group in tenant.management_groups.values() {
            let parent = match &group.parent {
                Some(parent) => format!("management_group:{parent}"),
                None => tenant_key.clone(),
            };
            let key = format!("management_group:{}", group.name);
            self.resource(key.clone(), Some(parent), &group.display_name);
            self.scopes.insert(
                management_group_scope(&group.name).to_ascii_lowercase(),
                key,
            );
        }
        for subscription in tenant.subscriptions.values() {
            let parent = if tenant
                .management_groups
                .contains_key(&subscription.management_group)
            {
                format!("management_group:{}", subscription.management_group)
            } else {
                tenant_key.clone()
            };
            let key = format!("subscription:{}", subscription.id);
            self.resource(key.clone(), Some(parent), &subscription.display_name);
            self.scopes.insert(
                subscription_scope(subscription.id).to_ascii_lowercase(),
                key,
            );
        }
        for rg in tenant.resource_groups.values() {
            if !tenant.subscriptions.contains_key(&rg.subscription) {
                continue;
            }
            let key = format!("resource_group:{}:{}", rg.subscription, rg.name);
            self.resource(
                key.clone(),
                Some(format!("subscription:{}", rg.subscription)),
                &rg.name,
            );
            self.scopes.insert(
                resource_group_scope(rg.subscription, &rg.name).to_ascii_lowercase(),
                key,
            );
        }
        for account in tenant.storage_accounts.values() {
            let Some(rg) = tenant.resource_group(account.subscription, &account.resource_group)
            else {
                continue;
            };
            let rg_key = format!("resource_group:{}:{}", rg.subscription, rg.name);
            if !self.graph.resources.contains_key(&rg_key) {
                continue;
            }
            let key = format!(
                "storage_account:{}:{}:{}",
                rg.subscription, rg.name, account.name
            );
            self.resource(key.clone(), Some(rg_key), &account.name);
            self.scopes.insert(
                storage_account_scope(account).to_ascii_lowercase(),
                key.clone(),
            );
            if self.options.skip_storage_containers {
                continue;
            }
            for container in &account.containers {
                let container_key = format!(
                    "container:{}:{}:{}:{container}",
                    rg.subscription, rg.name, account.name
                );
                self.resource(container_key.clone(), Some(key.clone()), container);
                self.scopes.insert(
                    container_scope(account, container).to_ascii_lowercase(),
                    container_key,
                );
            }
        }

        let eligibilities: Vec<&RoleEligibility> = if self.p2 {
            tenant.role_eligibilities.values().collect()
        } else {
            Vec::new()
        };
        // Other resources appear only when something is assigned at their own scope.
        let held_scopes: HashSet<String> = tenant
            .role_assignments
            .values()
            .map(|a| a.scope.to_ascii_lowercase())
            .chain(eligibilities.iter().map(|e| e.scope.to_ascii_lowercase()))
            .collect();
        for resource in tenant.arm_resources.values() {
            let scope = resource.arm_id().to_ascii_lowercase();
            if !held_scopes.contains(&scope) {
                continue;
            }
            let Some(rg) = tenant.resource_group(resource.subscription, &resource.resource_group)
            else {
                continue;
            };
            let rg_key = format!("resource_group:{}:{}", rg.subscription, rg.name);
            if !self.graph.resources.contains_key(&rg_key) {
                continue;
            }
            let key = format!(
                "azure_resource:{}:{}:{}",
                rg.subscription, rg.name, resource.provider_tail
            );
            self.resource(key.clone(), Some(rg_key), resource.name());
            self.scopes.insert(scope, key);
        }

        // Role definitions, and the roles each scope offers.
        let mut used_roles: HashSet<Uuid> = HashSet::new();
        for assignment in tenant.role_assignments.values() {
            if let Some(scope_key) = self.scopes.get(&assignment.scope.to_ascii_lowercase()) {
                let scope_key = scope_key.clone();
                used_roles.insert(assignment.role_definition);
                self.entitlement(&scope_key, format!("role:{}", assignment.role_definition));
            }
        }
        for eligibility in &eligibilities {
            if let Some(scope_key) = self.scopes.get(&eligibility.scope.to_ascii_lowercase()) {
                let scope_key = scope_key.clone();
                used_roles.insert(eligibility.role_definition);
                self.entitlement(&scope_key, format!("role:{}", eligibility.role_definition));
                self.entitlement(
                    &scope_key,
                    format!("eligible:{}", eligibility.role_definition),
                );
            }
        }
        for role in tenant.role_definitions.values() {
            if self.options.skip_unused_roles && !used_roles.contains(&role.id) {
                continue;
            }
            self.resource(
                format!("role:{}", role.id),
                Some(tenant_key.clone()),
                &role.role_name,
            );
        }
        if !self.options.skip_unused_roles {
            for subscription in tenant.subscriptions.values() {
                let scope = subscription_scope(subscription.id);
                let key = format!("subscription:{}", subscription.id);
                for role in tenant.role_definitions.values() {
                    if role
                        .assignable_scopes
                        .iter()
                        .any(|a| scope_is_within(tenant, &scope, a))
                    {
                        self.entitlement(&key, format!("role:{}", role.id));
                    }
                }
            }
        }

        // Grants, each at the scope the assignment was made at.
        for assignment in tenant.role_assignments.values() {
            let Some(scope_key) = self.scopes.get(&assignment.scope.to_ascii_lowercase()) else {
                continue;
            };
            let entitlement = format!("{scope_key}:role:{}", assignment.role_definition);
            let principal = self.arm_principal(assignment.principal_id, assignment.principal_type);
            self.grant(&entitlement, principal);
        }
        for eligibility in eligibilities {
            let Some(scope_key) = self.scopes.get(&eligibility.scope.to_ascii_lowercase()) else {
                continue;
            };
            let entitlement = format!("{scope_key}:eligible:{}", eligibility.role_definition);
            let principal =
                self.arm_principal(eligibility.principal_id, eligibility.principal_type);
            self.grant(&entitlement, principal);
        }
    }
}
