//! The dependency rule: re-projecting a changed item and its `dependents` (evaluated before and
//! after the change, as the store does) must give exactly the records a full re-projection gives.

mod projection_support;

use baton_azure_delta::item::{Collection, ItemKey};
use baton_azure_delta::model::projection::{self, Origin, ProjectionOptions};
use projection_support::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn key(c: Collection, id: &str) -> ItemKey {
    ItemKey::new(c, id)
}

#[test]
fn a_user_change_reaches_its_grants_and_the_users_it_manages() {
    let items = tenant();
    let deps = projection::dependents(&key(Collection::User, BOB), &items);
    for expected in [
        Origin::Item(key(Collection::GroupMember, &format!("{ADG}/{BOB}"))),
        Origin::Item(key(Collection::GroupOwner, &format!("{ENG}/{BOB}"))),
        Origin::Item(key(Collection::GroupEligibility, "ge-1")),
        Origin::Item(key(Collection::DirectoryRoleAssignment, "dra-2")),
        Origin::Item(key(Collection::DirectoryRoleEligibility, "dre-1")),
        // Alice's profile carries Bob's email as her manager's.
        Origin::Item(key(Collection::User, ALICE)),
    ] {
        assert!(deps.contains(&expected), "{expected:?} not in {deps:?}");
    }
    assert!(!deps.contains(&Origin::Item(key(Collection::User, BOB))));
}

#[test]
fn a_group_change_reaches_its_member_grants_and_its_own() {
    let deps = projection::dependents(&key(Collection::Group, ENG), &tenant());
    for expected in [
        Origin::Item(key(Collection::GroupMember, &format!("{ENG}/{ALICE}"))),
        Origin::Item(key(Collection::GroupOwner, &format!("{ENG}/{BOB}"))),
        Origin::Item(key(Collection::AppRoleAssignment, &format!("{APP}/asg-1"))),
    ] {
        assert!(deps.contains(&expected), "{expected:?} not in {deps:?}");
    }
}

#[test]
fn a_role_definition_change_reaches_the_scopes_that_show_its_name() {
    let deps = projection::dependents(
        &key(Collection::RoleDefinition, &format!("{SUB}:{READER}")),
        &tenant(),
    );
    for expected in [
        Origin::Role(READER.to_string()),
        Origin::Scope(format!("/subscriptions/{SUB}")),
        Origin::Scope(format!("/subscriptions/{SUB}/resourcegroups/rg-web")),
        Origin::Scope("/providers/microsoft.management/managementgroups/prod".to_string()),
    ] {
        assert!(deps.contains(&expected), "{expected:?} not in {deps:?}");
    }
}

#[test]
fn references_are_lower_case_targets() {
    let (id, value) = arm_assignment(
        KEY_VAULT_SCOPE,
        "ra-x",
        READER,
        &ALICE.to_uppercase(),
        "User",
    );
    let refs = projection::references(&key(Collection::RoleAssignment, &id), &value);
    assert_eq!(
        refs,
        vec![
            KEY_VAULT_SCOPE.to_ascii_lowercase(),
            ALICE.to_string(),
            READER.to_string(),
        ]
    );
    let member = projection::references(
        &key(Collection::GroupMember, &format!("{ENG}/{ALICE}")),
        &member("user"),
    );
    assert_eq!(member, vec![ALICE.to_string()]);
}

/// Every change the random walks pick from: removing or restoring any fixture item, and
/// variants that flip what decides emission, types, names, parents and spellings.
fn change_pool() -> Vec<(ItemKey, Option<Value>)> {
    let base = tenant();
    let mut pool: Vec<(ItemKey, Option<Value>)> = Vec::new();
    for (k, v) in base.entries() {
        pool.push((k.clone(), None));
        pool.push((k.clone(), Some(v.clone())));
    }
    let mut variant = |c: Collection, id: &str, f: &dyn Fn(&mut Value)| {
        let k = key(c, id);
        let mut v = base.get(&k).cloned().unwrap_or_else(|| json!({}));
        f(&mut v);
        pool.push((k, Some(v)));
    };
    variant(Collection::User, BOB, &|v| {
        v["mail"] = json!("robert@contoso.com")
    });
    variant(Collection::User, ALICE, &|v| {
        v["manager@delta"] = json!([{"id": BOB, "@removed": {"reason": "deleted"}}])
    });
    variant(Collection::User, GUEST, &|v| {
        v["manager@delta"] = json!([{"@odata.type": "#microsoft.graph.user", "id": ALICE}])
    });
    variant(Collection::Mailbox, ROOM, &|v| {
        *v = json!({"userPurpose": "user"})
    });
    variant(Collection::Mailbox, ALICE, &|v| {
        *v = json!({"userPurpose": "shared"})
    });
    variant(Collection::Group, ADG, &|v| {
        v["onPremisesSyncEnabled"] = json!(false)
    });
    variant(Collection::Group, ENG, &|v| {
        v["onPremisesSyncEnabled"] = json!(true)
    });
    variant(Collection::ServicePrincipal, MI, &|v| {
        v["servicePrincipalType"] = json!("Application")
    });
    variant(Collection::ServicePrincipal, APP, &|v| {
        v["appRoles"] = json!([])
    });
    variant(Collection::ServicePrincipal, LEGACY, &|v| {
        v["servicePrincipalType"] = json!("ManagedIdentity")
    });
    variant(Collection::GroupMember, &format!("{ENG}/{GHOST}"), &|v| {
        *v = member("user")
    });
    variant(Collection::User, GHOST, &|v| {
        *v = user(GHOST, "Ghost", "ghost@contoso.com", None)
    });
    variant(Collection::GroupOwner, &format!("{ADG}/{MI}"), &|v| {
        *v = member("servicePrincipal")
    });
    variant(
        Collection::GroupEligibility,
        "ge-0",
        &|v| *v = json!({"id": "ge-0", "groupId": ENG, "principalId": BOB, "accessId": "member"}),
    );
    variant(
        Collection::GroupEligibility,
        "ge-2",
        &|v| *v = json!({"id": "ge-2", "groupId": ADG, "principalId": ALICE, "accessId": "owner"}),
    );
    variant(
        Collection::AppRoleAssignment,
        &format!("{APP}/asg-0"),
        &|v| *v = json!({"appRoleId": APP_ROLE, "principalId": ENG, "principalType": "Group", "resourceId": APP}),
    );
    variant(
        Collection::DirectoryRoleAssignment,
        "dra-0",
        &|v| {
            *v =
                json!({"roleDefinitionId": USER_ADMIN, "principalId": BOB, "directoryScopeId": "/"})
        },
    );
    variant(
        Collection::DirectoryRoleAssignment,
        "dra-9",
        &|v| *v = json!({"roleDefinitionId": GLOBAL_ADMIN, "principalId": MI, "directoryScopeId": "/administrativeUnits/au-9"}),
    );
    variant(Collection::DirectoryRoleDefinition, USER_ADMIN, &|v| {
        v["displayName"] = json!("User Admin")
    });
    variant(Collection::Organization, TENANT, &|v| {
        v["displayName"] = json!("Contoso Ltd")
    });
    variant(Collection::ManagementGroup, "Prod", &|v| {
        v["properties"]["children"] = json!([])
    });
    variant(Collection::ManagementGroup, "Prod", &|v| {
        v["properties"]["details"]["parent"] = Value::Null
    });
    variant(Collection::ManagementGroup, TENANT, &|v| {
        v["properties"]["children"] = json!([{"type": "/subscriptions", "name": SUB}])
    });
    variant(Collection::Subscription, SUB, &|v| {
        v["displayName"] = json!("Renamed")
    });
    variant(
        Collection::RoleDefinition,
        &format!("{SUB}:{READER}"),
        &|v| v["properties"]["roleName"] = json!("Reader v2"),
    );
    let mut arm =
        |c: Collection, scope: &str, name: &str, role: &str, principal: &str, kind: &str| {
            let (id, value) = arm_assignment(scope, name, role, principal, kind);
            let id = if c == Collection::RoleEligibility {
                id.replace("roleassignments", "roleeligibilityscheduleinstances")
            } else {
                id
            };
            pool.push((key(c, &id), Some(value)));
        };
    // A first assignment at the vault with another spelling renames the azure_resource.
    arm(
        Collection::RoleAssignment,
        &KEY_VAULT_SCOPE
            .replace("RG-Web", "rg-web")
            .replace("kv-prod", "KV-Prod"),
        "00-first",
        READER,
        ALICE,
        "User",
    );
    arm(
        Collection::RoleAssignment,
        &format!("/subscriptions/{SUB}/resourceGroups/RG-Web/providers/Microsoft.Web/sites/shop"),
        "ra-site",
        CONTRIBUTOR,
        ENG,
        "Group",
    );
    arm(
        Collection::RoleEligibility,
        &format!("/subscriptions/{SUB}"),
        "re-sub-bob-2",
        OWNER,
        BOB,
        "User",
    );
    arm(
        Collection::RoleEligibility,
        "/providers/Microsoft.Management/managementGroups/Prod",
        "re-mg-mi",
        CONTRIBUTOR,
        MI,
        "ServicePrincipal",
    );
    arm(
        Collection::RoleAssignment,
        &format!(
            "/subscriptions/{SUB}/resourceGroups/RG-Web/providers/Microsoft.Storage/storageAccounts/stweb"
        ),
        "ra-st",
        OWNER,
        APP,
        "ServicePrincipal",
    );
    pool
}

fn check_walk(options: ProjectionOptions, steps: &[usize]) -> Result<(), TestCaseError> {
    let pool = change_pool();
    let mut incremental = Incremental::new(tenant(), options.clone());
    prop_assert_eq!(
        incremental.current(),
        encoded(&snapshot(&incremental.items, &options))
    );
    for (n, &i) in steps.iter().enumerate() {
        let (k, v) = pool[i % pool.len()].clone();
        incremental.apply(k.clone(), v.clone());
        prop_assert_eq!(
            streamed(&incremental.items, &options),
            origin_by_origin(&incremental.items, &options),
            "project_all after step {}",
            n
        );
        let full = encoded(&snapshot(&incremental.items, &options));
        let now = incremental.current();
        if now != full {
            let stale: Vec<_> = now
                .iter()
                .filter(|(k, v)| full.get(*k) != Some(*v))
                .map(|(k, _)| k)
                .collect();
            let missing: Vec<_> = full.keys().filter(|k| !now.contains_key(*k)).collect();
            return Err(TestCaseError::fail(format!(
                "step {n}: {k:?} -> {v:?}\nstale or wrong: {stale:?}\nmissing: {missing:?}"
            )));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_full_projection(steps in proptest::collection::vec(0usize..10_000, 1..14)) {
        check_walk(ProjectionOptions::default(), &steps)?;
    }

    #[test]
    fn incremental_equals_full_projection_with_options(
        steps in proptest::collection::vec(0usize..10_000, 1..14),
        flags in proptest::collection::vec(any::<bool>(), 6),
    ) {
        let options = ProjectionOptions {
            mailbox_settings: flags[0],
            skip_ad_groups: flags[1],
            skip_unused_roles: flags[2],
            skip_storage_containers: flags[3],
            skip_p2: flags[4],
            external_principals: flags[5],
            ..ProjectionOptions::default()
        };
        check_walk(options, &steps)?;
    }
}

#[test]
fn every_single_change_from_the_fixture() {
    for i in 0..change_pool().len() {
        check_walk(ProjectionOptions::default(), &[i]).unwrap();
    }
}

#[test]
fn unchanged_or_cosmetic_changes_do_not_reach_dependents() {
    let items = tenant();
    let eng = items.get(&key(Collection::Group, ENG)).cloned().unwrap();
    let mut renamed = eng.clone();
    renamed["description"] = json!("new");
    let k = key(Collection::Group, ENG);
    assert!(!projection::affects_dependents(&k, Some(&eng), Some(&eng)));
    assert!(!projection::affects_dependents(
        &k,
        Some(&eng),
        Some(&renamed)
    ));
    let mut synced = eng.clone();
    synced["onPremisesSyncEnabled"] = json!(true);
    assert!(projection::affects_dependents(
        &k,
        Some(&eng),
        Some(&synced)
    ));
    assert!(projection::affects_dependents(&k, Some(&eng), None));
    assert!(projection::affects_dependents(&k, None, Some(&eng)));
    assert!(!projection::affects_dependents(&k, None, None));
}

#[test]
fn a_duplicate_eligibility_takes_over_when_the_first_goes() {
    let mut incremental = Incremental::new(tenant(), ProjectionOptions::default());
    let (id, mut value) = arm_assignment(
        &format!("/subscriptions/{SUB}"),
        "re-sub-bob-2",
        OWNER,
        BOB,
        "User",
    );
    value["type"] = json!("Microsoft.Authorization/roleEligibilityScheduleInstances");
    let second = id.replace("roleassignments", "roleeligibilityscheduleinstances");
    let first = second.replace("re-sub-bob-2", "re-sub-bob");
    incremental.apply(key(Collection::RoleEligibility, &second), Some(value));
    incremental.apply(key(Collection::RoleEligibility, &first), None);
    let grant_id = format!("subscription:{SUB}:eligible:{OWNER}:user:{BOB}");
    assert!(
        incremental
            .current()
            .contains_key(&(baton_azure_delta::model::Table::Grants, grant_id))
    );
    assert_eq!(
        incremental.current(),
        encoded(&snapshot(&incremental.items, &incremental.options))
    );
}

/// Every ordered pair of changes from the pool, with no option and with most options set (about
/// 60 000 walks): slow, run on demand with
/// `cargo test --test projection_dependents -- --ignored`.
#[test]
#[ignore]
fn every_pair_of_changes() {
    let pool = change_pool();
    let every_flag = ProjectionOptions {
        mailbox_settings: true,
        skip_ad_groups: true,
        skip_unused_roles: true,
        skip_storage_containers: true,
        external_principals: true,
        ..ProjectionOptions::default()
    };
    let mut failures = Vec::new();
    for options in [ProjectionOptions::default(), every_flag] {
        for i in 0..pool.len() {
            for j in 0..pool.len() {
                if let Err(e) = check_walk(options.clone(), &[i, j]) {
                    failures.push(e.to_string());
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing pairs, first: {}",
        failures.len(),
        failures[0]
    );
}
