//! Seeded generation of realistic tenants from ten to a million users: the same spec and seed
//! always give the same tenant, ids included.

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::tenant::{
    AppRole, AppRoleAssignment, ArmPrincipalType, ArmResource, DEFAULT_APP_ROLE_ID, DirectoryRole,
    DirectoryRoleAssignment, DirectoryRoleDefinition, DirectoryRoleEligibility, Group, GroupAccess,
    GroupEligibility, Mailbox, ManagementGroup, Organization, PrincipalKind, ResourceGroup,
    RoleAssignment, RoleDefinition, RoleEligibility, RoleType, ScheduleInfo, ServicePrincipal,
    ServicePrincipalType, StorageAccount, Subscription, Tenant, User, UserType, container_scope,
    management_group_scope, resource_group_scope, scope_is_within, storage_account_scope,
    subscription_scope,
};

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

    /// Generates the tenant this spec describes, timestamps relative to the real time now.
    pub fn generate(&self) -> anyhow::Result<Tenant> {
        self.generate_at(OffsetDateTime::now_utc())
    }

    /// Generates the tenant this spec describes, timestamps relative to `now`.
    pub fn generate_at(&self, now: OffsetDateTime) -> anyhow::Result<Tenant> {
        self.validate()?;
        let mut generator = Generator {
            spec: self,
            rng: StdRng::seed_from_u64(self.seed),
            now,
            user_ids: Vec::with_capacity(self.users),
            member_user_ids: Vec::new(),
            group_ids: Vec::new(),
            application_ids: Vec::new(),
            managed_identity_ids: Vec::new(),
        };
        Ok(generator.run())
    }
}

const FIRST_NAMES: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kofi",
    "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
    "Wei", "Ximena", "Yusuf", "Zoe", "Aiko", "Bruno", "Carmen", "Diego", "Emma", "Felix", "Giulia",
    "Hannah", "Ivan", "Julia", "Karim", "Lucas", "Maya", "Noah",
];
const LAST_NAMES: &[&str] = &[
    "Adams",
    "Becker",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Horvat",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Muller",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quispe",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Usman",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Andersson",
    "Bianchi",
    "Chen",
    "Dvorak",
    "Evans",
    "Ferreira",
    "Gupta",
    "Haddad",
    "Ivanova",
    "Kim",
];
const DEPARTMENTS: &[&str] = &[
    "Finance",
    "Engineering",
    "Sales",
    "Marketing",
    "Legal",
    "HR",
    "Support",
    "Operations",
    "Security",
    "Research",
    "Facilities",
    "Procurement",
];
const GROUP_PURPOSES: &[&str] = &[
    "Team",
    "Readers",
    "Admins",
    "Project",
    "Distribution",
    "Contractors",
    "Leads",
    "On-call",
];
const RESOURCE_GROUP_NAMES: &[&str] = &[
    "rg-network",
    "rg-app",
    "rg-data",
    "rg-shared",
    "rg-monitoring",
    "rg-security",
    "rg-web",
    "rg-batch",
    "rg-identity",
    "rg-backup",
];
const LOCATIONS: &[&str] = &["westeurope", "northeurope", "eastus", "eastus2", "westus2"];
const CONTAINER_NAMES: &[&str] = &["data", "logs", "backups", "exports", "images", "archive"];

/// Microsoft's own tenant, the owner of first-party service principals.
const MICROSOFT_TENANT: Uuid = Uuid::from_u128(0xf8cdef31_a31e_4b4a_93e4_5f571e91255a);

/// Built-in Entra ID role templates (template id = role definition id for built-ins).
const DIRECTORY_ROLES: &[(u128, &str)] = &[
    (
        0x62e90394_69f5_4237_9190_012177145e10,
        "Global Administrator",
    ),
    (0xfe930be7_5e62_47db_91af_98c3a49a38b1, "User Administrator"),
    (0xf2ef992c_3afb_46b9_b7cf_a126ee74c451, "Global Reader"),
    (
        0x194ae4cb_b126_40b2_bd5b_6091b380977d,
        "Security Administrator",
    ),
    (
        0x9b895d92_2cd3_44c7_9d02_a6ac2d5ea5c3,
        "Application Administrator",
    ),
    (
        0x158c047a_c907_4556_b7ef_446551a6b5f7,
        "Cloud Application Administrator",
    ),
    (
        0xfdd7a751_b60b_444a_984c_02652fe8fa1c,
        "Groups Administrator",
    ),
    (
        0x729827e3_9c14_49f7_bb1b_9608f156bbb8,
        "Helpdesk Administrator",
    ),
    (
        0xe8611ab8_c189_46e8_94e1_60213ab1f814,
        "Privileged Role Administrator",
    ),
    (0x5d6b6bb7_de71_4623_b4af_96380a352509, "Security Reader"),
    (
        0x29232cdf_9323_42fd_ade2_1d097af3e4de,
        "Exchange Administrator",
    ),
    (
        0xf28a1f50_f6e7_4571_818b_6a12f2af6b6c,
        "SharePoint Administrator",
    ),
    (
        0xb0f54661_2d74_4c50_afa3_1ec803f12efe,
        "Billing Administrator",
    ),
    (0x88d8e3e3_8f55_4a1e_953a_9b9898b8876b, "Directory Readers"),
    (
        0xc4e39bd9_1100_46d3_8c65_fb160da0071f,
        "Authentication Administrator",
    ),
    (
        0x3a2c62db_5318_420d_8d74_23affee5d9d5,
        "Intune Administrator",
    ),
    (
        0xb1be1c3e_b65d_4f19_8427_f6fa0d97feb9,
        "Conditional Access Administrator",
    ),
    (0x4a5d8f65_41da_4de4_8968_e035b65339cf, "Reports Reader"),
];

/// Built-in Azure roles: (GUID, name, actions, data actions).
const AZURE_ROLES: &[(u128, &str, &[&str], &[&str])] = &[
    (0x8e3af657_a8ff_443c_a75c_2fe8c4bcb635, "Owner", &["*"], &[]),
    (
        0xb24988ac_6180_42a0_ab88_20f7382dd24c,
        "Contributor",
        &["*"],
        &[],
    ),
    (
        0xacdd72a7_3385_48ef_bd42_f606fba81ae7,
        "Reader",
        &["*/read"],
        &[],
    ),
    (
        0x18d7d88d_d35e_4fb5_a5c3_7773c20a72d9,
        "User Access Administrator",
        &["*/read", "Microsoft.Authorization/*"],
        &[],
    ),
    (
        0xf58310d9_a9f6_439a_9e8d_f62e7b41a168,
        "Role Based Access Control Administrator",
        &[
            "Microsoft.Authorization/roleAssignments/write",
            "Microsoft.Authorization/roleAssignments/delete",
            "*/read",
        ],
        &[],
    ),
    (
        0x17d1049b_9a84_46fb_8f53_869881c3d3ab,
        "Storage Account Contributor",
        &["Microsoft.Storage/storageAccounts/*"],
        &[],
    ),
    (
        0x2a2b9908_6ea1_4ae2_8e65_a410df84e7d1,
        "Storage Blob Data Reader",
        &["Microsoft.Storage/storageAccounts/blobServices/containers/read"],
        &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
    ),
    (
        0xba92f5b4_2d11_453d_a403_e96b0029c9fe,
        "Storage Blob Data Contributor",
        &["Microsoft.Storage/storageAccounts/blobServices/containers/*"],
        &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
    ),
    (
        0xb7e6dc6d_f1e8_4753_8033_0f276bb0955b,
        "Storage Blob Data Owner",
        &["Microsoft.Storage/storageAccounts/blobServices/containers/*"],
        &["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"],
    ),
    (
        0x00482a5a_887f_4fb3_b363_3b7fe8e74483,
        "Key Vault Administrator",
        &["Microsoft.KeyVault/vaults/*/read"],
        &["Microsoft.KeyVault/vaults/*"],
    ),
    (
        0x4633458b_17de_408a_b874_0445c86b69e6,
        "Key Vault Secrets User",
        &[],
        &["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
    ),
    (
        0x9980e02c_c2be_4d73_94e8_173b1dc7cf3c,
        "Virtual Machine Contributor",
        &["Microsoft.Compute/virtualMachines/*"],
        &[],
    ),
];

/// The built-in role ids used when placing assignments on data-plane scopes.
const STORAGE_DATA_ROLES: &[u128] = &[
    0x2a2b9908_6ea1_4ae2_8e65_a410df84e7d1,
    0xba92f5b4_2d11_453d_a403_e96b0029c9fe,
    0xb7e6dc6d_f1e8_4753_8033_0f276bb0955b,
];
const KEY_VAULT_ROLES: &[u128] = &[
    0x00482a5a_887f_4fb3_b363_3b7fe8e74483,
    0x4633458b_17de_408a_b874_0445c86b69e6,
];

struct Generator<'a> {
    spec: &'a TenantSpec,
    rng: StdRng,
    now: OffsetDateTime,
    user_ids: Vec<Uuid>,
    /// Enabled member users with a mailbox of their own: the people who own and hold things.
    member_user_ids: Vec<Uuid>,
    group_ids: Vec<Uuid>,
    application_ids: Vec<Uuid>,
    managed_identity_ids: Vec<Uuid>,
}

impl Generator<'_> {
    fn run(&mut self) -> Tenant {
        let tenant_id = self.guid();
        let client_app_id = self.guid();
        let secret_bytes: [u8; 30] = self.rng.random();
        let client_secret = URL_SAFE_NO_PAD.encode(secret_bytes);
        let company = format!("Contoso {}", self.spec.seed);
        let initial_domain = format!("contoso{}.onmicrosoft.com", self.spec.seed);
        let organization = Organization {
            tenant_id,
            display_name: company,
            verified_domains: vec![initial_domain, format!("contoso{}.com", self.spec.seed)],
            has_p2_license: self.spec.has_p2_license,
            created: self.now - Duration::days(3 * 365),
        };
        let mut tenant = Tenant::new(organization, client_app_id, client_secret);
        self.users(&mut tenant);
        self.service_principals(&mut tenant);
        self.groups(&mut tenant);
        self.app_role_assignments(&mut tenant);
        self.directory_roles(&mut tenant);
        self.group_eligibilities(&mut tenant);
        self.arm_hierarchy(&mut tenant);
        self.role_definitions(&mut tenant);
        self.role_assignments(&mut tenant);
        tenant
    }

    fn guid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid()
    }

    fn past(&mut self, max_days: i64) -> OffsetDateTime {
        let seconds = self.rng.random_range(0..max_days.max(1) * 86_400);
        self.now - Duration::seconds(seconds)
    }

    /// A long-tailed size: log-uniform between `min` and `max`.
    fn long_tail(&mut self, min: usize, max: usize) -> usize {
        let (low, high) = ((min.max(1)) as f64, (max.max(min.max(1))) as f64);
        let x: f64 = self.rng.random_range(low.ln()..=high.ln());
        (x.exp().round() as usize).clamp(min, max.max(min))
    }

    fn users(&mut self, tenant: &mut Tenant) {
        let domain = tenant.organization.verified_domains[1].clone();
        let initial_domain = tenant.organization.verified_domains[0].clone();
        for index in 0..self.spec.users {
            let id = self.guid();
            let first = *FIRST_NAMES.choose(&mut self.rng).unwrap_or(&"Alex");
            let last = *LAST_NAMES.choose(&mut self.rng).unwrap_or(&"Smith");
            let guest = self.rng.random_bool(self.spec.guest_share);
            let local = format!("{}.{}{}", first, last, index).to_ascii_lowercase();
            let mailbox = if guest {
                Mailbox::None
            } else {
                match self.rng.random_range(0..1000) {
                    0..=19 => Mailbox::Shared,
                    20..=29 => Mailbox::Room,
                    30..=34 => Mailbox::Equipment,
                    35..=129 => Mailbox::None,
                    _ => Mailbox::User,
                }
            };
            let resource_mailbox = matches!(
                mailbox,
                Mailbox::Shared | Mailbox::Room | Mailbox::Equipment
            );
            // Resource mailboxes are disabled accounts in Exchange Online.
            let disabled = resource_mailbox || self.rng.random_bool(self.spec.disabled_share);
            let (upn, mail, user_type) = if guest {
                let home = format!("{local}@fabrikam-partner.com");
                (
                    format!("{}#EXT#@{initial_domain}", home.replace('@', "_")),
                    Some(home),
                    UserType::Guest,
                )
            } else {
                let address = format!("{local}@{domain}");
                let mail = (mailbox != Mailbox::None).then(|| address.clone());
                (address, mail, UserType::Member)
            };
            let manager = if guest || index < 10 {
                None
            } else {
                // A management tree: each person reports to someone earlier in the list.
                self.member_user_ids
                    .get(self.rng.random_range(0..self.member_user_ids.len().max(1)) / 4)
                    .copied()
            };
            let created = self.past(5 * 365);
            let last_sign_in = (!disabled && self.rng.random_bool(0.85)).then(|| self.past(90));
            let user = User {
                id,
                user_principal_name: upn,
                mail,
                display_name: if resource_mailbox {
                    format!(
                        "{} {} {index}",
                        DEPARTMENTS[index % DEPARTMENTS.len()],
                        match mailbox {
                            Mailbox::Room => "Room",
                            Mailbox::Equipment => "Equipment",
                            _ => "Shared",
                        }
                    )
                } else {
                    format!("{first} {last}")
                },
                given_name: (!resource_mailbox).then(|| first.to_string()),
                surname: (!resource_mailbox).then(|| last.to_string()),
                account_enabled: !disabled,
                user_type,
                employee_id: (user_type == UserType::Member && !resource_mailbox)
                    .then(|| format!("E{index:07}")),
                created,
                manager,
                on_premises_sync_enabled: user_type == UserType::Member
                    && self.rng.random_bool(0.3),
                mailbox,
                last_sign_in,
                deleted: None,
            };
            if user_type == UserType::Member && !resource_mailbox && !disabled {
                self.member_user_ids.push(id);
            }
            self.user_ids.push(id);
            tenant.users.insert(id, user);
        }
        if self.member_user_ids.is_empty() {
            self.member_user_ids = self.user_ids.clone();
        }
    }

    fn service_principals(&mut self, tenant: &mut Tenant) {
        let tenant_id = tenant.tenant_id();
        // The connector's own app registration.
        let own = self.guid();
        tenant.service_principals.insert(
            own,
            ServicePrincipal {
                id: own,
                app_id: tenant.client_app_id,
                display_name: "baton-azure-delta".into(),
                service_principal_type: ServicePrincipalType::Application,
                app_roles: Vec::new(),
                account_enabled: true,
                app_owner_organization_id: Some(tenant_id),
                tags: vec!["WindowsAzureActiveDirectoryIntegratedApp".into()],
                homepage: None,
                owners: Vec::new(),
                created: self.past(30),
                app_role_assigned_to: Vec::new(),
            },
        );
        for index in 0..self.spec.applications {
            let id = self.guid();
            let app_id = self.guid();
            let first_party = index % 7 == 3;
            let role_count = if index % 5 == 0 {
                0
            } else {
                self.rng.random_range(1..=4)
            };
            let mut app_roles = Vec::with_capacity(role_count);
            for role_index in 0..role_count {
                let allowed: &[&str] = match role_index % 3 {
                    0 => &["User"],
                    1 => &["Application"],
                    _ => &["User", "Application"],
                };
                let name = ["Reader", "Writer", "Admin", "Auditor"][role_index % 4];
                app_roles.push(AppRole {
                    id: self.guid(),
                    display_name: name.to_string(),
                    description: format!("{name} of app {index}"),
                    value: Some(format!("App.{name}")),
                    allowed_member_types: allowed.iter().map(|s| s.to_string()).collect(),
                    is_enabled: role_index != 3,
                });
            }
            let owners = {
                let count = self.rng.random_range(0..=2);
                sample_distinct(&mut self.rng, &self.member_user_ids, count)
            };
            let sp = ServicePrincipal {
                id,
                app_id,
                display_name: format!("{} App {index}", DEPARTMENTS[index % DEPARTMENTS.len()]),
                service_principal_type: ServicePrincipalType::Application,
                app_roles,
                account_enabled: index % 13 != 12,
                app_owner_organization_id: Some(if first_party {
                    MICROSOFT_TENANT
                } else {
                    tenant_id
                }),
                tags: vec!["WindowsAzureActiveDirectoryIntegratedApp".into()],
                homepage: Some(format!("https://app{index}.contoso{}.com", self.spec.seed)),
                owners,
                created: self.past(3 * 365),
                app_role_assigned_to: Vec::new(),
            };
            self.application_ids.push(id);
            tenant.service_principals.insert(id, sp);
        }
        for index in 0..self.spec.managed_identities {
            let id = self.guid();
            let app_id = self.guid();
            tenant.service_principals.insert(
                id,
                ServicePrincipal {
                    id,
                    app_id,
                    display_name: format!("mi-workload-{index}"),
                    service_principal_type: ServicePrincipalType::ManagedIdentity,
                    app_roles: Vec::new(),
                    account_enabled: true,
                    app_owner_organization_id: None,
                    tags: Vec::new(),
                    homepage: None,
                    owners: Vec::new(),
                    created: self.past(2 * 365),
                    app_role_assigned_to: Vec::new(),
                },
            );
            self.managed_identity_ids.push(id);
        }
        // One legacy principal: it may sit in groups, but the access graph leaves it out.
        let legacy = self.guid();
        tenant.service_principals.insert(
            legacy,
            ServicePrincipal {
                id: legacy,
                app_id: self.guid(),
                display_name: "Legacy line-of-business principal".into(),
                service_principal_type: ServicePrincipalType::Legacy,
                app_roles: Vec::new(),
                account_enabled: true,
                app_owner_organization_id: Some(tenant_id),
                tags: Vec::new(),
                homepage: None,
                owners: Vec::new(),
                created: self.past(10 * 365),
                app_role_assigned_to: Vec::new(),
            },
        );
    }

    fn groups(&mut self, tenant: &mut Tenant) {
        let users = self.spec.users;
        let cap = (users / 4).clamp(3, 1000);
        let huge = [0.3, 0.15, 0.1, 0.1, 0.1];
        for index in 0..self.spec.groups {
            let id = self.guid();
            let size = if index < self.spec.huge_groups {
                ((users as f64) * huge[index.min(huge.len() - 1)]).round() as usize
            } else {
                self.long_tail(1, cap)
            };
            // The first two regular groups are one of each special kind, so even a tiny tenant
            // has both.
            let regular = index.checked_sub(self.spec.huge_groups);
            let on_premises = regular == Some(0)
                || (regular.is_some_and(|r| r > 1)
                    && self.rng.random_bool(self.spec.on_premises_group_share));
            let unified = regular == Some(1)
                || (!on_premises
                    && regular.is_some_and(|r| r > 1)
                    && self.rng.random_bool(self.spec.unified_group_share));
            let members = sample_distinct(&mut self.rng, &self.user_ids, size);
            let owners = if on_premises {
                Vec::new()
            } else {
                {
                    let count = self.rng.random_range(0..=2);
                    sample_distinct(&mut self.rng, &self.member_user_ids, count)
                }
            };
            let department = DEPARTMENTS[index % DEPARTMENTS.len()];
            let display_name = if index == 0 {
                "All Employees".to_string()
            } else {
                let purpose = GROUP_PURPOSES[(index / DEPARTMENTS.len()) % GROUP_PURPOSES.len()];
                format!("{department} {purpose} {index}")
            };
            let group = Group {
                id,
                display_name,
                description: Some(format!("{department} group {index}")),
                mail_enabled: unified || (!on_premises && index % 9 == 4),
                security_enabled: !unified,
                group_types: if unified {
                    vec!["Unified".into()]
                } else {
                    Vec::new()
                },
                on_premises_sync_enabled: on_premises,
                created: self.past(4 * 365),
                members,
                owners,
                deleted: None,
            };
            self.group_ids.push(id);
            tenant.groups.insert(id, group);
        }
        // Nesting only from later groups into earlier ones keeps the nesting acyclic.
        let group_count = self.group_ids.len();
        let mut nested = 0;
        let mut attempts = 0;
        while group_count > 1
            && nested < self.spec.nested_groups
            && attempts < self.spec.nested_groups * 4
        {
            attempts += 1;
            let a = self.rng.random_range(0..group_count);
            let b = self.rng.random_range(0..group_count);
            if a == b {
                continue;
            }
            let (parent, child) = (self.group_ids[a.min(b)], self.group_ids[a.max(b)]);
            if let Some(group) = tenant.groups.get_mut(&parent)
                && !group.members.contains(&child)
            {
                group.members.push(child);
                nested += 1;
            }
        }
        // Workloads in groups: a few managed identities and apps, plus the legacy principal.
        let legacy = tenant
            .service_principals
            .values()
            .find(|s| s.service_principal_type == ServicePrincipalType::Legacy)
            .map(|s| s.id);
        let mut workloads: Vec<Uuid> = self.managed_identity_ids.iter().take(3).copied().collect();
        workloads.extend(self.application_ids.iter().take(2));
        workloads.extend(legacy);
        for workload in workloads {
            if let Some(group_id) = pick(&mut self.rng, &self.group_ids)
                && let Some(group) = tenant.groups.get_mut(&group_id)
                && !group.members.contains(&workload)
            {
                group.members.push(workload);
            }
        }
        // A service principal owning a group.
        if let (Some(app), Some(group_id)) = (
            self.application_ids.first().copied(),
            self.group_ids.last().copied(),
        ) && let Some(group) = tenant.groups.get_mut(&group_id)
            && !group.on_premises_sync_enabled
        {
            group.owners.push(app);
        }
    }

    fn app_role_assignments(&mut self, tenant: &mut Tenant) {
        let user_cap = (self.spec.users / 10).clamp(2, 2000);
        let mut workloads = self.managed_identity_ids.clone();
        workloads.extend(&self.application_ids);
        for app_index in 0..self.application_ids.len() {
            let resource_id = self.application_ids[app_index];
            let Some(resource) = tenant.service_principals.get(&resource_id) else {
                continue;
            };
            let resource_name = resource.display_name.clone();
            let user_roles: Vec<Uuid> = resource
                .app_roles
                .iter()
                .filter(|r| r.allowed_member_types.iter().any(|t| t == "User"))
                .map(|r| r.id)
                .collect();
            let app_roles: Vec<Uuid> = resource
                .app_roles
                .iter()
                .filter(|r| r.allowed_member_types.iter().any(|t| t == "Application"))
                .map(|r| r.id)
                .collect();
            let mut assignments: Vec<(Uuid, PrincipalKind, Uuid)> = Vec::new();
            let user_count = self.long_tail(1, user_cap);
            for user in sample_distinct(&mut self.rng, &self.user_ids, user_count) {
                let role = pick(&mut self.rng, &user_roles).unwrap_or(DEFAULT_APP_ROLE_ID);
                assignments.push((user, PrincipalKind::User, role));
            }
            let group_count = self.rng.random_range(0..=2);
            for group in sample_distinct(&mut self.rng, &self.group_ids, group_count) {
                let role = pick(&mut self.rng, &user_roles).unwrap_or(DEFAULT_APP_ROLE_ID);
                assignments.push((group, PrincipalKind::Group, role));
            }
            if !app_roles.is_empty() {
                let count = self.rng.random_range(0..=2);
                for caller in sample_distinct(&mut self.rng, &workloads, count) {
                    if caller == resource_id {
                        continue;
                    }
                    let role = pick(&mut self.rng, &app_roles).unwrap_or(DEFAULT_APP_ROLE_ID);
                    assignments.push((caller, PrincipalKind::ServicePrincipal, role));
                }
            }
            let mut seen = HashSet::new();
            let mut list = Vec::with_capacity(assignments.len());
            for (principal, kind, role) in assignments {
                if !seen.insert((principal, role)) {
                    continue;
                }
                let principal_display_name = tenant
                    .directory_object_name(principal)
                    .unwrap_or_default()
                    .to_string();
                list.push(AppRoleAssignment {
                    id: super::tenant::app_role_assignment_id(principal, resource_id, role),
                    principal_id: principal,
                    principal_type: kind,
                    principal_display_name,
                    resource_id,
                    resource_display_name: resource_name.clone(),
                    app_role_id: role,
                    created: self.past(2 * 365),
                });
            }
            if let Some(resource) = tenant.service_principals.get_mut(&resource_id) {
                resource.app_role_assigned_to = list;
            }
        }
    }

    fn directory_roles(&mut self, tenant: &mut Tenant) {
        for (template, name) in DIRECTORY_ROLES {
            let id = Uuid::from_u128(*template);
            tenant.directory_role_definitions.insert(
                id,
                DirectoryRoleDefinition {
                    id,
                    display_name: (*name).to_string(),
                    description: format!("Can manage what the {name} role covers."),
                    is_built_in: true,
                    template_id: id,
                },
            );
        }
        let custom = self.guid();
        tenant.directory_role_definitions.insert(
            custom,
            DirectoryRoleDefinition {
                id: custom,
                display_name: "Contoso App Registration Reviewer".into(),
                description: "Custom role: reads app registrations.".into(),
                is_built_in: false,
                template_id: custom,
            },
        );
        let definitions: Vec<Uuid> = tenant.directory_role_definitions.keys().copied().collect();
        // A role-assignable group holds a role, and scoped and app-principal holders exist.
        let mut holders: Vec<(Uuid, Uuid, String)> = Vec::new();
        let global_admin = Uuid::from_u128(DIRECTORY_ROLES[0].0);
        for admin in sample_distinct(&mut self.rng, &self.member_user_ids, 3) {
            holders.push((global_admin, admin, "/".into()));
        }
        let assignment_count = (self.spec.users / 50).clamp(4, 500);
        for _ in 0..assignment_count {
            let Some(role) = pick(&mut self.rng, &definitions) else {
                break;
            };
            let principal = match self.rng.random_range(0..10) {
                0 => pick(&mut self.rng, &self.group_ids),
                1 => pick(&mut self.rng, &self.application_ids),
                _ => pick(&mut self.rng, &self.member_user_ids),
            };
            let Some(principal) = principal else { continue };
            let scope = if self.rng.random_bool(0.1) {
                format!("/administrativeUnits/{}", self.guid())
            } else {
                "/".to_string()
            };
            holders.push((role, principal, scope));
        }
        let mut seen = HashSet::new();
        for (role, principal, scope) in holders {
            if !seen.insert((role, principal, scope.clone())) {
                continue;
            }
            let id = super::tenant::directory_role_assignment_id(role, principal, &scope);
            let created = self.past(2 * 365);
            if scope == "/" {
                let active_id = match tenant.directory_role_by_template(role) {
                    Some(active) => active.id,
                    None => {
                        let active_id = self.guid();
                        let definition = &tenant.directory_role_definitions[&role];
                        tenant.directory_roles.insert(
                            active_id,
                            DirectoryRole {
                                id: active_id,
                                role_template_id: definition.template_id,
                                display_name: definition.display_name.clone(),
                                description: definition.description.clone(),
                                members: Vec::new(),
                            },
                        );
                        active_id
                    }
                };
                if let Some(active) = tenant.directory_roles.get_mut(&active_id) {
                    active.members.push(principal);
                }
            }
            tenant.directory_role_assignments.insert(
                id.clone(),
                DirectoryRoleAssignment {
                    id,
                    role_definition_id: role,
                    principal_id: principal,
                    directory_scope_id: scope,
                    created,
                },
            );
        }
        let eligible_count = (self.spec.users / 100).clamp(2, 200);
        for _ in 0..eligible_count {
            let (Some(role), Some(principal)) = (
                pick(&mut self.rng, &definitions),
                pick(&mut self.rng, &self.member_user_ids),
            ) else {
                break;
            };
            let id = self.guid();
            let instance_id = self.guid();
            let start = self.past(365);
            tenant.directory_role_eligibilities.insert(
                id,
                DirectoryRoleEligibility {
                    id,
                    instance_id,
                    role_definition_id: role,
                    principal_id: principal,
                    directory_scope_id: "/".into(),
                    member_type: "Direct".into(),
                    status: "Provisioned".into(),
                    schedule: ScheduleInfo {
                        start,
                        end: self
                            .rng
                            .random_bool(0.5)
                            .then(|| start + Duration::days(365)),
                    },
                    created: start,
                },
            );
        }
    }

    fn group_eligibilities(&mut self, tenant: &mut Tenant) {
        let cloud_groups: Vec<Uuid> = tenant
            .groups
            .values()
            .filter(|g| !g.on_premises_sync_enabled)
            .map(|g| g.id)
            .collect();
        let count = (self.spec.users / 200).clamp(2, 200);
        for index in 0..count {
            let (Some(group), Some(principal)) = (
                pick(&mut self.rng, &cloud_groups),
                pick(&mut self.rng, &self.member_user_ids),
            ) else {
                break;
            };
            let id = self.guid();
            let instance_id = self.guid();
            let start = self.past(365);
            tenant.group_eligibilities.insert(
                id,
                GroupEligibility {
                    id,
                    instance_id,
                    group_id: group,
                    principal_id: principal,
                    access: if index % 4 == 3 {
                        GroupAccess::Owner
                    } else {
                        GroupAccess::Member
                    },
                    member_type: "Direct".into(),
                    status: "Provisioned".into(),
                    schedule: ScheduleInfo { start, end: None },
                    created: start,
                },
            );
        }
    }

    fn arm_hierarchy(&mut self, tenant: &mut Tenant) {
        let root = tenant.tenant_id().to_string();
        tenant.management_groups.insert(
            root.clone(),
            ManagementGroup {
                name: root.clone(),
                display_name: "Tenant Root Group".into(),
                parent: None,
            },
        );
        let mut names = vec![root.clone()];
        let tops = [
            "mg-platform",
            "mg-landingzones",
            "mg-sandbox",
            "mg-decommissioned",
        ];
        for index in 1..self.spec.management_groups {
            let (name, parent) = if index <= tops.len() {
                (tops[index - 1].to_string(), root.clone())
            } else {
                let parent = names[self.rng.random_range(1..names.len())].clone();
                (format!("mg-{index}"), parent)
            };
            tenant.management_groups.insert(
                name.clone(),
                ManagementGroup {
                    name: name.clone(),
                    display_name: name.trim_start_matches("mg-").replace('-', " "),
                    parent: Some(parent),
                },
            );
            names.push(name);
        }
        for index in 0..self.spec.subscriptions {
            let id = self.guid();
            let management_group = names[self.rng.random_range(0..names.len())].clone();
            tenant.subscriptions.insert(
                id,
                Subscription {
                    id,
                    display_name: format!(
                        "sub-{}-{index}",
                        ["prod", "dev", "test", "shared"][index % 4]
                    ),
                    state: if index % 17 == 16 {
                        "Disabled".into()
                    } else {
                        "Enabled".into()
                    },
                    management_group,
                },
            );
            let rg_count = self
                .spec
                .resource_groups_per_subscription
                .min(RESOURCE_GROUP_NAMES.len());
            let mut rgs = Vec::with_capacity(rg_count);
            for name in RESOURCE_GROUP_NAMES.iter().take(rg_count) {
                let location =
                    (*LOCATIONS.choose(&mut self.rng).unwrap_or(&"westeurope")).to_string();
                tenant.resource_groups.insert(
                    (id, name.to_ascii_lowercase()),
                    ResourceGroup {
                        subscription: id,
                        name: (*name).to_string(),
                        location,
                    },
                );
                rgs.push(*name);
            }
            if rgs.is_empty() {
                continue;
            }
            let short = &id.simple().to_string()[..8];
            for account_index in 0..self.spec.storage_accounts_per_subscription {
                let rg = rgs[account_index % rgs.len()].to_string();
                let containers = CONTAINER_NAMES
                    .iter()
                    .take(self.spec.containers_per_storage_account)
                    .map(|c| c.to_string())
                    .collect();
                let name = format!("st{short}{account_index}");
                let account = StorageAccount {
                    subscription: id,
                    resource_group: rg.clone(),
                    name: name.clone(),
                    location: (*LOCATIONS.choose(&mut self.rng).unwrap_or(&"westeurope"))
                        .to_string(),
                    kind: if account_index % 3 == 2 {
                        "BlobStorage".into()
                    } else {
                        "StorageV2".into()
                    },
                    sku: if account_index % 2 == 0 {
                        "Standard_LRS".into()
                    } else {
                        "Standard_GRS".into()
                    },
                    containers,
                };
                tenant.storage_accounts.insert(
                    (id, rg.to_ascii_lowercase(), name.to_ascii_lowercase()),
                    account,
                );
            }
            for vault_index in 0..self.spec.key_vaults_per_subscription {
                let rg = rgs[(vault_index + 1) % rgs.len()].to_string();
                let resource = ArmResource {
                    subscription: id,
                    resource_group: rg,
                    provider_tail: format!("Microsoft.KeyVault/vaults/kv-{short}-{vault_index}"),
                    location: (*LOCATIONS.choose(&mut self.rng).unwrap_or(&"westeurope"))
                        .to_string(),
                };
                tenant
                    .arm_resources
                    .insert(resource.arm_id().to_ascii_lowercase(), resource);
            }
        }
    }

    fn role_definitions(&mut self, tenant: &mut Tenant) {
        for (id, name, actions, data_actions) in AZURE_ROLES {
            let id = Uuid::from_u128(*id);
            tenant.role_definitions.insert(
                id,
                RoleDefinition {
                    id,
                    role_name: (*name).to_string(),
                    description: format!("Built-in role {name}."),
                    role_type: RoleType::BuiltIn,
                    actions: actions.iter().map(|a| a.to_string()).collect(),
                    data_actions: data_actions.iter().map(|a| a.to_string()).collect(),
                    assignable_scopes: vec!["/".into()],
                },
            );
        }
        let subscriptions: Vec<Uuid> = tenant.subscriptions.keys().copied().collect();
        for index in 0..self.spec.custom_roles {
            let id = self.guid();
            // Custom roles are assignable where their author put them: a subscription, or the
            // management group above one (never an empty branch of the tree).
            let subscription = subscriptions.choose(&mut self.rng).copied();
            let scope = match subscription.and_then(|s| tenant.subscriptions.get(&s)) {
                Some(sub)
                    if index % 2 == 1 && sub.management_group != tenant.tenant_id().to_string() =>
                {
                    management_group_scope(&sub.management_group)
                }
                Some(sub) => subscription_scope(sub.id),
                None => "/".into(),
            };
            tenant.role_definitions.insert(
                id,
                RoleDefinition {
                    id,
                    role_name: format!("Contoso Operator {index}"),
                    description: "Custom role: restarts and reads workloads.".into(),
                    role_type: RoleType::Custom,
                    actions: vec![
                        "*/read".into(),
                        "Microsoft.Compute/virtualMachines/restart/action".into(),
                    ],
                    data_actions: Vec::new(),
                    assignable_scopes: vec![scope],
                },
            );
        }
    }

    /// Every ARM scope with the roles that may be assigned there.
    fn scopes(&self, tenant: &Tenant) -> Vec<(String, Vec<Uuid>)> {
        let general: Vec<Uuid> = AZURE_ROLES
            .iter()
            .filter(|r| !STORAGE_DATA_ROLES.contains(&r.0) && !KEY_VAULT_ROLES.contains(&r.0))
            .map(|r| Uuid::from_u128(r.0))
            .collect();
        let storage: Vec<Uuid> = STORAGE_DATA_ROLES
            .iter()
            .map(|r| Uuid::from_u128(*r))
            .collect();
        let vault: Vec<Uuid> = KEY_VAULT_ROLES
            .iter()
            .map(|r| Uuid::from_u128(*r))
            .collect();
        let mut scopes = vec![("/".to_string(), vec![Uuid::from_u128(AZURE_ROLES[3].0)])];
        for group in tenant.management_groups.values() {
            scopes.push((management_group_scope(&group.name), general.clone()));
        }
        for subscription in tenant.subscriptions.keys() {
            scopes.push((subscription_scope(*subscription), general.clone()));
        }
        for rg in tenant.resource_groups.values() {
            scopes.push((
                resource_group_scope(rg.subscription, &rg.name),
                general.clone(),
            ));
        }
        for account in tenant.storage_accounts.values() {
            let mut roles = storage.clone();
            roles.push(Uuid::from_u128(AZURE_ROLES[5].0));
            scopes.push((storage_account_scope(account), roles));
            for container in &account.containers {
                scopes.push((container_scope(account, container), storage.clone()));
            }
        }
        for resource in tenant.arm_resources.values() {
            scopes.push((resource.arm_id(), vault.clone()));
        }
        // Custom roles join the scopes at or under where they are assignable.
        for role in tenant
            .role_definitions
            .values()
            .filter(|r| r.role_type == RoleType::Custom)
        {
            for (scope, roles) in scopes.iter_mut() {
                if role
                    .assignable_scopes
                    .iter()
                    .any(|a| scope_is_within(tenant, scope, a))
                {
                    roles.push(role.id);
                }
            }
        }
        scopes
    }

    fn role_assignments(&mut self, tenant: &mut Tenant) {
        let scopes = self.scopes(tenant);
        let mut workloads = self.managed_identity_ids.clone();
        workloads.extend(&self.application_ids);
        let mut seen = HashSet::new();
        let mut placed = 0;
        let mut attempts = 0;
        // One assignment at the first scope of each kind (root, management group, subscription,
        // resource group, storage account, container, other resource), then the rest at random.
        let mut kinds_seen = HashSet::new();
        let first_of_each_kind: Vec<usize> = scopes
            .iter()
            .enumerate()
            .filter(|(_, (scope, _))| kinds_seen.insert(scope_kind(scope)))
            .map(|(index, _)| index)
            .collect();
        while placed < self.spec.role_assignments && attempts < self.spec.role_assignments * 4 {
            let scope_index = if attempts < first_of_each_kind.len() {
                first_of_each_kind[attempts]
            } else {
                self.rng.random_range(0..scopes.len())
            };
            attempts += 1;
            let (scope, roles) = &scopes[scope_index];
            let Some(role) = pick(&mut self.rng, roles) else {
                continue;
            };
            let (principal, principal_type) = match self.rng.random_range(0..100) {
                0..=59 => (
                    pick(&mut self.rng, &self.member_user_ids),
                    ArmPrincipalType::User,
                ),
                60..=84 => (
                    pick(&mut self.rng, &self.group_ids),
                    ArmPrincipalType::Group,
                ),
                _ => (
                    pick(&mut self.rng, &workloads),
                    ArmPrincipalType::ServicePrincipal,
                ),
            };
            let Some(principal) = principal else { continue };
            if !seen.insert((scope.clone(), role, principal)) {
                continue;
            }
            let name = self.guid();
            let created = self.past(2 * 365);
            tenant.role_assignments.insert(
                name,
                RoleAssignment {
                    name,
                    scope: scope.clone(),
                    role_definition: role,
                    principal_id: principal,
                    principal_type,
                    created,
                    created_by: self.member_user_ids.first().copied().unwrap_or_default(),
                },
            );
            placed += 1;
        }
        // Principals ARM still lists but Entra ID does not know: a foreign group, a device,
        // and a user deleted long ago.
        if let Some(subscription) = tenant.subscriptions.keys().next().copied() {
            let reader = Uuid::from_u128(AZURE_ROLES[2].0);
            for principal_type in [
                ArmPrincipalType::ForeignGroup,
                ArmPrincipalType::Device,
                ArmPrincipalType::User,
            ] {
                let name = self.guid();
                let principal = self.guid();
                tenant.role_assignments.insert(
                    name,
                    RoleAssignment {
                        name,
                        scope: subscription_scope(subscription),
                        role_definition: reader,
                        principal_id: principal,
                        principal_type,
                        created: self.past(365),
                        created_by: principal,
                    },
                );
            }
        }
        // PIM eligibility at subscription and resource group scopes.
        let eligible_scopes: Vec<&(String, Vec<Uuid>)> = scopes
            .iter()
            .filter(|(s, _)| s.starts_with("/subscriptions/") && s.matches('/').count() <= 4)
            .collect();
        let count = (self.spec.role_assignments / 10).clamp(2, 2000);
        for _ in 0..count {
            let Some((scope, roles)) = eligible_scopes
                .choose(&mut self.rng)
                .map(|s| (s.0.clone(), s.1.clone()))
            else {
                break;
            };
            let (Some(role), Some(principal)) = (
                pick(&mut self.rng, &roles),
                pick(&mut self.rng, &self.member_user_ids),
            ) else {
                continue;
            };
            let (principal, principal_type) = if self.rng.random_bool(0.2)
                && let Some(group) = pick(&mut self.rng, &self.group_ids)
            {
                (group, ArmPrincipalType::Group)
            } else {
                (principal, ArmPrincipalType::User)
            };
            let name = self.guid();
            let instance_name = self.guid();
            let start = self.past(365);
            tenant.role_eligibilities.insert(
                name,
                RoleEligibility {
                    name,
                    instance_name,
                    scope,
                    role_definition: role,
                    principal_id: principal,
                    principal_type,
                    member_type: "Direct".into(),
                    status: "Provisioned".into(),
                    schedule: ScheduleInfo {
                        start,
                        end: Some(start + Duration::days(365)),
                    },
                    created: start,
                },
            );
        }
    }
}

/// What kind of ARM scope a scope string names, for spreading assignments over every kind.
fn scope_kind(scope: &str) -> &'static str {
    let lower = scope.to_ascii_lowercase();
    if lower == "/" {
        "root"
    } else if lower.starts_with("/providers/microsoft.management/") {
        "management group"
    } else if lower.contains("/blobservices/default/containers/") {
        "container"
    } else if lower.contains("/microsoft.storage/storageaccounts/") {
        "storage account"
    } else if lower.contains("/providers/") {
        "resource"
    } else if lower.contains("/resourcegroups/") {
        "resource group"
    } else {
        "subscription"
    }
}

fn pick(rng: &mut StdRng, from: &[Uuid]) -> Option<Uuid> {
    from.choose(rng).copied()
}

/// Up to `count` distinct ids from `from`.
fn sample_distinct(rng: &mut StdRng, from: &[Uuid], count: usize) -> Vec<Uuid> {
    let amount = count.min(from.len());
    rand::seq::index::sample(rng, from.len(), amount)
        .into_iter()
        .map(|i| from[i])
        .collect()
}
