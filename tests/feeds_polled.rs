//! The polled Graph feeds: service principal owners and app role assignments (batched per object,
//! every nextLink followed), mailbox settings, directory role lists and the P2 feeds.

mod feeds_support;

use std::time::Duration;

use baton_azure_delta::azure::ApiError;
use baton_azure_delta::feeds::app_role_assignments::AppRoleAssignmentsFeed;
use baton_azure_delta::feeds::lists::{self, GroupEligibilityFeed};
use baton_azure_delta::feeds::mailbox::MailboxFeed;
use baton_azure_delta::feeds::sp_owners::ServicePrincipalOwnersFeed;
use baton_azure_delta::feeds::{Collection, FeedError, Hints, Position};
use feeds_support::{Harness, fixture};
use serde_json::json;

const HR_APP: &str = "c1d2e3f4-a5b6-4c7d-8e9f-a0b1c2d3e4f5";
const ADELE: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
const MEGAN: &str = "5bde3e51-d13b-4db1-9948-fe4b109d11a7";

fn owners_url(sp: &str) -> String {
    format!("/servicePrincipals/{sp}/owners?$select=id")
}

fn empty_list() -> serde_json::Value {
    json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects", "value": []})
}

#[tokio::test]
async fn owners_follow_every_next_link_and_each_sp_is_swept_when_complete() {
    let mut h = Harness::new();
    h.store.put(
        Collection::ServicePrincipal,
        HR_APP,
        json!({"servicePrincipalType": "Application"}),
    );
    h.store.put(
        Collection::ServicePrincipal,
        "other-sp",
        json!({"servicePrincipalType": "Application"}),
    );
    h.store.put(
        Collection::ServicePrincipalOwner,
        &format!("{HR_APP}/former-owner"),
        json!({}),
    );
    let page1 = fixture("sp_owners_page1");
    h.api
        .batch(&owners_url(HR_APP), 200, page1.clone())
        .batch(&owners_url("other-sp"), 200, empty_list())
        .graph(
            page1["@odata.nextLink"].as_str().unwrap(),
            fixture("sp_owners_page2"),
        );

    let round = h
        .round(
            &ServicePrincipalOwnersFeed,
            Position::Baseline,
            Hints::default(),
        )
        .await
        .unwrap();

    assert!(h.api.all_used(), "the owners' second page was read");
    assert_eq!((h.api.count("batch"), h.api.count("graph")), (1, 1));
    let mut owners = h
        .store
        .item_ids_of(Collection::ServicePrincipalOwner, HR_APP);
    owners.sort();
    let mut expected = vec![
        format!("{HR_APP}/{ADELE}"),
        format!("{HR_APP}/{MEGAN}"),
        format!("{HR_APP}/d4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f70"),
    ];
    expected.sort();
    assert_eq!(
        owners, expected,
        "three owners over two pages; the former owner swept"
    );
    // The SP with more pages is completed only on the page that ends its listing.
    assert_eq!(
        round.pages[0].completed,
        vec![(Collection::ServicePrincipalOwner, Some("other-sp/".into()))]
    );
    assert!(round.pages[1].completed.contains(&(
        Collection::ServicePrincipalOwner,
        Some(format!("{HR_APP}/"))
    )));
    assert!(
        round.pages[1]
            .completed
            .contains(&(Collection::ServicePrincipalOwner, None))
    );
}

#[tokio::test]
async fn owners_in_a_delta_round_are_read_only_for_hinted_sps_until_a_full_pass_is_due() {
    let mut h = Harness::new();
    for sp in ["a", "b", "c"] {
        h.store.put(Collection::ServicePrincipal, sp, json!({}));
        h.api.batch(&owners_url(sp), 200, empty_list());
    }
    let baseline = h
        .round(
            &ServicePrincipalOwnersFeed,
            Position::Baseline,
            Hints::default(),
        )
        .await
        .unwrap();
    h.api.clear_log();

    // A round that follows change signals only (the engine's changes round): polls not due.
    h.options.poll_every = std::time::Duration::from_secs(3600);
    let mut hints = Hints::default();
    hints.service_principals.insert("b".into());
    h.api.batch(&owners_url("b"), 200, empty_list());
    let round = h
        .round(
            &ServicePrincipalOwnersFeed,
            Position::Delta(baseline.cursor.clone()),
            hints,
        )
        .await
        .unwrap();
    assert_eq!(h.api.calls()[0].url, owners_url("b"));
    assert_eq!(
        round.completed(),
        vec![(Collection::ServicePrincipalOwner, Some("b/".into()))]
    );

    h.api.clear_log();
    let quiet = h
        .round(
            &ServicePrincipalOwnersFeed,
            Position::Delta(round.cursor),
            Hints::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        h.api.calls().len(),
        0,
        "no hints, no full pass due: no call"
    );

    h.clock.advance(h.options.full_pass_every);
    for sp in ["a", "b", "c"] {
        h.api.batch(&owners_url(sp), 200, empty_list());
    }
    let full = h
        .round(
            &ServicePrincipalOwnersFeed,
            Position::Delta(quiet.cursor),
            Hints::default(),
        )
        .await
        .unwrap();
    assert_eq!(h.api.count("batch"), 1);
    assert!(
        full.completed()
            .contains(&(Collection::ServicePrincipalOwner, None))
    );
}

#[tokio::test]
async fn more_than_twenty_sps_go_out_in_batches_of_twenty() {
    let mut h = Harness::new();
    for n in 0..45 {
        let sp = format!("sp-{n:02}");
        h.store.put(Collection::ServicePrincipal, &sp, json!({}));
        h.api.batch(&owners_url(&sp), 200, empty_list());
    }
    h.round(
        &ServicePrincipalOwnersFeed,
        Position::Baseline,
        Hints::default(),
    )
    .await
    .unwrap();
    let sizes: Vec<usize> = h
        .api
        .calls()
        .iter()
        .map(|c| c.url.split(" | ").count())
        .collect();
    assert_eq!(sizes, vec![20, 20, 5]);
}

#[tokio::test]
async fn a_request_throttled_inside_a_batch_is_retried_alone() {
    let mut h = Harness::new();
    for sp in ["a", "b"] {
        h.store.put(Collection::ServicePrincipal, sp, json!({}));
    }
    h.api
        .batch(&owners_url("a"), 200, empty_list())
        .batch_throttled(&owners_url("b"), Duration::from_millis(10))
        .batch(
            &owners_url("b"),
            200,
            json!({"value": [{"@odata.type": "#microsoft.graph.user", "id": ADELE}]}),
        );
    h.round(
        &ServicePrincipalOwnersFeed,
        Position::Baseline,
        Hints::default(),
    )
    .await
    .unwrap();
    let batches: Vec<String> = h.api.calls().into_iter().map(|c| c.url).collect();
    assert_eq!(
        batches,
        vec![
            format!("{} | {}", owners_url("a"), owners_url("b")),
            owners_url("b")
        ]
    );
    assert_eq!(
        h.store.ids(Collection::ServicePrincipalOwner),
        vec![format!("b/{ADELE}")]
    );
}

#[tokio::test]
async fn app_role_assignments_beyond_the_first_page_are_read_for_applications_only() {
    let mut h = Harness::new();
    h.store.put(
        Collection::ServicePrincipal,
        HR_APP,
        json!({"servicePrincipalType": "Application", "appRoles": []}),
    );
    h.store.put(
        Collection::ServicePrincipal,
        "managed-identity",
        json!({"servicePrincipalType": "ManagedIdentity"}),
    );
    h.store.put(
        Collection::AppRoleAssignment,
        &format!("{HR_APP}/revoked"),
        json!({}),
    );
    let page1 = fixture("app_role_assigned_to_page1");
    h.api
        .batch(
            &format!("/servicePrincipals/{HR_APP}/appRoleAssignedTo?$top=999"),
            200,
            page1.clone(),
        )
        .graph(
            page1["@odata.nextLink"].as_str().unwrap(),
            fixture("app_role_assigned_to_page2"),
        );

    let round = h
        .round(
            &AppRoleAssignmentsFeed,
            Position::Baseline,
            Hints::default(),
        )
        .await
        .unwrap();

    assert!(h.api.all_used());
    assert!(
        !h.api
            .calls()
            .iter()
            .any(|c| c.url.contains("managed-identity"))
    );
    let mut ids = h.store.item_ids_of(Collection::AppRoleAssignment, HR_APP);
    ids.sort();
    assert_eq!(
        ids,
        vec![
            format!("{HR_APP}/41W1zT6z1U-kJxf62svfp1HFE8pMZhxDun-ThPczmJE"),
            format!("{HR_APP}/pKvuAmx8pUadKIJ4kq3ZOeS_mDk3L0lPj4RFuUX58tc"),
        ]
    );
    let default_role = h
        .store
        .get(
            Collection::AppRoleAssignment,
            &format!("{HR_APP}/41W1zT6z1U-kJxf62svfp1HFE8pMZhxDun-ThPczmJE"),
        )
        .unwrap();
    assert_eq!(
        default_role["appRoleId"],
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(
        round.cursor,
        json!({"last_poll": h.clock.now().unix_timestamp()})
    );
}

#[tokio::test]
async fn an_sp_deleted_between_delta_and_poll_completes_empty() {
    let mut h = Harness::new();
    h.store.put(
        Collection::ServicePrincipal,
        HR_APP,
        json!({"servicePrincipalType": "Application"}),
    );
    h.store.put(
        Collection::AppRoleAssignment,
        &format!("{HR_APP}/old"),
        json!({}),
    );
    h.api.batch(&format!("/servicePrincipals/{HR_APP}/appRoleAssignedTo?$top=999"), 404,
        json!({"error": {"code": "Request_ResourceNotFound", "message": "Resource does not exist"}}));
    h.round(
        &AppRoleAssignmentsFeed,
        Position::Baseline,
        Hints::default(),
    )
    .await
    .unwrap();
    assert!(h.store.ids(Collection::AppRoleAssignment).is_empty());
}

#[tokio::test]
async fn a_forbidden_batch_answer_fails_the_page_with_the_url() {
    let mut h = Harness::new();
    h.store.put(Collection::ServicePrincipal, "a", json!({}));
    h.api.batch(&owners_url("a"), 403, json!({"error": {"code": "Authorization_RequestDenied", "message": "Insufficient privileges"}}));
    let error = h
        .round(
            &ServicePrincipalOwnersFeed,
            Position::Baseline,
            Hints::default(),
        )
        .await
        .err();
    match error {
        Some(FeedError::Api(ApiError::Forbidden { code, message })) => {
            assert_eq!(code, "Authorization_RequestDenied");
            assert!(message.contains("/servicePrincipals/a/owners"), "{message}");
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn a_user_without_mailbox_is_stored_as_no_mailbox_never_dropped() {
    let mut h = Harness::new();
    h.options.mailbox = true;
    h.store.put(Collection::User, ADELE, json!({}));
    h.store.put(Collection::User, MEGAN, json!({}));
    h.api
        .batch(
            &format!("/users/{ADELE}/mailboxSettings"),
            200,
            fixture("mailbox_settings"),
        )
        .batch(
            &format!("/users/{MEGAN}/mailboxSettings"),
            404,
            fixture("mailbox_not_enabled"),
        );

    let baseline = h
        .round(&MailboxFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();

    assert_eq!(
        h.store.get(Collection::Mailbox, ADELE),
        Some(json!({"userPurpose": "user"}))
    );
    assert_eq!(
        h.store.get(Collection::Mailbox, MEGAN),
        Some(json!({"noMailbox": true}))
    );
    assert_eq!(h.store.ids(Collection::User).len(), 2);

    // A delta round asks only for hinted users.
    h.api.clear_log();
    let mut hints = Hints::default();
    hints.mailbox_users.insert(MEGAN.into());
    h.api.batch(
        &format!("/users/{MEGAN}/mailboxSettings"),
        200,
        json!({"userPurpose": "shared"}),
    );
    h.round(&MailboxFeed, Position::Delta(baseline.cursor), hints)
        .await
        .unwrap();
    assert_eq!(h.api.calls().len(), 1);
    assert_eq!(
        h.store.get(Collection::Mailbox, MEGAN),
        Some(json!({"userPurpose": "shared"}))
    );
}

#[tokio::test]
async fn the_mailbox_feed_makes_no_call_when_the_option_is_off() {
    let mut h = Harness::new();
    h.store.put(Collection::User, ADELE, json!({}));
    let round = h
        .round(&MailboxFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert_eq!(h.api.calls().len(), 0);
    assert!(round.changes().is_empty());
}

#[tokio::test]
async fn directory_role_assignments_list_every_page_and_sweep() {
    let mut h = Harness::new();
    let url = "/v1.0/roleManagement/directory/roleAssignments?$select=id,principalId,roleDefinitionId,directoryScopeId,appScopeId";
    h.store.put(
        Collection::DirectoryRoleAssignment,
        "removed-assignment",
        json!({}),
    );
    h.api
        .graph(url, json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#roleManagement/directory/roleAssignments",
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/roleManagement/directory/roleAssignments?$skiptoken=x",
            "value": [{"id": "lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1", "principalId": ADELE, "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10", "directoryScopeId": "/"}]
        }))
        .graph("https://graph.microsoft.com/v1.0/roleManagement/directory/roleAssignments?$skiptoken=x", json!({
            "value": [{"id": "scoped-1", "principalId": MEGAN, "roleDefinitionId": "fe930be7-5e62-47db-91af-98c3a49a38b1", "directoryScopeId": "/administrativeUnits/5d107bba"}]
        }));
    let round = h
        .round(
            &lists::directory_role_assignments(),
            Position::Baseline,
            Hints::default(),
        )
        .await
        .unwrap();
    let mut ids = h.store.ids(Collection::DirectoryRoleAssignment);
    ids.sort();
    assert_eq!(
        ids,
        vec![
            "lAPpYvVpN0KRkAEhdxReEJC2sEqbR_9Hr48lds9SGHI-1".to_string(),
            "scoped-1".to_string()
        ]
    );
    assert_eq!(
        round.completed(),
        vec![(Collection::DirectoryRoleAssignment, None)]
    );
}

#[tokio::test]
async fn a_missing_p2_licence_is_reported_as_license_required() {
    let mut h = Harness::new();
    h.api.graph_err(
        "/v1.0/roleManagement/directory/roleEligibilitySchedules?$select=id,principalId,roleDefinitionId,directoryScopeId,appScopeId,memberType,scheduleInfo,status",
        ApiError::LicenseRequired { message: "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license.".into() },
    );
    let result = h
        .round(
            &lists::directory_role_eligibility(),
            Position::Baseline,
            Hints::default(),
        )
        .await;
    assert!(matches!(result, Err(FeedError::LicenseRequired(m)) if m.contains("P2")));

    // Inside a $batch the licence error is a 400 with code AadPremiumLicenseRequired.
    h.store
        .put(Collection::Group, "g1", json!({"groupTypes": []}));
    h.api.batch("/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=groupId%20eq%20'g1'", 400, fixture("license_required"));
    let result = h
        .round(&GroupEligibilityFeed, Position::Baseline, Hints::default())
        .await;
    assert!(matches!(result, Err(FeedError::LicenseRequired(_))));
}

#[tokio::test]
async fn skip_p2_makes_the_p2_feeds_call_nothing_and_sweep_nothing() {
    let mut h = Harness::new();
    h.options.skip_p2 = true;
    h.store.put(Collection::Group, "g1", json!({}));
    h.store.put(Collection::GroupEligibility, "kept", json!({}));
    let a = h
        .round(&GroupEligibilityFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    let b = h
        .round(
            &lists::directory_role_eligibility(),
            Position::Delta(json!(null)),
            Hints::default(),
        )
        .await
        .unwrap();
    assert_eq!(h.api.calls().len(), 0);
    assert!(a.completed().is_empty() && b.completed().is_empty());
}

#[tokio::test]
async fn pim_for_groups_is_read_per_group_except_synced_and_dynamic_groups() {
    let mut h = Harness::new();
    h.store.put(
        Collection::Group,
        "cloud",
        json!({"groupTypes": [], "onPremisesSyncEnabled": null}),
    );
    h.store.put(
        Collection::Group,
        "synced",
        json!({"groupTypes": [], "onPremisesSyncEnabled": true}),
    );
    h.store.put(
        Collection::Group,
        "dynamic",
        json!({"groupTypes": ["DynamicMembership"]}),
    );
    h.store
        .put(Collection::GroupEligibility, "expired-schedule", json!({}));
    h.api.batch("/identityGovernance/privilegedAccess/group/eligibilitySchedules?$filter=groupId%20eq%20'cloud'", 200, json!({
        "value": [{"id": "2b5ed229-4072-478d-9504-a047ebd4b07d_member_8b8d", "accessId": "member", "groupId": "cloud", "principalId": ADELE, "memberType": "direct", "status": "Provisioned"}]
    }));
    h.round(&GroupEligibilityFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert_eq!(h.api.calls().len(), 1);
    assert_eq!(
        h.store.ids(Collection::GroupEligibility),
        vec!["2b5ed229-4072-478d-9504-a047ebd4b07d_member_8b8d".to_string()]
    );
}

#[tokio::test]
async fn turning_the_mailbox_option_on_later_starts_with_a_full_pass() {
    let mut h = Harness::new();
    h.store.put(Collection::User, ADELE, json!({}));
    let off = h
        .round(&MailboxFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    h.options.mailbox = true;
    h.api.batch(
        &format!("/users/{ADELE}/mailboxSettings"),
        200,
        fixture("mailbox_settings"),
    );
    let on = h
        .round(&MailboxFeed, Position::Delta(off.cursor), Hints::default())
        .await
        .unwrap();
    assert_eq!(
        h.store.get(Collection::Mailbox, ADELE),
        Some(json!({"userPurpose": "user"}))
    );
    assert!(on.completed().contains(&(Collection::Mailbox, None)));
}

#[tokio::test]
async fn poll_every_spaces_out_the_feeds_without_a_change_signal() {
    let mut h = Harness::new();
    h.options.poll_every = Duration::from_secs(3600);
    h.store.put(
        Collection::ServicePrincipal,
        HR_APP,
        json!({"servicePrincipalType": "Application"}),
    );
    let url = format!("/servicePrincipals/{HR_APP}/appRoleAssignedTo?$top=999");
    h.api.batch(&url, 200, json!({"value": []}));
    let baseline = h
        .round(
            &AppRoleAssignmentsFeed,
            Position::Baseline,
            Hints::default(),
        )
        .await
        .unwrap();
    assert_eq!(h.api.calls().len(), 1);

    h.clock.advance(Duration::from_secs(600));
    let skipped = h
        .round(
            &AppRoleAssignmentsFeed,
            Position::Delta(baseline.cursor.clone()),
            Hints::default(),
        )
        .await
        .unwrap();
    assert_eq!(h.api.calls().len(), 1, "too soon: no call");
    assert_eq!(skipped.cursor, baseline.cursor);
    assert!(
        skipped.completed().is_empty(),
        "a skipped round sweeps nothing"
    );

    h.clock.advance(Duration::from_secs(3000));
    h.api.batch(&url, 200, json!({"value": []}));
    h.round(
        &AppRoleAssignmentsFeed,
        Position::Delta(skipped.cursor),
        Hints::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        h.api.calls().len(),
        2,
        "an hour after the last poll: polled again"
    );
}

#[tokio::test]
async fn a_full_pass_keeps_a_small_round_state_however_many_objects() {
    let mut h = Harness::new();
    for n in 0..2000 {
        let sp = format!("sp-{n:04}");
        h.store.put(Collection::ServicePrincipal, &sp, json!({}));
        h.api.batch(&owners_url(&sp), 200, empty_list());
    }
    let round = h
        .round(
            &ServicePrincipalOwnersFeed,
            Position::Baseline,
            Hints::default(),
        )
        .await
        .unwrap();
    assert!(h.api.all_used(), "every service principal asked once");
    assert_eq!(h.api.count("batch"), 100);
    let largest = round
        .pages
        .iter()
        .filter_map(|p| match &p.next {
            baton_azure_delta::feeds::Next::Continue(state) => Some(state.to_string().len()),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    assert!(largest < 300, "round state of {largest} bytes");
}
