//! The tenant side of the emulator: seeded generation, the change journal delta is answered
//! from, control changes with their Activity Log entries, and churn.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use emulator::changes::{TenantChange, UserPatch};
use emulator::tenant::*;
use emulator::{Control, EmulatorConfig, EmulatorState, ExpectedOptions, TenantSpec};
use uuid::Uuid;

const READER: Uuid = Uuid::from_u128(0xacdd72a7_3385_48ef_bd42_f606fba81ae7);

fn control_for(spec: TenantSpec) -> Control {
    let tenant = spec.generate().expect("valid spec");
    let config = EmulatorConfig::new(spec, std::env::temp_dir());
    Control::new(Arc::new(EmulatorState::new(tenant, &config)))
}

#[test]
fn same_seed_same_tenant_other_seed_other_ids() {
    let spec = TenantSpec::small();
    let a = spec.generate().expect("valid");
    let b = spec.generate().expect("valid");
    assert_eq!(a.tenant_id(), b.tenant_id());
    assert_eq!(
        a.users.keys().collect::<Vec<_>>(),
        b.users.keys().collect::<Vec<_>>()
    );
    let members = |t: &Tenant| {
        t.groups
            .values()
            .map(|g| (g.id, g.members.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(members(&a), members(&b));
    assert_eq!(
        a.role_assignments.keys().collect::<Vec<_>>(),
        b.role_assignments.keys().collect::<Vec<_>>()
    );
    assert_eq!(a.client_secret, b.client_secret);

    let other = TenantSpec {
        seed: 2,
        ..TenantSpec::small()
    }
    .generate()
    .expect("valid");
    assert_ne!(other.tenant_id(), a.tenant_id());
    assert!(other.users.keys().all(|id| !a.users.contains_key(id)));
    for id in a.users.keys().take(20) {
        assert_eq!(id.get_version_num(), 4, "ids look like Entra's (v4 GUIDs)");
        assert_eq!(id.to_string(), id.to_string().to_lowercase());
    }
}

#[test]
fn bad_specs_are_refused_with_the_field_named() {
    let error = TenantSpec {
        guest_share: 1.5,
        ..TenantSpec::small()
    }
    .generate()
    .expect_err("share > 1");
    assert!(error.to_string().contains("guest_share"), "{error}");
    let error = TenantSpec::with_users(3)
        .generate()
        .expect_err("too few users");
    assert!(error.to_string().contains("users"), "{error}");
}

#[test]
fn generated_tenant_has_the_variety_the_issue_asks_for() {
    let t = TenantSpec::with_users(3000).generate().expect("valid");
    assert_eq!(t.users.len(), 3000);
    let users: Vec<&User> = t.users.values().collect();
    assert!(
        users
            .iter()
            .any(|u| u.user_type == UserType::Guest && u.user_principal_name.contains("#EXT#"))
    );
    assert!(users.iter().any(|u| !u.account_enabled));
    for kind in [Mailbox::Room, Mailbox::Shared, Mailbox::None, Mailbox::User] {
        assert!(users.iter().any(|u| u.mailbox == kind), "{kind:?}");
    }
    assert!(users.iter().any(|u| u.manager.is_some()));

    let sizes: Vec<usize> = t.groups.values().map(|g| g.members.len()).collect();
    let largest = sizes.iter().copied().max().unwrap_or_default();
    let median = {
        let mut s = sizes.clone();
        s.sort_unstable();
        s[s.len() / 2]
    };
    assert!(
        largest >= 900 && median * 20 < largest,
        "long tail: largest {largest}, median {median}"
    );
    assert!(t.groups.values().any(|g| g.on_premises_sync_enabled));
    assert!(t.groups.values().any(|g| g.is_unified()));
    assert!(
        t.groups
            .values()
            .any(|g| g.members.iter().any(|m| t.groups.contains_key(m))),
        "nested groups"
    );
    assert!(t.groups.values().any(|g| {
        g.members
            .iter()
            .any(|m| t.service_principals.contains_key(m))
    }));
    // Every member reference resolves to a directory object.
    assert!(t.groups.values().all(|g| {
        g.members
            .iter()
            .all(|m| t.directory_object_kind(*m).is_some())
    }));

    let sps: Vec<&ServicePrincipal> = t.service_principals.values().collect();
    assert!(
        sps.iter()
            .any(|s| s.service_principal_type == ServicePrincipalType::ManagedIdentity)
    );
    let assigned: HashSet<PrincipalKind> = sps
        .iter()
        .flat_map(|s| s.app_role_assigned_to.iter().map(|a| a.principal_type))
        .collect();
    assert_eq!(
        assigned.len(),
        3,
        "app roles assigned to users, groups and service principals: {assigned:?}"
    );
    assert!(sps.iter().any(|s| {
        s.app_roles
            .iter()
            .any(|r| r.allowed_member_types == ["Application"])
    }));

    assert!(
        t.directory_role_assignments
            .values()
            .any(|a| a.directory_scope_id != "/"),
        "scoped directory role"
    );
    assert!(!t.directory_roles.is_empty() && !t.directory_role_eligibilities.is_empty());
    // Activated roles hold exactly the tenant-wide holders.
    for role in t.directory_roles.values() {
        for member in &role.members {
            assert!(
                t.directory_role_assignments
                    .values()
                    .any(|a| a.principal_id == *member
                        && a.directory_scope_id == "/"
                        && a.role_definition_id == role.role_template_id)
            );
        }
    }

    let root = t.tenant_id().to_string();
    assert!(t.management_groups[&root].parent.is_none());
    assert!(
        t.management_groups
            .values()
            .filter(|g| g.parent.is_some())
            .all(|g| t.management_group_ancestors(&g.name).last() == Some(&root))
    );
    let mut rg_names: Vec<String> = t
        .resource_groups
        .values()
        .map(|rg| rg.name.clone())
        .collect();
    let total = rg_names.len();
    rg_names.sort();
    rg_names.dedup();
    assert!(
        rg_names.len() < total,
        "resource group names clash across subscriptions"
    );

    let scopes: Vec<&str> = t
        .role_assignments
        .values()
        .map(|a| a.scope.as_str())
        .collect();
    assert!(scopes.contains(&"/"));
    assert!(
        scopes
            .iter()
            .any(|s| s.starts_with("/providers/Microsoft.Management/managementGroups/"))
    );
    assert!(
        scopes
            .iter()
            .any(|s| s.starts_with("/subscriptions/") && s.matches('/').count() == 2)
    );
    assert!(
        scopes
            .iter()
            .any(|s| s.contains("/resourceGroups/") && s.matches('/').count() == 4)
    );
    assert!(scopes.iter().any(|s| s.ends_with(&format!(
        "/storageAccounts/{}",
        s.rsplit('/').next().unwrap_or_default()
    ))));
    assert!(
        scopes
            .iter()
            .any(|s| s.contains("/blobServices/default/containers/"))
    );
    assert!(
        scopes
            .iter()
            .any(|s| s.contains("/Microsoft.KeyVault/vaults/"))
    );
    assert!(
        t.role_assignments
            .values()
            .any(|a| a.principal_type == ArmPrincipalType::Group)
    );
    let custom: Vec<Uuid> = t
        .role_definitions
        .values()
        .filter(|r| r.role_type == RoleType::Custom)
        .map(|r| r.id)
        .collect();
    assert!(!custom.is_empty());
    assert!(
        t.role_assignments
            .values()
            .all(|a| t.scope_exists(&a.scope))
    );
    // Every assignment's role is assignable where it sits.
    for a in t.role_assignments.values() {
        let role = &t.role_definitions[&a.role_definition];
        assert!(
            role.assignable_scopes
                .iter()
                .any(|s| scope_is_within(&t, &a.scope, s)),
            "{} at {}",
            role.role_name,
            a.scope
        );
    }
    assert!(!t.role_eligibilities.is_empty());
    // The expected graph of a generated tenant is self-consistent: grants name entitlements and
    // resources that exist.
    let g = emulator::ExpectedGraph::compute(&t, &ExpectedOptions::default());
    for grant in g.grants.values() {
        assert!(g.entitlements.contains_key(&grant.entitlement));
        assert!(g.resources.contains_key(&grant.principal));
    }
    for e in g.entitlements.values() {
        assert!(g.resources.contains_key(&e.resource), "{}", e.resource);
    }
    for r in g.resources.values() {
        if let Some(parent) = &r.parent {
            assert!(g.resources.contains_key(parent), "{parent}");
        }
    }
}

#[test]
fn journal_records_object_and_link_changes_in_seq_order() {
    let control = control_for(TenantSpec::small());
    let (user, group, start) = control.with_tenant(|t| {
        let group = t
            .groups
            .values()
            .find(|g| !g.is_unified() && g.members.iter().any(|m| t.users.contains_key(m)))
            .map(|g| g.id)
            .expect("a security group with a user");
        let user = t.groups[&group]
            .members
            .iter()
            .copied()
            .find(|m| t.users.contains_key(m))
            .expect("user member");
        (user, group, t.journal.current_seq())
    });
    assert_eq!(start, 0, "a generated tenant starts at seq 0");

    control
        .apply(TenantChange::UpdateUser {
            id: user,
            patch: UserPatch {
                display_name: Some("New Name".into()),
                ..Default::default()
            },
        })
        .expect("live user");
    control
        .apply(TenantChange::SoftDeleteUser(user))
        .expect("live user");
    control.with_tenant(|t| {
        assert!(
            t.groups[&group].members.contains(&user),
            "soft delete keeps memberships"
        );
        assert_eq!(t.journal.link_changes_of(group, 0).count(), 0);
        assert!(
            t.directory_object_kind(user).is_none(),
            "soft-deleted users are not listed"
        );
    });
    let error = control
        .apply(TenantChange::SoftDeleteUser(user))
        .expect_err("already deleted");
    assert!(error.to_string().contains(&user.to_string()), "{error}");
    control
        .apply(TenantChange::RestoreUser(user))
        .expect("in deleted items");
    control
        .apply(TenantChange::HardDeleteUser(user))
        .expect("exists");

    control.with_tenant(|t| {
        let changes: Vec<(u64, ObjectChange)> = t
            .journal
            .objects_changed_after(DeltaKind::User, 0)
            .iter()
            .map(|e| (e.seq, e.change.clone()))
            .collect();
        assert_eq!(
            changes.iter().map(|c| c.1.clone()).collect::<Vec<_>>(),
            vec![
                ObjectChange::Updated(vec!["displayName"]),
                ObjectChange::SoftDeleted,
                ObjectChange::Restored,
                ObjectChange::HardDeleted
            ]
        );
        assert!(changes.windows(2).all(|w| w[0].0 < w[1].0));
        // Only the permanent delete takes the user out of its groups, journaled as a link removal.
        assert!(!t.groups[&group].members.contains(&user));
        let removal: Vec<&LinkChangeEntry> = t.journal.link_changes_of(group, 0).collect();
        assert_eq!(removal.len(), 1);
        assert!(
            !removal[0].added
                && removal[0].target == user
                && removal[0].relation == LinkRelation::Member
        );
        assert!(removal[0].seq > changes[3].0);
        // "After S" is strict and picks up where a token left off.
        let after_restore = changes[2].0;
        assert_eq!(
            t.journal
                .objects_changed_after(DeltaKind::User, after_restore)
                .len(),
            1
        );
        assert_eq!(
            t.journal
                .containers_changed_after(DeltaKind::Group, after_restore),
            {
                let mut touched: Vec<Uuid> = t
                    .journal
                    .link_changes_after(after_restore)
                    .iter()
                    .map(|l| l.container)
                    .collect();
                touched.dedup();
                touched
            }
        );
        assert!(
            t.journal
                .objects_changed_after(DeltaKind::ServicePrincipal, 0)
                .is_empty()
        );
    });
}

#[test]
fn group_links_and_deletes_behave_like_entra() {
    let control = control_for(TenantSpec::small());
    let (security, unified, user, mi) = control.with_tenant(|t| {
        let security = t
            .groups
            .values()
            .find(|g| !g.is_unified())
            .map(|g| g.id)
            .expect("security group");
        let unified = t
            .groups
            .values()
            .find(|g| g.is_unified())
            .map(|g| g.id)
            .expect("M365 group");
        let user = t
            .users
            .values()
            .find(|u| !t.groups[&security].members.contains(&u.id))
            .map(|u| u.id)
            .expect("non-member");
        let mi = t
            .service_principals
            .values()
            .find(|s| {
                s.service_principal_type == ServicePrincipalType::ManagedIdentity
                    && !t.groups[&security].members.contains(&s.id)
            })
            .map(|s| s.id)
            .expect("a managed identity outside the group");
        (security, unified, user, mi)
    });
    let seq = control.with_tenant(|t| t.journal.current_seq());
    control
        .apply(TenantChange::AddMember {
            group: security,
            member: user,
        })
        .expect("new member");
    let error = control
        .apply(TenantChange::AddMember {
            group: security,
            member: user,
        })
        .expect_err("already a member");
    assert!(error.to_string().contains("already"), "{error}");
    control
        .apply(TenantChange::AddMember {
            group: security,
            member: mi,
        })
        .expect("service principals can be members");
    control
        .apply(TenantChange::AddOwner {
            group: security,
            owner: user,
        })
        .expect("new owner");
    control
        .apply(TenantChange::RemoveMember {
            group: security,
            member: user,
        })
        .expect("member");
    let error = control
        .apply(TenantChange::AddOwner {
            group: security,
            owner: unified,
        })
        .expect_err("groups cannot own groups");
    assert!(error.to_string().contains("cannot own"), "{error}");

    control.with_tenant(|t| {
        let links: Vec<(Uuid, LinkRelation, bool)> = t
            .journal
            .link_changes_of(security, seq)
            .map(|l| (l.target, l.relation, l.added))
            .collect();
        assert_eq!(
            links,
            vec![
                (user, LinkRelation::Member, true),
                (mi, LinkRelation::Member, true),
                (user, LinkRelation::Owner, true),
                (user, LinkRelation::Member, false)
            ]
        );
    });

    // Security groups are deleted for good, Microsoft 365 groups go to deleted items.
    control
        .apply(TenantChange::DeleteGroup(security))
        .expect("exists");
    control
        .apply(TenantChange::DeleteGroup(unified))
        .expect("exists");
    control.with_tenant(|t| {
        assert!(!t.groups.contains_key(&security));
        assert!(t.groups[&unified].deleted.is_some());
        let kinds: Vec<ObjectChange> = t
            .journal
            .objects_changed_after(DeltaKind::Group, seq)
            .iter()
            .map(|e| e.change.clone())
            .collect();
        assert_eq!(
            kinds,
            vec![ObjectChange::HardDeleted, ObjectChange::SoftDeleted]
        );
    });
    control
        .apply(TenantChange::RestoreGroup(unified))
        .expect("in deleted items");
    assert!(control.apply(TenantChange::RestoreGroup(security)).is_err());
}

#[test]
fn directory_role_assignment_activates_the_role_and_is_delta_tracked() {
    let control = control_for(TenantSpec::small());
    let reports_reader = Uuid::from_u128(0x4a5d8f65_41da_4de4_8968_e035b65339cf);
    let (user, seq) = control.with_tenant(|t| {
        let user = t
            .users
            .values()
            .find(|u| {
                !t.directory_role_assignments
                    .values()
                    .any(|a| a.principal_id == u.id)
            })
            .map(|u| u.id)
            .expect("user");
        (user, t.journal.current_seq())
    });
    control
        .apply(TenantChange::AssignDirectoryRole {
            role_definition: reports_reader,
            principal: user,
            directory_scope_id: "/".into(),
        })
        .expect("valid assignment");
    control.with_tenant(|t| {
        let role = t
            .directory_role_by_template(reports_reader)
            .expect("activated");
        assert!(role.members.contains(&user));
        assert!(
            t.journal
                .link_changes_of(role.id, seq)
                .any(|l| l.target == user && l.added)
        );
        assert!(
            t.directory_role_assignments
                .contains_key(&directory_role_assignment_id(reports_reader, user, "/"))
        );
    });
    control
        .apply(TenantChange::UnassignDirectoryRole {
            role_definition: reports_reader,
            principal: user,
            directory_scope_id: "/".into(),
        })
        .expect("assigned");
    control.with_tenant(|t| {
        assert!(
            !t.directory_role_by_template(reports_reader)
                .is_some_and(|r| r.members.contains(&user))
        )
    });
}

#[test]
fn rbac_writes_reach_the_activity_log_later_and_scopes_cascade() {
    let control = control_for(TenantSpec::small());
    let (sub, mg, user) = control.with_tenant(|t| {
        let sub = *t.subscriptions.keys().next().expect("subscription");
        let mg = t
            .management_groups
            .values()
            .find(|g| g.parent.is_some())
            .map(|g| g.name.clone())
            .expect("child mg");
        (sub, mg, *t.users.keys().next().expect("user"))
    });
    let before = control.with_tenant(|t| t.activity_log.len());
    let name = Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000001);
    control
        .apply(TenantChange::CreateResourceGroup {
            subscription: sub,
            name: "rg-Temp".into(),
            location: "westeurope".into(),
        })
        .expect("new rg");
    control
        .apply(TenantChange::CreateRoleAssignment {
            name,
            scope: format!("/subscriptions/{sub}/resourceGroups/rg-temp"),
            role_definition: READER,
            principal: user,
            principal_type: ArmPrincipalType::User,
        })
        .expect("valid assignment");
    let duplicate = control.apply(TenantChange::CreateRoleAssignment {
        name: Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000002),
        scope: format!("/subscriptions/{sub}/resourceGroups/rg-Temp"),
        role_definition: READER,
        principal: user,
        principal_type: ArmPrincipalType::User,
    });
    assert!(duplicate.is_err(), "same scope, role and principal twice");
    let missing = control.apply(TenantChange::CreateRoleAssignment {
        name: Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000003),
        scope: format!("/subscriptions/{sub}/resourceGroups/rg-nope"),
        role_definition: READER,
        principal: user,
        principal_type: ArmPrincipalType::User,
    });
    assert!(
        missing
            .expect_err("no such scope")
            .to_string()
            .contains("rg-nope")
    );

    control.with_tenant(|t| {
        let events = &t.activity_log[before..];
        assert_eq!(events.len(), 2);
        assert_eq!(
            events.iter().map(|e| e.status.as_str()).collect::<Vec<_>>(),
            ["Started", "Succeeded"]
        );
        for e in events {
            assert_eq!(
                e.operation_name,
                "Microsoft.Authorization/roleAssignments/write"
            );
            assert_eq!(e.subscription, sub);
            assert!(e.resource_id.ends_with(&format!(
                "/providers/Microsoft.Authorization/roleAssignments/{name}"
            )));
            let delay = e.submission_timestamp - e.event_timestamp;
            assert!(
                delay >= time::Duration::minutes(1) && delay <= time::Duration::minutes(5),
                "{delay}"
            );
        }
        assert_ne!(events[0].event_data_id, events[1].event_data_id);
        assert_eq!(events[0].correlation_id, events[1].correlation_id);
    });

    // Management-group writes go to the tenant's log, not a subscription's.
    control
        .apply(TenantChange::CreateRoleAssignment {
            name: Uuid::from_u128(0x5eed0000_0000_4000_8000_000000000004),
            scope: format!("/providers/Microsoft.Management/managementGroups/{mg}"),
            role_definition: READER,
            principal: user,
            principal_type: ArmPrincipalType::User,
        })
        .expect("valid");
    assert_eq!(control.with_tenant(|t| t.activity_log.len()), before + 2);

    control
        .apply(TenantChange::DeleteRoleAssignment { name })
        .expect("exists");
    control.with_tenant(|t| {
        assert_eq!(
            t.activity_log.last().map(|e| e.operation_name.as_str()),
            Some("Microsoft.Authorization/roleAssignments/delete")
        )
    });

    // Deleting a subscription takes its resource groups and the access granted in it along.
    control
        .apply(TenantChange::DeleteSubscription(sub))
        .expect("exists");
    control.with_tenant(|t| {
        assert!(t.resource_groups.keys().all(|(s, _)| *s != sub));
        assert!(t.role_assignments.values().all(|a| {
            !a.scope
                .to_lowercase()
                .starts_with(&format!("/subscriptions/{sub}"))
        }));
    });
    let graph = control.expected_graph(&ExpectedOptions::default());
    assert!(!graph.resources.keys().any(|k| k.contains(&sub.to_string())));
}

#[test]
fn churn_is_seeded_and_mixes_kinds_of_change() {
    let a = control_for(TenantSpec::with_users(500));
    let b = control_for(TenantSpec::with_users(500));
    let summary = a.random_churn(7, 0.2);
    assert_eq!(summary, b.random_churn(7, 0.2));
    assert_eq!(
        a.with_tenant(|t| t.journal.current_seq()),
        b.with_tenant(|t| t.journal.current_seq())
    );
    assert!(
        summary.users_updated > 0 && summary.members_added > 0 && summary.members_removed > 0,
        "{summary:?}"
    );
    assert!(
        summary.users_created + summary.users_soft_deleted + summary.users_hard_deleted > 0,
        "{summary:?}"
    );
    let made = summary.users_created
        + summary.users_updated
        + summary.users_soft_deleted
        + summary.users_restored
        + summary.users_hard_deleted
        + summary.members_added
        + summary.members_removed
        + summary.owners_changed
        + summary.app_role_assignments_changed
        + summary.directory_role_assignments_changed
        + summary.role_assignments_changed;
    assert!(
        made + summary.refused >= 100,
        "about 20% of 500 users: {summary:?}"
    );
    assert_ne!(
        a.expected_graph(&ExpectedOptions::default()),
        control_for(TenantSpec::with_users(500)).expected_graph(&ExpectedOptions::default()),
        "churn changes the access graph"
    );
}

#[test]
fn control_clock_and_switches() {
    let control = control_for(TenantSpec::small());
    control.advance_clock(Duration::from_secs(8 * 24 * 3600));
    control.set_p2_license(false);
    assert!(!control.with_tenant(|t| t.organization.has_p2_license));
    let graph = control.expected_graph(&ExpectedOptions::default());
    assert!(!graph.entitlements.keys().any(|k| k.contains(":eligible")));
}

/// Generation speed and memory for a million users; prints numbers, asserts none.
/// `cargo test --release --test emulator_core_model -- --ignored --nocapture million`
#[test]
#[ignore]
fn million_user_tenant_generation_benchmark() {
    let spec = TenantSpec::with_users(1_000_000);
    let started = std::time::Instant::now();
    let tenant = spec.generate().expect("valid");
    let generated = started.elapsed();
    let memberships: usize = tenant.groups.values().map(|g| g.members.len()).sum();
    let largest = tenant
        .groups
        .values()
        .map(|g| g.members.len())
        .max()
        .unwrap_or_default();
    let rss = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = |key: &str| {
        rss.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or("")
            .to_string()
    };
    println!(
        "users {} groups {} memberships {memberships} largest group {largest} sps {} role assignments {} | generated in {:.2?} | {} | {}",
        tenant.users.len(),
        tenant.groups.len(),
        tenant.service_principals.len(),
        tenant.role_assignments.len(),
        generated,
        line("VmRSS"),
        line("VmHWM"),
    );
    let config = EmulatorConfig::new(spec, std::env::temp_dir());
    let control = Control::new(Arc::new(EmulatorState::new(tenant, &config)));
    let started = std::time::Instant::now();
    let summary = control.random_churn(1, 0.01);
    println!(
        "churn of 1% of users: {summary:?} in {:.2?}",
        started.elapsed()
    );
    let started = std::time::Instant::now();
    let graph = control.expected_graph(&ExpectedOptions::default());
    println!(
        "expected graph: {} resources, {} entitlements, {} grants in {:.2?} | {}",
        graph.resources.len(),
        graph.entitlements.len(),
        graph.grants.len(),
        started.elapsed(),
        {
            let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .unwrap_or("")
                .to_string()
        }
    );
}

/// The smallest tenant the spec allows still generates and has a consistent access graph.
#[test]
fn ten_user_tenant_is_consistent() {
    let t = TenantSpec::with_users(10)
        .generate()
        .expect("10 users is allowed");
    assert_eq!(t.users.len(), 10);
    assert!(t.groups.values().all(|g| {
        g.members
            .iter()
            .all(|m| t.directory_object_kind(*m).is_some())
    }));
    let g = emulator::ExpectedGraph::compute(&t, &ExpectedOptions::default());
    assert!(
        g.grants
            .values()
            .all(|grant| g.entitlements.contains_key(&grant.entitlement)
                && g.resources.contains_key(&grant.principal))
    );
    assert!(g.resources.keys().any(|k| k.starts_with("container:")));
}
