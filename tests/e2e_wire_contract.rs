//! Issue #14: cases where the worker's requests and Microsoft's documented answers disagreed.
//! Each test switches on the emulator behaviour that follows the cited document
//! (`emulator::wire::WireBehaviours`) and runs real rounds against it.

mod support;

use baton_azure_delta::model::Record;
use baton_azure_delta::sync::engine::RoundKind;
use emulator::tenant::{ArmPrincipalType, RoleDefinition, RoleType};
use emulator::{TenantChange, TenantSpec, WireBehaviours};
use std::time::Duration;

use support::*;

fn assert_matches_expected(context: &str, h: &Harness, worker: &Worker) {
    let expected = h.control().expected_graph(&expected_options(&[]));
    assert_no_differences(
        context,
        &differences_from_expected(&worker.decoded(), &expected),
    );
}

async fn clean_round(worker: &Worker, kind: RoundKind) {
    let report = worker.round(kind).await;
    assert!(
        report.failed.is_empty(),
        "round failed: {:?}",
        report.failed
    );
}

/// Item 12. Management Groups - Get (azure-rest-api-specs, managementgroups
/// `management.json`): "Cache-Control: Indicates whether the request should utilize any caches.
/// Populate the header with 'no-cache' value to bypass existing caches." A tree read from a
/// cache keeps a moved subscription under its old parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_subscription_is_under_its_new_parent_although_arm_caches_the_tree() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.control();
    control.set_wire(WireBehaviours {
        management_group_cache: true,
        ..WireBehaviours::default()
    });
    let worker = h.worker(&state_path(&h, "worker"), &[]).await;
    clean_round(&worker, RoundKind::Poll).await;
    assert_matches_expected("baseline", &h, &worker);

    let (subscription, target) = control.with_tenant(|t| {
        let (id, subscription) = t.subscriptions.iter().next().expect("a subscription");
        let target = t
            .management_groups
            .keys()
            .find(|name| **name != subscription.management_group)
            .expect("another management group")
            .clone();
        (*id, target)
    });
    control
        .apply(TenantChange::MoveSubscription {
            id: subscription,
            management_group: target,
        })
        .expect("subscription moved");
    clean_round(&worker, RoundKind::Poll).await;
    assert_matches_expected("after the move", &h, &worker);
}

/// Item 9. PIM for Groups (privilegedaccessgroup-list-eligibilityschedules.md and its sibling
/// pages, microsoft-graph-docs-contrib) includes `global-only.md`: not in national clouds. The
/// worker in a national cloud (`Endpoints::is_national_cloud`, unit-tested in
/// `config::endpoints`) leaves that feed off instead of failing it every round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pim_for_groups_is_not_read_in_a_national_cloud() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.control();
    control.set_wire(WireBehaviours {
        national_cloud: true,
        ..WireBehaviours::default()
    });
    let worker = h
        .worker_adjusted(&state_path(&h, "worker"), &[], |options| {
            options.pim_for_groups = false
        })
        .await;
    for kind in [RoundKind::Poll, RoundKind::Poll] {
        clean_round(&worker, kind).await;
    }
    let counts = control.request_counts();
    assert!(
        !counts
            .by_endpoint
            .keys()
            .any(|endpoint| endpoint.contains("privilegedAccess")),
        "no PIM for Groups request in a national cloud: {:?}",
        counts.by_endpoint
    );
    let eligibility = worker
        .store
        .item_ids(baton_azure_delta::feeds::Collection::GroupEligibility, "")
        .expect("store read");
    assert!(eligibility.is_empty());
}

/// Item 10. servicePrincipal-delta.md (microsoft-graph-docs-contrib) documents neither
/// `$deltatoken=latest` nor `Prefer: return=minimal` (delta-query-overview documents them for
/// users and groups). With the emulator answering only what is documented, the feed still
/// baselines and follows changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_principals_are_followed_the_way_their_delta_page_documents() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.control();
    control.set_wire(WireBehaviours {
        service_principal_delta_as_documented: true,
        ..WireBehaviours::default()
    });
    let worker = h.worker(&state_path(&h, "worker"), &[]).await;
    clean_round(&worker, RoundKind::Poll).await;
    assert_matches_expected("baseline", &h, &worker);
    control.random_churn(14, 0.2);
    clean_round(&worker, RoundKind::Poll).await;
    assert_matches_expected("after churn", &h, &worker);
}

/// Item 5. Subscriptions - List (subscriptions.json 2022-12-01) returns every subscription the
/// caller reaches, with its home `tenantId` and the `managedByTenants` that manage it: Azure
/// Lighthouse delegations of other tenants are in it. Only this tenant's are kept, and the
/// round's cursor notes how many were left out (shown by `status`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_of_other_tenants_are_left_out_and_counted() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.control();
    control.set_wire(WireBehaviours {
        foreign_subscriptions: 2,
        ..WireBehaviours::default()
    });
    let worker = h.worker(&state_path(&h, "worker"), &[]).await;
    clean_round(&worker, RoundKind::Poll).await;
    assert_matches_expected("baseline", &h, &worker);
    let ours = control.with_tenant(|t| t.subscriptions.len());
    let stored = worker
        .store
        .item_ids(baton_azure_delta::feeds::Collection::Subscription, "")
        .expect("store read");
    assert_eq!(stored.len(), ours);
    let cursor = worker
        .store
        .cursor("arm_tenant")
        .expect("store read")
        .and_then(|state| state.cursor)
        .expect("arm_tenant has a cursor");
    assert!(
        cursor
            .to_string()
            .contains("2 subscription(s) of other tenants"),
        "{cursor}"
    );
}

/// Item 6. RoleEligibilityScheduleInstances carry `memberType` (Direct, Group, Inherited): a
/// `Group` row is a group's eligibility expanded to one member, not that member's own grant.
/// With the emulator listing such rows, the graph still holds the group's grant only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eligibility_rows_of_group_members_are_not_their_own_grants() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.control();
    control.set_wire(WireBehaviours {
        group_member_eligibility_rows: true,
        ..WireBehaviours::default()
    });
    let (group, subscription, role) = control.with_tenant(|t| {
        let group = t
            .groups
            .values()
            .find(|g| g.members.iter().any(|m| t.users.contains_key(m)))
            .expect("a group with user members")
            .id;
        let subscription = *t.subscriptions.keys().next().expect("a subscription");
        let role = *t.role_definitions.keys().next().expect("a role definition");
        (group, subscription, role)
    });
    control
        .apply(TenantChange::AddRoleEligibility {
            name: uuid::Uuid::new_v4(),
            scope: format!("/subscriptions/{subscription}"),
            role_definition: role,
            principal: group,
            principal_type: ArmPrincipalType::Group,
        })
        .expect("eligibility added");
    let worker = h.worker(&state_path(&h, "worker"), &[]).await;
    clean_round(&worker, RoundKind::Poll).await;
    assert_matches_expected("baseline", &h, &worker);
}

/// Item 1. Graph refuses an expired directory `$skiptoken` with `400
/// Directory_ExpiredPageToken` (seen on large tenants mid-pass: microsoftgraph/msgraph-sdk-dotnet
/// issue 2254). A users baseline stopped after its first page, resumed once that link is dead,
/// restarts the feed's round instead of failing on the same page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_page_token_restarts_the_interrupted_round() {
    // More users than one page of the users list (100 with the manager expanded).
    let h = Harness::start(TenantSpec::with_users(250)).await;
    let control = h.control();
    let state = state_path(&h, "worker");
    {
        let worker = h.worker(&state, &[]).await;
        let engine = std::sync::Arc::downgrade(&worker.engine);
        worker.engine.observe_pages(Box::new(move |page| {
            if page.feed == "users"
                && page.changes > 0
                && let Some(engine) = engine.upgrade()
            {
                engine.request_stop();
            }
        }));
        let stopped = worker.round(RoundKind::Poll).await;
        assert!(stopped.failed.is_empty(), "{:?}", stopped.failed);
    }
    // Page tokens now live an hour, and the stored one is two hours old.
    control.set_wire(WireBehaviours {
        page_token_max_age: Some(Duration::from_secs(3600)),
        ..WireBehaviours::default()
    });
    control.advance_clock(Duration::from_secs(2 * 3600));
    let worker = h.worker(&state, &[]).await;
    let resumed = worker.round(RoundKind::Poll).await;
    assert!(resumed.failed.is_empty(), "{:?}", resumed.failed);
    assert!(resumed.expired.contains(&"users".to_string()));
    assert_matches_expected("after the restarted round", &h, &worker);
}

/// Item 2. Without Management Group Reader the tree answers 403 (Management Groups - Get), and
/// so do the lists at management group and root scope. What was read before stays: losing a
/// permission is no evidence that a group or an assignment is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_management_group_tree_removes_nothing() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.control();
    let worker = h.worker(&state_path(&h, "worker"), &[]).await;
    clean_round(&worker, RoundKind::Poll).await;
    let before = worker.records();
    let at_groups = before
        .keys()
        .filter(|(_, id)| id.contains("management_group:"))
        .count();
    assert!(
        at_groups > 0,
        "the tenant has management groups and grants on them"
    );

    control.set_wire(WireBehaviours {
        management_groups_forbidden: true,
        ..WireBehaviours::default()
    });
    let report = worker.round(RoundKind::Poll).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(worker.records(), before, "nothing read before is removed");
}

/// Item 8. Role Definitions - List (azure-rest-api-specs, authorization RoleDefinitionsCalls):
/// "Use atScopeAndBelow filter to search below the given scope as well"; without it a
/// subscription's list holds only roles assignable at it or above. A custom role assignable only
/// at a resource group, and assigned there, still has its name and its `role` resource.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_role_assignable_only_below_a_subscription_keeps_its_name() {
    let h = Harness::start(TenantSpec::small()).await;
    let control = h.control();
    let (subscription, resource_group, user) = control.with_tenant(|t| {
        let rg = t.resource_groups.values().next().expect("a resource group");
        let user = t.live_users().next().expect("a user").id;
        (rg.subscription, rg.name.clone(), user)
    });
    let scope = format!("/subscriptions/{subscription}/resourceGroups/{resource_group}");
    let role = uuid::Uuid::new_v4();
    control
        .apply(TenantChange::CreateRoleDefinition(Box::new(
            RoleDefinition {
                id: role,
                role_name: "Contoso Group Operator".into(),
                description: "Custom role of one resource group.".into(),
                role_type: RoleType::Custom,
                actions: vec!["*/read".into()],
                data_actions: Vec::new(),
                assignable_scopes: vec![scope.clone()],
            },
        )))
        .expect("role created");
    control
        .apply(TenantChange::CreateRoleAssignment {
            name: uuid::Uuid::new_v4(),
            scope,
            role_definition: role,
            principal: user,
            principal_type: ArmPrincipalType::User,
        })
        .expect("role assigned");
    let worker = h.worker(&state_path(&h, "worker"), &[]).await;
    clean_round(&worker, RoundKind::Poll).await;
    assert_matches_expected("baseline", &h, &worker);
    let names: Vec<String> = worker
        .decoded()
        .into_iter()
        .filter_map(|record| match record {
            Record::Resource(resource) if record_id(&resource) == format!("role:{role}") => {
                Some(resource.display_name)
            }
            Record::Entitlement(entitlement) if entitlement.slug == format!("role:{role}") => {
                Some(entitlement.display_name)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        vec!["Contoso Group Operator".to_string(); 2],
        "the role resource and the resource group's entitlement are named"
    );
}

fn record_id(resource: &baton_azure_delta::model::proto::Resource) -> String {
    resource
        .id
        .as_ref()
        .map(|id| format!("{}:{}", id.resource_type, id.resource))
        .unwrap_or_default()
}
