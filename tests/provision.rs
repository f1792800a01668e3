//! Grant and revoke against the tenant emulator, through `provision::Provisioner` (the surface
//! the one-shots and service mode share) and through the binary's one-shot flags: every
//! entitlement kind that is built, both idempotent paths, a refused principal type, a revoke
//! that leaves another principal's assignment alone, provisioning disabled, unknown ids, a
//! missing write permission (Graph's and ARM's 403), and rounds after the writes that find
//! nothing more to change.

mod support;

use std::process::Command;

use baton_azure_delta::azure::ApiError;
use baton_azure_delta::c1z::writer::ExportOptions;
use baton_azure_delta::model::{Record, Table};
use baton_azure_delta::provision::{
    GrantOutcome, PrincipalRef, ProvisionError, Provisioner, RevokeOutcome,
};
use baton_azure_delta::sync::engine::RoundKind;
use baton_azure_delta::sync::{export, setup};
use emulator::TenantChange;
use emulator::TenantSpec;
use emulator::tenant::{
    ArmPrincipalType, DEFAULT_APP_ROLE_ID, ServicePrincipalType, container_scope,
    management_group_scope, resource_group_scope, storage_account_scope, subscription_scope,
};
use support::*;
use uuid::Uuid;

const BIN: &str = env!("CARGO_BIN_EXE_baton-azure-delta");

async fn provisioner(worker: &Worker, enabled: bool) -> Provisioner {
    let client = setup::connect(&worker.config).await.expect("connects");
    Provisioner::new(client, worker.store.clone(), enabled)
}

fn user(id: Uuid) -> PrincipalRef {
    PrincipalRef {
        resource_type: "user".into(),
        id: id.to_string(),
    }
}

fn has_grant(worker: &Worker, grant: &str) -> bool {
    worker
        .records()
        .contains_key(&(Table::Grants, grant.to_string()))
}

/// A baseline, then a full export, so that the store keeps a change log from here on.
async fn synced_worker(h: &Harness, name: &str) -> (Worker, String) {
    let worker = h.worker(&state_path(h, name), &["--provisioning"]).await;
    let report = worker.round(RoundKind::Poll).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    let summary = export::full(
        &worker.store,
        &h.dir.path().join(format!("{name}.c1z")),
        ExportOptions::default(),
    )
    .expect("export");
    let sync_id = summary.state_sync_id().expect("a sync id").to_string();
    (worker, sync_id)
}

/// Live users of the tenant that are in no group as member or owner and have no directory role.
fn free_users(h: &Harness, count: usize) -> Vec<Uuid> {
    h.control().with_tenant(|t| {
        t.users
            .values()
            .filter(|u| u.deleted.is_none())
            .filter(|u| {
                t.groups
                    .values()
                    .all(|g| !g.members.contains(&u.id) && !g.owners.contains(&u.id))
            })
            .filter(|u| {
                t.directory_role_assignments
                    .values()
                    .all(|a| a.principal_id != u.id)
            })
            .map(|u| u.id)
            .take(count)
            .collect()
    })
}

fn cloud_group(h: &Harness) -> Uuid {
    h.control().with_tenant(|t| {
        t.groups
            .values()
            .find(|g| g.deleted.is_none() && g.security_enabled && !g.on_premises_sync_enabled)
            .expect("a cloud security group")
            .id
    })
}

/// Group members and owners: granted, granted again (already there), revoked, revoked again
/// (already gone); the store and the diff since the last export carry each change at once, and
/// the delta round after the writes changes no record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_and_owners_are_granted_and_revoked_idempotently() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let (worker, base) = synced_worker(&h, "groups").await;
    let p = provisioner(&worker, true).await;
    let group = cloud_group(&h);
    let users = free_users(&h, 2);
    let (member, owner) = (users[0], users[1]);
    let members = format!("group:{group}:members");
    let owners = format!("group:{group}:owners");

    let first = p.grant(&members, &user(member)).await.expect("grant");
    assert_eq!(first, GrantOutcome::Granted);
    assert!(first.annotations().is_empty());
    let again = p.grant(&members, &user(member)).await.expect("grant again");
    assert_eq!(again, GrantOutcome::AlreadyExists);
    assert_eq!(
        again.annotations()[0].type_url,
        "type.googleapis.com/c1.connector.v2.GrantAlreadyExists"
    );
    assert_eq!(
        p.grant(&owners, &user(owner)).await.expect("owner"),
        GrantOutcome::Granted
    );
    h.control().with_tenant(|t| {
        assert!(t.groups[&group].members.contains(&member));
        assert!(t.groups[&group].owners.contains(&owner));
    });
    let member_grant = format!("{members}:user:{member}");
    let owner_grant = format!("{owners}:user:{owner}");
    assert!(has_grant(&worker, &member_grant));
    assert!(has_grant(&worker, &owner_grant));

    // The diff since the export carries both grants, before any round has run.
    let diff_file = h.dir.path().join("groups-diff.c1z");
    export::diff(
        &worker.store,
        &diff_file,
        &base,
        false,
        ExportOptions::default(),
    )
    .expect("diff");
    let upserts = c1z_sync_rows(&diff_file, "partial_upserts");
    assert!(upserts.contains_key(&(Table::Grants, member_grant.clone())));
    assert!(upserts.contains_key(&(Table::Grants, owner_grant.clone())));

    // The groups delta now reports the new links: the store already has them.
    let round = worker.round(RoundKind::Changes).await;
    assert!(round.failed.is_empty(), "{:?}", round.failed);
    assert_eq!(
        round.records_changed,
        Some(0),
        "the delta round changed records"
    );

    let revoked = p.revoke(&member_grant).await.expect("revoke");
    assert_eq!(revoked, RevokeOutcome::Revoked);
    let gone = p.revoke(&member_grant).await.expect("revoke again");
    assert_eq!(gone, RevokeOutcome::AlreadyRevoked);
    assert_eq!(
        gone.annotations()[0].type_url,
        "type.googleapis.com/c1.connector.v2.GrantAlreadyRevoked"
    );
    assert_eq!(
        p.revoke(&owner_grant).await.expect("owner"),
        RevokeOutcome::Revoked
    );
    h.control().with_tenant(|t| {
        assert!(!t.groups[&group].members.contains(&member));
        assert!(!t.groups[&group].owners.contains(&owner));
    });
    assert!(!has_grant(&worker, &member_grant));
    let round = worker.round(RoundKind::Changes).await;
    assert_eq!(
        round.records_changed,
        Some(0),
        "the delta round changed records"
    );
    assert_no_differences(
        "after grants and revokes",
        &differences_from_expected(
            &worker.decoded(),
            &h.control().expected_graph(&expected_options(&[])),
        ),
    );
}

/// Graph refuses a group as a group's owner: a clear error naming the entitlement and the
/// principal, with Microsoft's request id, and nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_principal_type_is_a_clear_error_and_writes_nothing() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let (worker, _) = synced_worker(&h, "refused").await;
    let p = provisioner(&worker, true).await;
    let (group, other) = h.control().with_tenant(|t| {
        let mut cloud = t
            .groups
            .values()
            .filter(|g| g.deleted.is_none() && !g.on_premises_sync_enabled)
            .map(|g| g.id);
        (
            cloud.next().expect("a group"),
            cloud.next().expect("another"),
        )
    });
    let owners = format!("group:{group}:owners");
    let principal = PrincipalRef {
        resource_type: "group".into(),
        id: other.to_string(),
    };
    let head = worker.store.head_seq();
    let error = p
        .grant(&owners, &principal)
        .await
        .expect_err("a group cannot own a group");
    let ProvisionError::Refused(rejection) = &error else {
        panic!("expected Refused, got {error:?}");
    };
    assert!(rejection.request_id.is_some(), "{error}");
    let text = error.to_string();
    assert!(text.contains(&owners), "{text}");
    assert!(text.contains(&format!("group:{other}")), "{text}");
    assert!(text.contains("request id"), "{text}");
    h.control()
        .with_tenant(|t| assert!(!t.groups[&group].owners.contains(&other)));
    assert_eq!(worker.store.head_seq(), head, "the change log moved");
}

/// Two principals hold one app role; revoking one leaves the other's assignment in the tenant
/// and in the store. The application's owners are granted and revoked too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_role_revoke_leaves_another_principals_assignment_alone() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let (worker, _) = synced_worker(&h, "app-roles").await;
    let p = provisioner(&worker, true).await;
    let (app, role) = h.control().with_tenant(|t| {
        let sp = t
            .service_principals
            .values()
            .find(|sp| {
                sp.service_principal_type == ServicePrincipalType::Application
                    && !sp.app_roles.is_empty()
            })
            .expect("an application with app roles");
        (sp.id, sp.app_roles[0].id)
    });
    let users = free_users(&h, 2);
    let group = cloud_group(&h);
    for (entitlement_role, principal) in [
        (role, user(users[0])),
        (role, user(users[1])),
        (
            DEFAULT_APP_ROLE_ID,
            PrincipalRef {
                resource_type: "group".into(),
                id: group.to_string(),
            },
        ),
    ] {
        let entitlement = format!("enterprise_application:{app}:assignment:{entitlement_role}");
        assert_eq!(
            p.grant(&entitlement, &principal).await.expect("grant"),
            GrantOutcome::Granted
        );
        assert_eq!(
            p.grant(&entitlement, &principal).await.expect("again"),
            GrantOutcome::AlreadyExists
        );
    }
    let entitlement = format!("enterprise_application:{app}:assignment:{role}");
    let first = format!("{entitlement}:user:{}", users[0]);
    let second = format!("{entitlement}:user:{}", users[1]);
    assert!(has_grant(&worker, &first) && has_grant(&worker, &second));
    assert!(has_grant(
        &worker,
        &format!("enterprise_application:{app}:assignment:{DEFAULT_APP_ROLE_ID}:group:{group}")
    ));

    assert_eq!(
        p.revoke(&first).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        p.revoke(&first).await.expect("again"),
        RevokeOutcome::AlreadyRevoked
    );
    let held: Vec<(Uuid, Uuid)> = h.control().with_tenant(|t| {
        t.service_principals[&app]
            .app_role_assigned_to
            .iter()
            .map(|a| (a.principal_id, a.app_role_id))
            .collect()
    });
    assert!(!held.contains(&(users[0], role)));
    assert!(
        held.contains(&(users[1], role)),
        "the other assignment was removed"
    );
    assert!(!has_grant(&worker, &first));
    assert!(has_grant(&worker, &second));
    // The application's owners: granted, granted again, revoked, revoked again.
    let owners = format!("enterprise_application:{app}:owners");
    let owner_grant = format!("{owners}:user:{}", users[0]);
    assert_eq!(
        p.grant(&owners, &user(users[0])).await.expect("owner"),
        GrantOutcome::Granted
    );
    assert_eq!(
        p.grant(&owners, &user(users[0]))
            .await
            .expect("owner again"),
        GrantOutcome::AlreadyExists
    );
    assert!(has_grant(&worker, &owner_grant));
    h.control()
        .with_tenant(|t| assert!(t.service_principals[&app].owners.contains(&users[0])));
    // The polled assignments and owners feeds list exactly what the store already holds.
    let round = worker.round(RoundKind::Poll).await;
    assert!(round.failed.is_empty(), "{:?}", round.failed);
    assert_eq!(round.records_changed, Some(0), "the poll changed records");
    assert_eq!(
        p.revoke(&owner_grant).await.expect("revoke owner"),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        p.revoke(&owner_grant).await.expect("revoke owner again"),
        RevokeOutcome::AlreadyRevoked
    );
    assert!(!has_grant(&worker, &owner_grant));
    h.control()
        .with_tenant(|t| assert!(!t.service_principals[&app].owners.contains(&users[0])));
    let round = worker.round(RoundKind::Poll).await;
    assert_eq!(round.records_changed, Some(0), "the poll changed records");
}

/// A directory role: assigned tenant-wide, idempotently, revoked, and a poll of the role
/// assignments finds nothing more to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_role_is_assigned_and_removed_idempotently() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let (worker, _) = synced_worker(&h, "directory-roles").await;
    let p = provisioner(&worker, true).await;
    let role = h.control().with_tenant(|t| {
        *t.directory_role_definitions
            .keys()
            .next()
            .expect("a role definition")
    });
    let principal = free_users(&h, 1)[0];
    let entitlement = format!("directory_role:{role}:assigned");
    let grant = format!("{entitlement}:user:{principal}");
    assert_eq!(
        p.grant(&entitlement, &user(principal))
            .await
            .expect("grant"),
        GrantOutcome::Granted
    );
    assert_eq!(
        p.grant(&entitlement, &user(principal))
            .await
            .expect("again"),
        GrantOutcome::AlreadyExists
    );
    assert!(has_grant(&worker, &grant));
    let round = worker.round(RoundKind::Poll).await;
    assert!(round.failed.is_empty(), "{:?}", round.failed);
    assert_eq!(round.records_changed, Some(0), "the poll changed records");

    assert_eq!(
        p.revoke(&grant).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        p.revoke(&grant).await.expect("again"),
        RevokeOutcome::AlreadyRevoked
    );
    h.control().with_tenant(|t| {
        assert!(
            t.directory_role_assignments
                .values()
                .all(|a| a.principal_id != principal)
        );
    });
    assert!(!has_grant(&worker, &grant));
    let round = worker.round(RoundKind::Poll).await;
    assert_eq!(round.records_changed, Some(0), "the poll changed records");
}

/// Azure roles at every kind of scope of the data model (the tenant root, a management group, a
/// subscription, a resource group, a storage account, a container, another resource), for a
/// user, a group and an enterprise application: granted (with `principalType`), granted again
/// (409 RoleAssignmentExists), and a poll finds the store already in line; then revoked and
/// revoked again (ARM's 204).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_roles_are_granted_and_revoked_at_every_scope() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let (holder, role, scopes, app) = h.control().with_tenant(|t| {
        let holder = t
            .groups
            .values()
            .find(|g| g.deleted.is_none() && g.security_enabled && !g.on_premises_sync_enabled)
            .expect("a group")
            .id;
        let role = t
            .role_definitions
            .values()
            .find(|r| r.assignable_scopes.iter().any(|s| s == "/"))
            .expect("a built-in role, assignable everywhere")
            .id;
        let mg = t
            .management_groups
            .values()
            .find(|g| g.parent.is_some())
            .expect("a management group");
        let sub = *t.subscriptions.keys().next().expect("a subscription");
        let rg = t
            .resource_groups
            .values()
            .find(|g| g.subscription == sub)
            .expect("a resource group");
        let account = t
            .storage_accounts
            .values()
            .find(|a| !a.containers.is_empty())
            .expect("a storage account with a container");
        let resource = t.arm_resources.values().next().expect("another resource");
        let scopes = vec![
            ("tenant", "/".to_string()),
            ("management_group", management_group_scope(&mg.name)),
            ("subscription", subscription_scope(sub)),
            ("resource_group", resource_group_scope(sub, &rg.name)),
            ("storage_account", storage_account_scope(account)),
            (
                "container",
                container_scope(account, &account.containers[0]),
            ),
            ("azure_resource", resource.arm_id()),
        ];
        let app = t
            .service_principals
            .values()
            .find(|sp| sp.service_principal_type == ServicePrincipalType::Application)
            .expect("an application")
            .id;
        (holder, role, scopes, app)
    });
    // An assignment at each scope first, so that each has a `role:` entitlement to grant.
    for (i, (_, scope)) in scopes.iter().enumerate() {
        h.control()
            .apply(TenantChange::CreateRoleAssignment {
                name: Uuid::from_u128(0xa5a5_0000 + i as u128),
                scope: scope.clone(),
                role_definition: role,
                principal: holder,
                principal_type: ArmPrincipalType::Group,
            })
            .expect("assignment");
    }
    let (worker, _) = synced_worker(&h, "azure-roles").await;
    let p = provisioner(&worker, true).await;
    let entitlements: Vec<(&str, String)> = {
        let suffix = format!(":role:{role}:group:{holder}");
        let mut found = Vec::new();
        for record in worker.decoded() {
            if let Record::Grant(g) = record
                && let Some(entitlement) = g.id.strip_suffix(&suffix)
            {
                found.push(entitlement.to_string());
            }
        }
        scopes
            .iter()
            .map(|(kind, scope)| {
                let entitlement = found
                    .iter()
                    .find(|e| e.starts_with(&format!("{kind}:")))
                    .unwrap_or_else(|| panic!("no role entitlement at {scope}: {found:?}"));
                (*kind, format!("{entitlement}:role:{role}"))
            })
            .collect()
    };
    let users = free_users(&h, entitlements.len());
    let principals: Vec<PrincipalRef> = entitlements
        .iter()
        .enumerate()
        .map(|(i, _)| match i {
            1 => PrincipalRef {
                resource_type: "group".into(),
                id: cloud_group_other_than(&h, holder).to_string(),
            },
            2 => PrincipalRef {
                resource_type: "enterprise_application".into(),
                id: app.to_string(),
            },
            _ => user(users[i]),
        })
        .collect();
    for ((kind, entitlement), principal) in entitlements.iter().zip(&principals) {
        assert_eq!(
            p.grant(entitlement, principal).await.expect("grant"),
            GrantOutcome::Granted,
            "{kind}"
        );
        assert_eq!(
            p.grant(entitlement, principal).await.expect("again"),
            GrantOutcome::AlreadyExists,
            "{kind}"
        );
        let grant = format!("{entitlement}:{}:{}", principal.resource_type, principal.id);
        assert!(has_grant(&worker, &grant), "{grant} not in the store");
    }
    let types: Vec<String> = h.control().with_tenant(|t| {
        principals
            .iter()
            .map(|pr| {
                let id = Uuid::parse_str(&pr.id).expect("uuid");
                t.role_assignments
                    .values()
                    .find(|a| a.principal_id == id && a.role_definition == role)
                    .map(|a| a.principal_type.as_str().to_string())
                    .unwrap_or_default()
            })
            .collect()
    });
    assert_eq!(types[..3], ["User", "Group", "ServicePrincipal"]);
    h.control()
        .advance_clock(std::time::Duration::from_secs(10 * 60));
    let round = worker.round(RoundKind::Poll).await;
    assert!(round.failed.is_empty(), "{:?}", round.failed);
    assert_eq!(round.records_changed, Some(0), "the poll changed records");

    for ((kind, entitlement), principal) in entitlements.iter().zip(&principals) {
        let grant = format!("{entitlement}:{}:{}", principal.resource_type, principal.id);
        assert_eq!(
            p.revoke(&grant).await.expect("revoke"),
            RevokeOutcome::Revoked,
            "{kind}"
        );
        assert_eq!(
            p.revoke(&grant).await.expect("again"),
            RevokeOutcome::AlreadyRevoked,
            "{kind}"
        );
        assert!(!has_grant(&worker, &grant), "{grant} left in the store");
    }
    // The holder's assignments at the same scopes were not touched.
    h.control().with_tenant(|t| {
        let held = t
            .role_assignments
            .values()
            .filter(|a| a.principal_id == holder && a.role_definition == role)
            .count();
        assert_eq!(held, scopes.len());
    });
    h.control()
        .advance_clock(std::time::Duration::from_secs(10 * 60));
    let round = worker.round(RoundKind::Poll).await;
    assert_eq!(round.records_changed, Some(0), "the poll changed records");
}

fn cloud_group_other_than(h: &Harness, not: Uuid) -> Uuid {
    h.control().with_tenant(|t| {
        t.groups
            .values()
            .find(|g| g.deleted.is_none() && !g.on_premises_sync_enabled && g.id != not)
            .expect("another group")
            .id
    })
}

/// Without `--provisioning` every grant and revoke is refused before anything is sent; ids the
/// store does not know are clear errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_provisioning_and_unknown_ids_are_refused() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let (worker, _) = synced_worker(&h, "refusals").await;
    let group = cloud_group(&h);
    let principal = free_users(&h, 1)[0];
    let members = format!("group:{group}:members");

    let disabled = provisioner(&worker, false).await;
    h.control().reset_counts();
    let error = disabled
        .grant(&members, &user(principal))
        .await
        .expect_err("disabled");
    assert!(matches!(error, ProvisionError::Disabled), "{error:?}");
    assert!(error.to_string().contains("--provisioning"), "{error}");
    let error = disabled
        .revoke(&format!("{members}:user:{principal}"))
        .await
        .expect_err("disabled");
    assert!(matches!(error, ProvisionError::Disabled), "{error:?}");
    let sent = h.control().request_counts().by_api;
    assert!(
        !sent.contains_key("graph") && !sent.contains_key("arm"),
        "a request was sent: {sent:?}"
    );
    h.control()
        .with_tenant(|t| assert!(!t.groups[&group].members.contains(&principal)));

    let p = provisioner(&worker, true).await;
    let unknown_group = Uuid::from_u128(7);
    for (entitlement, who) in [
        (format!("group:{unknown_group}:members"), user(principal)),
        (format!("group:{group}:frobnicate"), user(principal)),
        (members.clone(), user(Uuid::from_u128(8))),
        (
            members.clone(),
            PrincipalRef {
                resource_type: "role".into(),
                id: principal.to_string(),
            },
        ),
    ] {
        let error = p.grant(&entitlement, &who).await.expect_err("unknown");
        assert!(matches!(error, ProvisionError::UnknownId(_)), "{error:?}");
        assert!(error.to_string().contains("not"), "{error}");
    }
    let error = p.revoke("not-a-grant").await.expect_err("malformed");
    assert!(matches!(error, ProvisionError::UnknownId(_)), "{error:?}");
}

/// The binary's one-shots: refused without `--provisioning` (exit 1, before any request, a token
/// request included, reaches the emulator), a grant and its repeat
/// with `--provisioning` (one JSON line each, the repeat with `GrantAlreadyExists`), an unknown
/// entitlement (exit 1), and `--revoke-grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_shot_flags_grant_and_revoke_through_the_binary() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let state = state_path(&h, "one-shot");
    {
        let (worker, _) = synced_worker(&h, "one-shot").await;
        drop(worker);
    }
    let group = cloud_group(&h);
    let principal = free_users(&h, 1)[0].to_string();
    let entitlement = format!("group:{group}:members");
    let run = |extra: &[&str]| {
        let output = Command::new(BIN)
            .env_clear()
            .args(h.args(&state, extra))
            .output()
            .expect("the binary runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let grant_args = [
        "--grant-entitlement",
        entitlement.as_str(),
        "--grant-principal",
        principal.as_str(),
        "--grant-principal-type",
        "user",
    ];

    // Refused before signing in: no token request (nor any other) reaches the emulator.
    h.control().reset_counts();
    let (code, _, stderr) = run(&grant_args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--provisioning"), "{stderr}");
    let sent = h.control().request_counts().by_api;
    assert!(
        sent.is_empty(),
        "the refused one-shot sent requests: {sent:?}"
    );
    let (code, _, stderr) = run(&["--revoke-grant", &format!("{entitlement}:user:{principal}")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--provisioning"), "{stderr}");
    let sent = h.control().request_counts().by_api;
    assert!(
        sent.is_empty(),
        "the refused one-shot sent requests: {sent:?}"
    );

    let mut enabled = grant_args.to_vec();
    enabled.push("--provisioning");
    let (code, stdout, stderr) = run(&enabled);
    assert_eq!(code, Some(0), "{stderr}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["outcome"], "granted");
    let (code, stdout, stderr) = run(&enabled);
    assert_eq!(code, Some(0), "{stderr}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["outcome"], "already_exists");
    assert_eq!(
        line["annotations"],
        serde_json::json!(["type.googleapis.com/c1.connector.v2.GrantAlreadyExists"])
    );

    let unknown = format!("group:{}:members", Uuid::from_u128(9));
    let (code, _, stderr) = run(&[
        "--provisioning",
        "--grant-entitlement",
        &unknown,
        "--grant-principal",
        &principal,
        "--grant-principal-type",
        "user",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not in the store"), "{stderr}");

    let grant = format!("{entitlement}:user:{principal}");
    let (code, stdout, stderr) = run(&["--provisioning", "--revoke-grant", &grant]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\"revoked\""), "{stdout}");
    h.control().with_tenant(|t| {
        assert!(
            !t.groups[&group]
                .members
                .contains(&Uuid::parse_str(&principal).expect("uuid"))
        )
    });
}

/// Directory role eligibility (PIM): requested with `adminAssign`, requested again (already
/// there), a poll finds the store in line, removed with `adminRemove`, removed again (already
/// gone); a tenant without P2 is a licence error naming the entitlement, with a request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_role_eligibility_is_requested_and_removed_idempotently() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let (worker, _) = synced_worker(&h, "eligibility").await;
    let p = provisioner(&worker, true).await;
    let role = h.control().with_tenant(|t| {
        *t.directory_role_definitions
            .keys()
            .next()
            .expect("a role definition")
    });
    let principal = free_users(&h, 1)[0];
    let entitlement = format!("directory_role:{role}:eligible");
    let grant = format!("{entitlement}:user:{principal}");
    assert_eq!(
        p.grant(&entitlement, &user(principal))
            .await
            .expect("grant"),
        GrantOutcome::Granted
    );
    assert_eq!(
        p.grant(&entitlement, &user(principal))
            .await
            .expect("again"),
        GrantOutcome::AlreadyExists
    );
    assert!(has_grant(&worker, &grant));
    h.control().with_tenant(|t| {
        assert!(
            t.directory_role_eligibilities
                .values()
                .any(|e| e.principal_id == principal && e.role_definition_id == role)
        );
    });
    let round = worker.round(RoundKind::Poll).await;
    assert!(round.failed.is_empty(), "{:?}", round.failed);
    assert_eq!(round.records_changed, Some(0), "the poll changed records");

    assert_eq!(
        p.revoke(&grant).await.expect("revoke"),
        RevokeOutcome::Revoked
    );
    assert_eq!(
        p.revoke(&grant).await.expect("again"),
        RevokeOutcome::AlreadyRevoked
    );
    assert!(!has_grant(&worker, &grant));
    let round = worker.round(RoundKind::Poll).await;
    assert_eq!(round.records_changed, Some(0), "the poll changed records");

    h.control().set_p2_license(false);
    let error = p
        .grant(&entitlement, &user(principal))
        .await
        .expect_err("no P2");
    let ProvisionError::LicenseRequired(rejection) = &error else {
        panic!("expected LicenseRequired, got {error:?}");
    };
    assert!(rejection.request_id.is_some(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&entitlement) && text.contains(&principal.to_string()),
        "{text}"
    );
    h.control().with_tenant(|t| {
        assert!(
            t.directory_role_eligibilities
                .values()
                .all(|e| e.principal_id != principal)
        );
    });
}

/// PIM for Groups: eligible membership and ownership requested, requested again, a poll finds
/// the store in line, removed, removed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_eligibility_is_requested_and_removed_idempotently() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let (worker, _) = synced_worker(&h, "group-eligibility").await;
    let p = provisioner(&worker, true).await;
    // A group PIM can manage: cloud-only, not dynamic.
    let group = h.control().with_tenant(|t| {
        t.groups
            .values()
            .find(|g| {
                g.deleted.is_none()
                    && !g.on_premises_sync_enabled
                    && !g.group_types.iter().any(|k| k == "DynamicMembership")
            })
            .expect("a PIM-capable group")
            .id
    });
    let users = free_users(&h, 2);
    let grants: Vec<(String, Uuid)> = ["eligible_members", "eligible_owners"]
        .iter()
        .zip(&users)
        .map(|(slug, u)| (format!("group:{group}:{slug}"), *u))
        .collect();
    for (entitlement, principal) in &grants {
        assert_eq!(
            p.grant(entitlement, &user(*principal))
                .await
                .expect("grant"),
            GrantOutcome::Granted
        );
        assert_eq!(
            p.grant(entitlement, &user(*principal))
                .await
                .expect("again"),
            GrantOutcome::AlreadyExists
        );
        assert!(has_grant(
            &worker,
            &format!("{entitlement}:user:{principal}")
        ));
    }
    h.control().with_tenant(|t| {
        let held: Vec<(Uuid, &str)> = t
            .group_eligibilities
            .values()
            .filter(|e| e.group_id == group)
            .map(|e| (e.principal_id, e.access.as_str()))
            .collect();
        assert!(held.contains(&(users[0], "member")), "{held:?}");
        assert!(held.contains(&(users[1], "owner")), "{held:?}");
    });
    let round = worker.round(RoundKind::Poll).await;
    assert!(round.failed.is_empty(), "{:?}", round.failed);
    assert_eq!(round.records_changed, Some(0), "the poll changed records");

    for (entitlement, principal) in &grants {
        let grant = format!("{entitlement}:user:{principal}");
        assert_eq!(
            p.revoke(&grant).await.expect("revoke"),
            RevokeOutcome::Revoked
        );
        assert_eq!(
            p.revoke(&grant).await.expect("again"),
            RevokeOutcome::AlreadyRevoked
        );
        assert!(!has_grant(&worker, &grant));
    }
    h.control().with_tenant(|t| {
        assert!(
            t.group_eligibilities
                .values()
                .all(|e| e.group_id != group || !users.contains(&e.principal_id))
        );
    });
    let round = worker.round(RoundKind::Poll).await;
    assert_eq!(round.records_changed, Some(0), "the poll changed records");
}

/// Azure PIM eligibility at a subscription and a resource group: requested (`AdminAssign`),
/// requested again (already there), a poll finds the store in line, removed (`AdminRemove`),
/// removed again (already gone); the holder's eligibility at the same scope stays; without P2
/// a licence error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_eligibility_is_requested_and_removed_idempotently() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let (holder, role, scopes) = h.control().with_tenant(|t| {
        let holder = t
            .groups
            .values()
            .find(|g| g.deleted.is_none() && g.security_enabled && !g.on_premises_sync_enabled)
            .expect("a group")
            .id;
        let role = t
            .role_definitions
            .values()
            .find(|r| r.assignable_scopes.iter().any(|s| s == "/"))
            .expect("a built-in role")
            .id;
        let sub = *t.subscriptions.keys().next().expect("a subscription");
        let rg = t
            .resource_groups
            .values()
            .find(|g| g.subscription == sub)
            .expect("a resource group");
        let scopes = vec![
            ("subscription", subscription_scope(sub)),
            ("resource_group", resource_group_scope(sub, &rg.name)),
        ];
        (holder, role, scopes)
    });
    for (i, (_, scope)) in scopes.iter().enumerate() {
        h.control()
            .apply(TenantChange::AddRoleEligibility {
                name: Uuid::from_u128(0xe1e1_0000 + i as u128),
                scope: scope.clone(),
                role_definition: role,
                principal: holder,
                principal_type: ArmPrincipalType::Group,
            })
            .expect("eligibility");
    }
    let (worker, _) = synced_worker(&h, "azure-eligibility").await;
    let p = provisioner(&worker, true).await;
    let suffix = format!(":eligible:{role}:group:{holder}");
    let held: Vec<String> = worker
        .decoded()
        .into_iter()
        .filter_map(|r| match r {
            Record::Grant(g) => g.id.strip_suffix(&suffix).map(str::to_string),
            _ => None,
        })
        .collect();
    let principal = free_users(&h, 1)[0];
    for (kind, scope) in &scopes {
        let resource = held
            .iter()
            .find(|e| e.starts_with(&format!("{kind}:")))
            .unwrap_or_else(|| panic!("no eligibility entitlement at {scope}: {held:?}"));
        let entitlement = format!("{resource}:eligible:{role}");
        let grant = format!("{entitlement}:user:{principal}");
        assert_eq!(
            p.grant(&entitlement, &user(principal))
                .await
                .expect("grant"),
            GrantOutcome::Granted,
            "{kind}"
        );
        assert_eq!(
            p.grant(&entitlement, &user(principal))
                .await
                .expect("again"),
            GrantOutcome::AlreadyExists,
            "{kind}"
        );
        assert!(has_grant(&worker, &grant), "{grant} not in the store");
        h.control()
            .advance_clock(std::time::Duration::from_secs(10 * 60));
        let round = worker.round(RoundKind::Poll).await;
        assert!(round.failed.is_empty(), "{:?}", round.failed);
        assert_eq!(
            round.records_changed,
            Some(0),
            "{kind}: the poll changed records"
        );

        assert_eq!(
            p.revoke(&grant).await.expect("revoke"),
            RevokeOutcome::Revoked,
            "{kind}"
        );
        assert_eq!(
            p.revoke(&grant).await.expect("again"),
            RevokeOutcome::AlreadyRevoked,
            "{kind}"
        );
        assert!(!has_grant(&worker, &grant), "{grant} left in the store");
        h.control()
            .advance_clock(std::time::Duration::from_secs(10 * 60));
        let round = worker.round(RoundKind::Poll).await;
        assert_eq!(
            round.records_changed,
            Some(0),
            "{kind}: the poll changed records"
        );
    }
    h.control().with_tenant(|t| {
        let eligibilities: Vec<Uuid> = t
            .role_eligibilities
            .values()
            .map(|e| e.principal_id)
            .collect();
        assert!(!eligibilities.contains(&principal));
        assert_eq!(
            eligibilities.iter().filter(|p| **p == holder).count(),
            scopes.len(),
            "the holder's eligibility was touched"
        );
    });

    h.control().set_p2_license(false);
    let entitlement = format!(
        "{}:eligible:{role}",
        held.iter()
            .find(|e| e.starts_with("subscription:"))
            .expect("a subscription eligibility")
    );
    let error = p
        .grant(&entitlement, &user(principal))
        .await
        .expect_err("no P2");
    assert!(
        matches!(error, ProvisionError::LicenseRequired(_)),
        "{error:?}"
    );
}

/// The tenant's grants as the store holds them.
fn store_grants(worker: &Worker) -> Vec<String> {
    worker
        .records()
        .into_keys()
        .filter(|(table, _)| *table == Table::Grants)
        .map(|(_, id)| id)
        .collect()
}

/// The message of a refused write names the entitlement, the principal and Microsoft's request
/// id, and the refusal is Microsoft's `code`.
fn assert_forbidden(error: &ProvisionError, entitlement: &str, principal: &str, code: &str) {
    let ProvisionError::Forbidden(rejection) = error else {
        panic!("not Forbidden: {error:?}");
    };
    assert_eq!(rejection.entitlement, entitlement);
    assert_eq!(rejection.principal, principal);
    assert!(
        matches!(&rejection.error, ApiError::Forbidden { code: c, .. } if c == code),
        "{:?}",
        rejection.error
    );
    let request_id = rejection
        .request_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| panic!("no request id: {rejection:?}"));
    let message = error.to_string();
    assert!(message.starts_with("permission missing: "), "{message}");
    for part in [entitlement, principal, &format!("request id {request_id}")] {
        assert!(message.contains(part), "{part} not in {message}");
    }
}

/// An app consented read permissions only (the emulator's `read_only_app`): a group member grant
/// (Graph, 403 `Authorization_RequestDenied`) and an Azure role grant (ARM, 403
/// `AuthorizationFailed`) each fail with `Forbidden` naming the entitlement and principal and
/// carrying Microsoft's request id; the one-shot exits 1 with that message; neither the tenant
/// nor the store's grants change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_write_permission_is_forbidden_and_writes_nothing() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let state = state_path(&h, "forbidden");
    let (holder, role, scope) = h.control().with_tenant(|t| {
        let role = t
            .role_definitions
            .values()
            .find(|r| r.assignable_scopes.iter().any(|s| s == "/"))
            .expect("a built-in role, assignable everywhere")
            .id;
        let sub = *t.subscriptions.keys().next().expect("a subscription");
        (cloud_group_of(t), role, subscription_scope(sub))
    });
    // An assignment at the subscription, so that it has a `role:` entitlement to grant.
    h.control()
        .apply(TenantChange::CreateRoleAssignment {
            name: Uuid::from_u128(0xf0f0),
            scope: scope.clone(),
            role_definition: role,
            principal: holder,
            principal_type: ArmPrincipalType::Group,
        })
        .expect("assignment");
    let (worker, _) = synced_worker(&h, "forbidden").await;
    let suffix = format!(":role:{role}:group:{holder}");
    let azure_role = worker
        .decoded()
        .into_iter()
        .find_map(|record| match record {
            Record::Grant(g) => {
                g.id.strip_suffix(&suffix)
                    .filter(|e| e.starts_with("subscription:"))
                    .map(|e| format!("{e}:role:{role}"))
            }
            _ => None,
        })
        .expect("the subscription's role entitlement");
    let group = cloud_group(&h);
    let members = format!("group:{group}:members");
    let users = free_users(&h, 2);
    let (member, assignee) = (users[0], users[1]);

    let tenant_before = h.control().with_tenant(|t| format!("{t:?}"));
    let grants_before = store_grants(&worker);
    h.control().set_wire(emulator::WireBehaviours {
        read_only_app: true,
        ..Default::default()
    });

    let p = provisioner(&worker, true).await;
    let error = p
        .grant(&members, &user(member))
        .await
        .expect_err("a Graph write without permission");
    assert_forbidden(
        &error,
        &members,
        &format!("user:{member}"),
        "Authorization_RequestDenied",
    );
    let error = p
        .grant(&azure_role, &user(assignee))
        .await
        .expect_err("an ARM write without permission");
    assert_forbidden(
        &error,
        &azure_role,
        &format!("user:{assignee}"),
        "AuthorizationFailed",
    );
    assert!(
        error.to_string().contains(&format!(
            "'Microsoft.Authorization/roleAssignments/write' over scope '{scope}'"
        )),
        "{error}"
    );
    assert_eq!(
        store_grants(&worker),
        grants_before,
        "the store's grants changed"
    );
    drop(p);
    drop(worker);

    let output = Command::new(BIN)
        .env_clear()
        .args(h.args(
            &state,
            &[
                "--provisioning",
                "--grant-entitlement",
                &members,
                "--grant-principal",
                &member.to_string(),
                "--grant-principal-type",
                "user",
            ],
        ))
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    for part in [
        "permission missing: grant of ",
        members.as_str(),
        &format!("user:{member}"),
        "Authorization_RequestDenied",
        "request id ",
    ] {
        assert!(stderr.contains(part), "{part} not in {stderr}");
    }
    assert!(!stderr.contains("request id (none sent)"), "{stderr}");

    let tenant_after = h.control().with_tenant(|t| format!("{t:?}"));
    assert!(tenant_after == tenant_before, "the tenant changed");
    let worker = h.worker(&state, &["--provisioning"]).await;
    assert_eq!(
        store_grants(&worker),
        grants_before,
        "the store's grants changed"
    );
}

fn cloud_group_of(t: &emulator::Tenant) -> Uuid {
    t.groups
        .values()
        .find(|g| g.deleted.is_none() && g.security_enabled && !g.on_premises_sync_enabled)
        .expect("a cloud security group")
        .id
}
