//! Seeded generation of realistic tenants from ten to a million users: the same spec and seed
//! always give the same tenant, ids included.

use super::tenant::Tenant;

/// What tenant to generate. `with_users` derives every count from the user count; each field
/// can then be overridden.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSpec {
    pub seed: u64,
    pub users: usize,
    /// Share of users that are guests (B2B).
    pub guest_share: f64,
    /// Share of users with `accountEnabled = false`.
    pub disabled_share: f64,
    pub groups: usize,
    /// Share of groups synced from on-premises AD.
    pub on_premises_group_share: f64,
    /// Share of groups that are Microsoft 365 (`Unified`) groups.
    pub unified_group_share: f64,
    /// Groups with this many members or more are generated on top of the long tail
    /// (a 1,000,000-user tenant gets a few groups of 100,000+).
    pub huge_groups: usize,
    /// Groups nested as members of other groups.
    pub nested_groups: usize,
    /// Enterprise applications (servicePrincipalType `Application`) with app roles.
    pub applications: usize,
    pub managed_identities: usize,
    pub management_groups: usize,
    pub subscriptions: usize,
    pub resource_groups_per_subscription: usize,
    pub storage_accounts_per_subscription: usize,
    pub containers_per_storage_account: usize,
    pub key_vaults_per_subscription: usize,
    pub custom_roles: usize,
    /// RBAC assignments spread over every scope kind.
    pub role_assignments: usize,
    pub has_p2_license: bool,
}

impl TenantSpec {
    /// About 50 users: quick tests.
    pub fn small() -> Self {
        TenantSpec::with_users(50)
    }

    /// A few thousand users: demos.
    pub fn demo() -> Self {
        TenantSpec::with_users(3000)
    }

    /// Every count derived from `users`, seed 1.
    pub fn with_users(users: usize) -> Self {
        let scaled = |per_thousand: f64, min: usize, max: usize| {
            ((users as f64 * per_thousand / 1000.0).round() as usize).clamp(min, max)
        };
        let subscriptions = scaled(2.0, 2, 200);
        TenantSpec {
            seed: 1,
            users,
            guest_share: 0.08,
            disabled_share: 0.05,
            groups: scaled(100.0, 5, 100_000),
            on_premises_group_share: 0.2,
            unified_group_share: 0.3,
            huge_groups: if users >= 500_000 { 3 } else { 1 },
            nested_groups: scaled(10.0, 2, 10_000),
            applications: scaled(10.0, 3, 5000),
            managed_identities: scaled(5.0, 2, 5000),
            management_groups: scaled(1.0, 3, 100),
            subscriptions,
            resource_groups_per_subscription: 4,
            storage_accounts_per_subscription: 2,
            containers_per_storage_account: 3,
            key_vaults_per_subscription: 1,
            custom_roles: 2,
            role_assignments: scaled(20.0, 20, 50_000),
            has_p2_license: true,
        }
    }

    /// Checks the spec before generating, naming the field that is wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (name, share) in [
            ("guest_share", self.guest_share),
            ("disabled_share", self.disabled_share),
            ("on_premises_group_share", self.on_premises_group_share),
            ("unified_group_share", self.unified_group_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                anyhow::bail!("tenant spec: {name} must be between 0.0 and 1.0, got {share}");
            }
        }
        if self.users < 10 {
            anyhow::bail!("tenant spec: users must be at least 10, got {}", self.users);
        }
        if self.users > 5_000_000 {
            anyhow::bail!(
                "tenant spec: users must be at most 5,000,000, got {}",
                self.users
            );
        }
        if self.subscriptions == 0 {
            anyhow::bail!("tenant spec: subscriptions must be at least 1");
        }
        if self.management_groups == 0 {
            anyhow::bail!("tenant spec: management_groups must be at least 1 (the root)");
        }
        Ok(())
    }

    /// Generates the tenant this spec describes.
    pub fn generate(&self) -> anyhow::Result<Tenant> {
        self.validate()?;
        todo!("emu-core: in progress")
    }
}
