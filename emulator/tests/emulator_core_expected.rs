//! The expected access graph against a small hand-built tenant whose right answer is worked out
//! here from docs/DATA_MODEL.md, id by id (not from the emulator's own generator).

use std::sync::Arc;

use emulator::changes::TenantChange;
use emulator::tenant::*;
use emulator::{
    Control, EmulatorConfig, EmulatorState, ExpectedGraph, ExpectedOptions, TenantSpec,
};
use time::OffsetDateTime;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + n)
}

const READER: Uuid = Uuid::from_u128(0xacdd72a7_3385_48ef_bd42_f606fba81ae7);
const UAA: Uuid = Uuid::from_u128(0x18d7d88d_d35e_4fb5_a5c3_7773c20a72d9);

struct Ids {
    tenant: Uuid,
    alice: Uuid,
    bob: Uuid,
    carol: Uuid,
    dave: Uuid,
    g1: Uuid,
    g2: Uuid,
    app: Uuid,
    role1: Uuid,
    mi: Uuid,
    legacy: Uuid,
    directory_role: Uuid,
    sub: Uuid,
    custom: Uuid,
    foreign: Uuid,
}

fn ids() -> Ids {
    Ids {
        tenant: id(1),
        alice: id(10),
        bob: id(11),
        carol: id(12),
        dave: id(13),
        g1: id(20),
        g2: id(21),
        app: id(30),
        role1: id(31),
        mi: id(32),
        legacy: id(33),
        directory_role: Uuid::from_u128(0x62e90394_69f5_4237_9190_012177145e10),
        sub: id(40),
        custom: id(41),
        foreign: id(42),
    }
}

fn user(id: Uuid, name: &str, user_type: UserType, now: OffsetDateTime) -> User {
    User {
        id,
        user_principal_name: format!("{}@contoso.com", name.to_lowercase()),
        mail: None,
        display_name: name.into(),
        given_name: None,
        surname: None,
        account_enabled: true,
        user_type,
        employee_id: None,
        created: now,
        manager: None,
        on_premises_sync_enabled: false,
        mailbox: Mailbox::None,
        last_sign_in: None,
        deleted: None,
    }
}

fn group(
    id: Uuid,
    name: &str,
    on_premises: bool,
    members: Vec<Uuid>,
    owners: Vec<Uuid>,
    now: OffsetDateTime,
) -> Group {
    Group {
        id,
        display_name: name.into(),
        description: None,
        mail_enabled: false,
        security_enabled: true,
        group_types: Vec::new(),
        on_premises_sync_enabled: on_premises,
        created: now,
        members,
        owners,
        deleted: None,
    }
}

fn sp(id: Uuid, name: &str, kind: ServicePrincipalType, now: OffsetDateTime) -> ServicePrincipal {
    ServicePrincipal {
        id,
        app_id: Uuid::from_u128(id.as_u128() ^ 0xff),
        display_name: name.into(),
        service_principal_type: kind,
        app_roles: Vec::new(),
        account_enabled: true,
        app_owner_organization_id: None,
        tags: Vec::new(),
        homepage: None,
        owners: Vec::new(),
        created: now,
        app_role_assigned_to: Vec::new(),
    }
}

fn assignment(
    name: u128,
    scope: &str,
    role: Uuid,
    principal: Uuid,
    principal_type: ArmPrincipalType,
    now: OffsetDateTime,
) -> (Uuid, RoleAssignment) {
    let name = id(1000 + name);
    (
        name,
        RoleAssignment {
            name,
            scope: scope.into(),
            role_definition: role,
            principal_id: principal,
            principal_type,
            created: now,
            created_by: Uuid::nil(),
        },
    )
}

/// The tenant described at the top of each assertion block.
fn tenant() -> Tenant {
    let i = ids();
    let now = OffsetDateTime::now_utc();
    let organization = Organization {
        tenant_id: i.tenant,
        display_name: "Contoso".into(),
        verified_domains: vec!["contoso.onmicrosoft.com".into(), "contoso.com".into()],
        has_p2_license: true,
        created: now,
    };
    let mut t = Tenant::new(organization, id(2), "secret".into());
    t.users
        .insert(i.alice, user(i.alice, "Alice", UserType::Member, now));
    t.users
        .insert(i.bob, user(i.bob, "Bob", UserType::Member, now));
    let mut carol = user(i.carol, "Carol", UserType::Member, now);
    carol.deleted = Some(now);
    t.users.insert(i.carol, carol);
    t.users
        .insert(i.dave, user(i.dave, "Dave", UserType::Guest, now));

    t.groups.insert(
        i.g1,
        group(
            i.g1,
            "Cloud Team",
            false,
            vec![i.alice, i.carol, i.g2, i.app, i.mi, i.legacy],
            vec![i.bob, i.app],
            now,
        ),
    );
    t.groups
        .insert(i.g2, group(i.g2, "AD Team", true, vec![i.bob], vec![], now));

    let mut app = sp(i.app, "Payroll", ServicePrincipalType::Application, now);
    app.app_roles.push(AppRole {
        id: i.role1,
        display_name: "Reader".into(),
        description: "reads".into(),
        value: Some("Payroll.Read".into()),
        allowed_member_types: vec!["User".into()],
        is_enabled: true,
    });
    app.owners.push(i.alice);
    for (principal, kind, role) in [
        (i.alice, PrincipalKind::User, i.role1),
        (i.g2, PrincipalKind::Group, DEFAULT_APP_ROLE_ID),
        (i.mi, PrincipalKind::ServicePrincipal, i.role1),
        (i.legacy, PrincipalKind::ServicePrincipal, i.role1),
    ] {
        app.app_role_assigned_to.push(AppRoleAssignment {
            id: app_role_assignment_id(principal, i.app, role),
            principal_id: principal,
            principal_type: kind,
            principal_display_name: String::new(),
            resource_id: i.app,
            resource_display_name: "Payroll".into(),
            app_role_id: role,
            created: now,
        });
    }
    t.service_principals.insert(i.app, app);
    t.service_principals.insert(
        i.mi,
        sp(i.mi, "mi-batch", ServicePrincipalType::ManagedIdentity, now),
    );
    t.service_principals.insert(
        i.legacy,
        sp(i.legacy, "legacy", ServicePrincipalType::Legacy, now),
    );

    t.directory_role_definitions.insert(
        i.directory_role,
        DirectoryRoleDefinition {
            id: i.directory_role,
            display_name: "Global Administrator".into(),
            description: String::new(),
            is_built_in: true,
            template_id: i.directory_role,
        },
    );
    for (principal, scope) in [
        (i.alice, "/"),
        (
            i.g1,
            "/administrativeUnits/5e1f2f6a-0000-4000-8000-000000000001",
        ),
    ] {
        let aid = directory_role_assignment_id(i.directory_role, principal, scope);
        t.directory_role_assignments.insert(
            aid.clone(),
            DirectoryRoleAssignment {
                id: aid,
                role_definition_id: i.directory_role,
                principal_id: principal,
                directory_scope_id: scope.into(),
                created: now,
            },
        );
    }
    t.directory_role_eligibilities.insert(
        id(50),
        DirectoryRoleEligibility {
            id: id(50),
            instance_id: id(51),
            role_definition_id: i.directory_role,
            principal_id: i.bob,
            directory_scope_id: "/".into(),
            member_type: "Direct".into(),
            status: "Provisioned".into(),
            schedule: ScheduleInfo {
                start: now,
                end: None,
            },
            created: now,
        },
    );
    t.group_eligibilities.insert(
        id(52),
        GroupEligibility {
            id: id(52),
            instance_id: id(53),
            group_id: i.g1,
            principal_id: i.bob,
            access: GroupAccess::Member,
            member_type: "Direct".into(),
            status: "Provisioned".into(),
            schedule: ScheduleInfo {
                start: now,
                end: None,
            },
            created: now,
        },
    );

    let root = i.tenant.to_string();
    t.management_groups.insert(
        root.clone(),
        ManagementGroup {
            name: root.clone(),
            display_name: "Tenant Root Group".into(),
            parent: None,
        },
    );
    t.management_groups.insert(
        "mg-a".into(),
        ManagementGroup {
            name: "mg-a".into(),
            display_name: "A".into(),
            parent: Some(root),
        },
    );
    t.subscriptions.insert(
        i.sub,
        Subscription {
            id: i.sub,
            display_name: "sub-prod".into(),
            state: "Enabled".into(),
            management_group: "mg-a".into(),
        },
    );
    t.resource_groups.insert(
        (i.sub, "rg-app".into()),
        ResourceGroup {
            subscription: i.sub,
            name: "rg-App".into(),
            location: "westeurope".into(),
        },
    );
    t.storage_accounts.insert(
        (i.sub, "rg-app".into(), "sa1".into()),
        StorageAccount {
            subscription: i.sub,
            resource_group: "rg-App".into(),
            name: "sa1".into(),
            location: "westeurope".into(),
            kind: "StorageV2".into(),
            sku: "Standard_LRS".into(),
            containers: vec!["c1".into()],
        },
    );
    for vault in ["kv1", "kv2"] {
        let resource = ArmResource {
            subscription: i.sub,
            resource_group: "rg-App".into(),
            provider_tail: format!("Microsoft.KeyVault/vaults/{vault}"),
            location: "westeurope".into(),
        };
        t.arm_resources
            .insert(resource.arm_id().to_ascii_lowercase(), resource);
    }
    for (role, name, scopes, kind) in [
        (READER, "Reader", vec!["/".to_string()], RoleType::BuiltIn),
        (
            UAA,
            "User Access Administrator",
            vec!["/".to_string()],
            RoleType::BuiltIn,
        ),
        (
            i.custom,
            "Contoso Operator",
            vec![format!("/subscriptions/{}", i.sub)],
            RoleType::Custom,
        ),
    ] {
        t.role_definitions.insert(
            role,
            RoleDefinition {
                id: role,
                role_name: name.into(),
                description: String::new(),
                role_type: kind,
                actions: vec![],
                data_actions: vec![],
                assignable_scopes: scopes,
            },
        );
    }
    let rg = format!("/subscriptions/{}/resourceGroups/rg-App", i.sub);
    let sa = format!("{rg}/providers/Microsoft.Storage/storageAccounts/sa1");
    for (name, scope, role, principal, kind) in [
        (1, "/".to_string(), UAA, i.alice, ArmPrincipalType::User),
        (
            2,
            "/providers/Microsoft.Management/managementGroups/mg-a".to_string(),
            READER,
            i.g1,
            ArmPrincipalType::Group,
        ),
        (
            3,
            format!("/subscriptions/{}", i.sub),
            READER,
            i.mi,
            ArmPrincipalType::ServicePrincipal,
        ),
        (
            4,
            rg.clone(),
            READER,
            i.foreign,
            ArmPrincipalType::ForeignGroup,
        ),
        (5, sa.clone(), READER, i.carol, ArmPrincipalType::User),
        (
            6,
            format!("{sa}/blobServices/default/containers/c1"),
            READER,
            i.bob,
            ArmPrincipalType::User,
        ),
        (
            7,
            format!("{rg}/providers/Microsoft.KeyVault/vaults/kv1"),
            READER,
            i.app,
            ArmPrincipalType::ServicePrincipal,
        ),
    ] {
        let (key, value) = assignment(name, &scope, role, principal, kind, now);
        t.role_assignments.insert(key, value);
    }
    t.role_eligibilities.insert(
        id(60),
        RoleEligibility {
            name: id(60),
            instance_name: id(61),
            scope: format!("/subscriptions/{}", i.sub),
            role_definition: READER,
            principal_id: i.bob,
            principal_type: ArmPrincipalType::User,
            member_type: "Direct".into(),
            status: "Provisioned".into(),
            schedule: ScheduleInfo {
                start: now,
                end: None,
            },
            created: now,
        },
    );
    t
}

fn grant_exists(graph: &ExpectedGraph, id: &str) -> bool {
    graph.grants.contains_key(id)
}

#[test]
fn directory_resources_and_grants_follow_the_data_model() {
    let i = ids();
    let g = ExpectedGraph::compute(&tenant(), &ExpectedOptions::default());

    // Soft-deleted users are not resources; guests are.
    assert!(g.resources.contains_key(&format!("user:{}", i.alice)));
    assert!(g.resources.contains_key(&format!("user:{}", i.dave)));
    assert!(!g.resources.contains_key(&format!("user:{}", i.carol)));
    // Service principals by type; the legacy one is not emitted.
    assert!(
        g.resources
            .contains_key(&format!("enterprise_application:{}", i.app))
    );
    assert!(
        g.resources
            .contains_key(&format!("managed_identity:{}", i.mi))
    );
    assert!(
        !g.resources
            .keys()
            .any(|k| k.ends_with(&i.legacy.to_string()))
    );

    let members = format!("group:{}:members", i.g1);
    assert_eq!(g.entitlements[&members].slug, "members");
    assert_eq!(g.entitlements[&members].resource, format!("group:{}", i.g1));
    let member_grants: Vec<&String> = g
        .grants
        .keys()
        .filter(|k| k.starts_with(&format!("{members}:")))
        .collect();
    assert_eq!(
        member_grants.len(),
        4,
        "alice, the nested group, the app and the managed identity: {member_grants:?}"
    );
    let nested = &g.grants[&format!("{members}:group:{}", i.g2)];
    assert_eq!(nested.principal, format!("group:{}", i.g2));
    assert_eq!(nested.expandable, vec![format!("group:{}:members", i.g2)]);
    assert!(grant_exists(&g, &format!("{members}:user:{}", i.alice)));
    assert!(grant_exists(
        &g,
        &format!("{members}:enterprise_application:{}", i.app)
    ));
    assert!(grant_exists(
        &g,
        &format!("{members}:managed_identity:{}", i.mi)
    ));
    assert!(
        g.grants[&format!("{members}:user:{}", i.alice)]
            .expandable
            .is_empty()
    );

    let owners = format!("group:{}:owners", i.g1);
    assert!(grant_exists(&g, &format!("{owners}:user:{}", i.bob)));
    assert!(grant_exists(
        &g,
        &format!("{owners}:enterprise_application:{}", i.app)
    ));

    // App: owners, one entitlement per app role plus the default role.
    let app = format!("enterprise_application:{}", i.app);
    for slug in [
        "owners".to_string(),
        format!("assignment:{}", i.role1),
        format!("assignment:{DEFAULT_APP_ROLE_ID}"),
    ] {
        assert!(
            g.entitlements.contains_key(&format!("{app}:{slug}")),
            "{slug}"
        );
    }
    assert!(grant_exists(&g, &format!("{app}:owners:user:{}", i.alice)));
    assert!(grant_exists(
        &g,
        &format!("{app}:assignment:{}:user:{}", i.role1, i.alice)
    ));
    assert!(grant_exists(
        &g,
        &format!("{app}:assignment:{}:managed_identity:{}", i.role1, i.mi)
    ));
    let to_group = &g.grants[&format!("{app}:assignment:{DEFAULT_APP_ROLE_ID}:group:{}", i.g2)];
    assert_eq!(to_group.expandable, vec![format!("group:{}:members", i.g2)]);
    assert!(!g.grants.keys().any(|k| k.contains(&i.legacy.to_string())));

    // Directory role: parent tenant, active grants at any directory scope, eligibility with P2.
    let role = format!("directory_role:{}", i.directory_role);
    assert_eq!(
        g.resources[&role].parent,
        Some(format!("tenant:{}", i.tenant))
    );
    assert!(grant_exists(
        &g,
        &format!("{role}:assigned:user:{}", i.alice)
    ));
    assert_eq!(
        g.grants[&format!("{role}:assigned:group:{}", i.g1)].expandable,
        vec![format!("group:{}:members", i.g1)]
    );
    assert!(grant_exists(&g, &format!("{role}:eligible:user:{}", i.bob)));
    assert!(grant_exists(
        &g,
        &format!("group:{}:eligible_members:user:{}", i.g1, i.bob)
    ));
}

#[test]
fn azure_scopes_attribute_each_assignment_to_its_own_scope() {
    let i = ids();
    let g = ExpectedGraph::compute(&tenant(), &ExpectedOptions::default());
    let tenant_key = format!("tenant:{}", i.tenant);
    let root_mg = format!("management_group:{}", i.tenant);
    let sub = format!("subscription:{}", i.sub);
    let rg = format!("resource_group:{}:rg-App", i.sub);
    let sa = format!("storage_account:{}:rg-App:sa1", i.sub);
    let container = format!(
        "container:{sa_id}:c1",
        sa_id = sa.trim_start_matches("storage_account:")
    );
    let kv1 = format!(
        "azure_resource:{}:rg-App:Microsoft.KeyVault/vaults/kv1",
        i.sub
    );
    let kv2 = format!(
        "azure_resource:{}:rg-App:Microsoft.KeyVault/vaults/kv2",
        i.sub
    );

    assert_eq!(g.resources[&root_mg].parent, Some(tenant_key.clone()));
    assert_eq!(
        g.resources["management_group:mg-a"].parent,
        Some(root_mg.clone())
    );
    assert_eq!(
        g.resources[&sub].parent,
        Some("management_group:mg-a".into())
    );
    assert_eq!(g.resources[&rg].parent, Some(sub.clone()));
    assert_eq!(g.resources[&sa].parent, Some(rg.clone()));
    assert_eq!(g.resources[&container].parent, Some(sa.clone()));
    assert_eq!(g.resources[&kv1].parent, Some(rg.clone()));
    assert!(
        !g.resources.contains_key(&kv2),
        "a resource with nothing assigned at it is not emitted"
    );

    assert!(grant_exists(
        &g,
        &format!("{tenant_key}:role:{UAA}:user:{}", i.alice)
    ));
    let mg_grant = &g.grants[&format!("management_group:mg-a:role:{READER}:group:{}", i.g1)];
    assert_eq!(mg_grant.expandable, vec![format!("group:{}:members", i.g1)]);
    assert!(grant_exists(
        &g,
        &format!("{sub}:role:{READER}:managed_identity:{}", i.mi)
    ));
    assert!(grant_exists(
        &g,
        &format!("{container}:role:{READER}:user:{}", i.bob)
    ));
    assert!(grant_exists(
        &g,
        &format!("{kv1}:role:{READER}:enterprise_application:{}", i.app)
    ));
    // The entitlement exists where the assignment is, even when its principal is not emitted.
    assert!(g.entitlements.contains_key(&format!("{rg}:role:{READER}")));
    assert!(
        !g.grants
            .keys()
            .any(|k| k.starts_with(&format!("{rg}:role:"))),
        "a foreign group is not a principal"
    );
    assert!(g.entitlements.contains_key(&format!("{sa}:role:{READER}")));
    assert!(
        !g.grants
            .keys()
            .any(|k| k.starts_with(&format!("{sa}:role:"))),
        "soft-deleted user"
    );
    // Inherited assignments are not repeated below: only the RG's own scope.
    assert!(
        !g.grants
            .contains_key(&format!("{rg}:role:{READER}:group:{}", i.g1))
    );
    // Every role assignable in the subscription, including the custom one.
    for role in [READER, UAA, i.custom] {
        assert!(
            g.entitlements.contains_key(&format!("{sub}:role:{role}")),
            "{role}"
        );
    }
    assert_eq!(
        g.entitlements[&format!("{sub}:role:{}", i.custom)].slug,
        format!("role:{}", i.custom)
    );
    // PIM eligibility at the subscription.
    assert!(grant_exists(
        &g,
        &format!("{sub}:eligible:{READER}:user:{}", i.bob)
    ));
    assert_eq!(
        g.resources[&format!("role:{}", i.custom)].parent,
        Some(tenant_key)
    );
}

#[test]
fn options_change_exactly_what_the_data_model_says() {
    let i = ids();
    let t = tenant();
    let full = ExpectedGraph::compute(&t, &ExpectedOptions::default());

    let no_ad = ExpectedGraph::compute(
        &t,
        &ExpectedOptions {
            skip_ad_groups: true,
            ..Default::default()
        },
    );
    assert!(!no_ad.resources.contains_key(&format!("group:{}", i.g2)));
    assert!(
        !no_ad
            .entitlements
            .contains_key(&format!("group:{}:members", i.g2))
    );
    assert!(
        !no_ad
            .grants
            .contains_key(&format!("group:{}:members:group:{}", i.g1, i.g2))
    );
    assert!(
        !no_ad
            .grants
            .keys()
            .any(|k| k.ends_with(&format!("group:{}", i.g2)))
    );
    // bob, a member of the skipped group, keeps his other grants.
    assert!(
        no_ad
            .grants
            .contains_key(&format!("group:{}:owners:user:{}", i.g1, i.bob))
    );
    assert_eq!(
        no_ad.grants.len(),
        full.grants.len() - 3,
        "the G2 member grant, G1's grant to G2, the app grant to G2"
    );

    let unused = ExpectedGraph::compute(
        &t,
        &ExpectedOptions {
            skip_unused_roles: true,
            ..Default::default()
        },
    );
    let sub = format!("subscription:{}", i.sub);
    assert!(
        !unused
            .entitlements
            .contains_key(&format!("{sub}:role:{}", i.custom))
    );
    assert!(
        !unused
            .entitlements
            .contains_key(&format!("{sub}:role:{UAA}"))
    );
    assert!(
        unused
            .entitlements
            .contains_key(&format!("{sub}:role:{READER}")),
        "held there"
    );
    assert!(!unused.resources.contains_key(&format!("role:{}", i.custom)));
    assert!(
        unused.resources.contains_key(&format!("role:{UAA}")),
        "held at /"
    );

    let no_containers = ExpectedGraph::compute(
        &t,
        &ExpectedOptions {
            skip_storage_containers: true,
            ..Default::default()
        },
    );
    assert!(!no_containers.resource_types.contains("container"));
    assert!(
        !no_containers
            .resources
            .keys()
            .any(|k| k.starts_with("container:"))
    );
    assert!(
        !no_containers
            .grants
            .keys()
            .any(|k| k.starts_with("container:"))
    );
    assert_eq!(
        full.resource_types.len(),
        no_containers.resource_types.len() + 1
    );

    for options in [
        ExpectedOptions {
            skip_p2: true,
            ..Default::default()
        },
        ExpectedOptions::default(),
    ] {
        let mut unlicensed = tenant();
        unlicensed.organization.has_p2_license = options.skip_p2;
        let g = ExpectedGraph::compute(&unlicensed, &options);
        assert!(
            !g.entitlements.keys().any(|k| k.contains(":eligible")),
            "no eligibility without P2: {options:?}"
        );
        assert!(
            !g.grants
                .contains_key(&format!("{sub}:eligible:{READER}:user:{}", i.bob))
        );
    }

    // The mailbox option changes account types, not ids.
    let mailbox = ExpectedGraph::compute(
        &t,
        &ExpectedOptions {
            mailbox_settings: true,
            ..Default::default()
        },
    );
    assert_eq!(mailbox, full);
}

#[test]
fn restoring_a_user_brings_back_the_memberships_it_kept() {
    let i = ids();
    let config = EmulatorConfig::new(TenantSpec::small(), std::env::temp_dir());
    let control = Control::new(Arc::new(EmulatorState::new(tenant(), &config)));
    let carol_member = format!("group:{}:members:user:{}", i.g1, i.carol);
    assert!(
        !control
            .expected_graph(&ExpectedOptions::default())
            .grants
            .contains_key(&carol_member)
    );

    control
        .apply(TenantChange::RestoreUser(i.carol))
        .expect("carol is in deleted items");
    let restored = control.expected_graph(&ExpectedOptions::default());
    assert!(restored.grants.contains_key(&carol_member));
    assert!(restored.grants.contains_key(&format!(
        "storage_account:{}:rg-App:sa1:role:{READER}:user:{}",
        i.sub, i.carol
    )));

    control
        .apply(TenantChange::HardDeleteUser(i.alice))
        .expect("alice exists");
    let after = control.expected_graph(&ExpectedOptions::default());
    assert!(!after.resources.contains_key(&format!("user:{}", i.alice)));
    assert!(
        !after
            .grants
            .keys()
            .any(|k| k.ends_with(&format!("user:{}", i.alice)))
    );
}
