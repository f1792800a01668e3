//! The Graph delta feeds (users, groups, service principals) driven through scripted pages shaped
//! like Microsoft's documented examples (fixtures/feeds/).

mod feeds_support;

use baton_azure_delta::azure::ApiError;
use baton_azure_delta::feeds::groups::GroupsFeed;
use baton_azure_delta::feeds::service_principals::ServicePrincipalsFeed;
use baton_azure_delta::feeds::users::UsersFeed;
use baton_azure_delta::feeds::{Change, Collection, FeedError, Hints, ItemKey, Position};
use feeds_support::{Harness, fixture};
use serde_json::json;

const USER_FIELDS: &str = "id,displayName,givenName,surname,mail,userPrincipalName,accountEnabled,employeeId,userType,jobTitle,department,createdDateTime";
const ADELE: &str = "87d349ed-44d7-43e1-9a83-5f2406dee5bd";
const MEGAN: &str = "5bde3e51-d13b-4db1-9948-fe4b109d11a7";
const GUEST: &str = "e3d0513b-449e-4198-ba6f-bd97ae7cae85";
const NEW_HIRE: &str = "0f3c1a9e-5a51-4a8e-a1f0-0c9f2f6a7b11";
const ALL_COMPANY: &str = "02ef8ca4-7c6d-4ea4-b1d6-1b3d8c6d6c55";
const SALES: &str = "9a1b7c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d";

fn users_delta_url() -> String {
    format!("/v1.0/users/delta?$select={USER_FIELDS},manager")
}

fn users_list_url() -> String {
    format!("/v1.0/users?$select={USER_FIELDS}&$expand=manager($select=id)&$top=100")
}

/// Scripts a users baseline: latest deltaLink, then two list pages.
fn script_users_baseline(h: &Harness) -> String {
    let latest = fixture("users_delta_latest");
    let page1 = fixture("users_list_page1");
    h.api
        .graph(
            &format!("{}&$deltatoken=latest", users_delta_url()),
            latest.clone(),
        )
        .graph(&users_list_url(), page1.clone())
        .graph(
            page1["@odata.nextLink"].as_str().unwrap(),
            fixture("users_list_page2"),
        );
    latest["@odata.deltaLink"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn users_baseline_takes_the_latest_delta_link_then_lists_every_page_and_sweeps() {
    let mut h = Harness::new();
    h.store.put(
        Collection::User,
        "gone-since-last-baseline",
        json!({"id": "gone"}),
    );
    let delta_link = script_users_baseline(&h);

    let round = h
        .round(&UsersFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();

    assert!(h.api.all_used());
    let urls: Vec<String> = h.api.calls().into_iter().map(|c| c.url).collect();
    assert_eq!(urls.len(), 3, "{urls:?}");
    assert!(urls[0].ends_with("$deltatoken=latest"));
    assert_eq!(round.cursor, json!({"delta_link": delta_link}));
    assert_eq!(round.completed(), vec![(Collection::User, None)]);
    // Only the last page completes the scope: a crash mid-list must not sweep.
    assert!(
        round.pages[..round.pages.len() - 1]
            .iter()
            .all(|p| p.completed.is_empty())
    );
    let mut ids = h.store.ids(Collection::User);
    ids.sort();
    let mut expected = vec![ADELE.to_string(), MEGAN.to_string(), GUEST.to_string()];
    expected.sort();
    assert_eq!(ids, expected, "the stale user is swept");
    assert_eq!(
        h.store.get(Collection::User, ADELE).unwrap()["manager"],
        json!({"id": MEGAN})
    );
    assert_eq!(
        h.store.get(Collection::User, MEGAN).unwrap()["manager"],
        json!(null)
    );
    assert!(
        round
            .changes()
            .iter()
            .all(|c| matches!(c, Change::Upsert { .. }))
    );
}

#[tokio::test]
async fn users_delta_round_merges_minimal_items_and_removes_soft_and_hard_deleted_users() {
    let mut h = Harness::new();
    h.options.mailbox = true;
    let delta_link = script_users_baseline(&h);
    let baseline = h
        .round(&UsersFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    h.api.clear_log();
    h.store
        .put(Collection::Mailbox, MEGAN, json!({"userPurpose": "user"}));
    let round_page = fixture("users_delta_round");
    h.api.graph(&delta_link, round_page.clone());

    let round = h
        .round(
            &UsersFeed,
            Position::Delta(baseline.cursor),
            Hints::default(),
        )
        .await
        .unwrap();

    let calls = h.api.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].headers,
        vec![("Prefer".to_string(), "return=minimal".to_string())]
    );
    assert_eq!(
        round.cursor,
        json!({"delta_link": round_page["@odata.deltaLink"]})
    );
    assert!(round.completed().is_empty(), "a delta round sweeps nothing");
    // return=minimal: merged, so unchanged properties stay; the manager moved to the guest.
    let adele = h.store.get(Collection::User, ADELE).unwrap();
    assert_eq!(adele["jobTitle"], "Store Manager");
    assert_eq!(adele["displayName"], "Adele Vance");
    assert_eq!(adele["manager"], json!({"id": GUEST}));
    // reason "changed" (soft delete) and "deleted" (hard) both make the user vanish.
    assert_eq!(h.store.get(Collection::User, MEGAN), None);
    assert_eq!(h.store.get(Collection::User, GUEST), None);
    assert_eq!(
        h.store.get(Collection::Mailbox, MEGAN),
        None,
        "a removed user's mailbox item goes too"
    );
    assert_eq!(
        h.store.get(Collection::User, NEW_HIRE).unwrap()["mail"],
        "newhire@contoso.com"
    );
    // The duplicate entry for Adele is merged twice, harmlessly.
    let merges = round
        .changes()
        .iter()
        .filter(|c| matches!(c, Change::Merge { key, .. } if key.id == ADELE))
        .count();
    assert_eq!(merges, 2);
    // Mailbox hints: the new user (new, with mail); not Adele (mail unchanged).
    assert_eq!(
        round
            .hints
            .mailbox_users
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        vec![NEW_HIRE.to_string()]
    );
}

#[tokio::test]
async fn an_expired_delta_link_asks_for_a_rebaseline() {
    let mut h = Harness::new();
    let cursor =
        json!({"delta_link": "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=old"});
    h.api.graph_err(
        "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=old",
        ApiError::DeltaTokenExpired { location: None },
    );
    let result = h
        .round(&UsersFeed, Position::Delta(cursor), Hints::default())
        .await;
    assert_eq!(result.err(), Some(FeedError::DeltaTokenExpired));

    let gone =
        json!({"delta_link": "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=gone"});
    h.api.graph_err(
        "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=gone",
        ApiError::DeltaTokenExpired {
            location: Some("https://graph.microsoft.com/v1.0/users/delta?$deltatoken=".into()),
        },
    );
    let result = h
        .round(&UsersFeed, Position::Delta(gone), Hints::default())
        .await;
    assert_eq!(result.err(), Some(FeedError::DeltaTokenExpired));
}

#[tokio::test]
async fn a_corrupt_cursor_is_a_clear_error_naming_the_feed() {
    let mut h = Harness::new();
    let result = h
        .round(
            &UsersFeed,
            Position::Delta(json!({"nonsense": 1})),
            Hints::default(),
        )
        .await;
    match result.err() {
        Some(FeedError::Malformed(message)) => assert!(message.contains("users"), "{message}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
}

fn groups_delta_url() -> String {
    "/v1.0/groups/delta?$select=id,displayName,description,mail,mailEnabled,securityEnabled,groupTypes,onPremisesSyncEnabled,isAssignableToRole,createdDateTime,securityIdentifier,members,owners".into()
}

async fn groups_baseline(h: &mut Harness) -> serde_json::Value {
    let page1 = fixture("groups_delta_page1");
    h.api.graph(&groups_delta_url(), page1.clone()).graph(
        page1["@odata.nextLink"].as_str().unwrap(),
        fixture("groups_delta_page2"),
    );
    h.round(&GroupsFeed, Position::Baseline, Hints::default())
        .await
        .unwrap()
        .cursor
}

#[tokio::test]
async fn a_big_group_split_across_pages_keeps_every_slice_of_members() {
    let mut h = Harness::new();
    h.store.put(
        Collection::GroupMember,
        &format!("{ALL_COMPANY}/left-long-ago"),
        json!({}),
    );
    let cursor = groups_baseline(&mut h).await;

    assert!(h.api.all_used());
    assert!(
        h.api.calls().iter().all(|c| c.headers.is_empty()),
        "the initial round asks for full objects"
    );
    assert_eq!(
        cursor,
        json!({"delta_link": fixture("groups_delta_page2")["@odata.deltaLink"]})
    );
    let mut members = h.store.item_ids_of(Collection::GroupMember, ALL_COMPANY);
    members.sort();
    let mut expected = vec![
        format!("{ALL_COMPANY}/{ADELE}"),
        format!("{ALL_COMPANY}/{MEGAN}"),
        format!("{ALL_COMPANY}/{SALES}"),
        format!("{ALL_COMPANY}/c1d2e3f4-a5b6-4c7d-8e9f-a0b1c2d3e4f5"),
    ];
    expected.sort();
    assert_eq!(
        members, expected,
        "both slices kept; the stale member swept by the baseline"
    );
    assert_eq!(
        h.store
            .get(Collection::GroupMember, &format!("{ALL_COMPANY}/{SALES}")),
        Some(json!({"@odata.type": "#microsoft.graph.group"}))
    );
    assert_eq!(
        h.store.ids(Collection::GroupOwner),
        vec![format!("{ALL_COMPANY}/{MEGAN}")]
    );
    let group = h.store.get(Collection::Group, ALL_COMPANY).unwrap();
    assert!(group.get("members@delta").is_none() && group["displayName"] == "All Company");
}

#[tokio::test]
async fn removed_members_and_removed_groups_leave_the_store() {
    let mut h = Harness::new();
    let cursor = groups_baseline(&mut h).await;
    h.store.put(
        Collection::GroupOwner,
        &format!("{SALES}/{ADELE}"),
        json!({}),
    );
    h.api.clear_log();
    h.api.graph(
        fixture("groups_delta_page2")["@odata.deltaLink"]
            .as_str()
            .unwrap(),
        fixture("groups_delta_round"),
    );

    let round = h
        .round(&GroupsFeed, Position::Delta(cursor), Hints::default())
        .await
        .unwrap();

    assert_eq!(
        h.api.calls()[0].headers,
        vec![("Prefer".to_string(), "return=minimal".to_string())]
    );
    let mut members = h.store.item_ids_of(Collection::GroupMember, ALL_COMPANY);
    members.sort();
    assert!(
        !members.contains(&format!("{ALL_COMPANY}/{MEGAN}")),
        "@removed member removed"
    );
    assert!(
        members.contains(&format!("{ALL_COMPANY}/{NEW_HIRE}")),
        "added member added"
    );
    assert!(
        members.contains(&format!("{ALL_COMPANY}/{ADELE}")),
        "untouched member kept"
    );
    assert_eq!(
        h.store.get(Collection::Group, ALL_COMPANY).unwrap()["displayName"],
        "All Company"
    );
    assert_eq!(h.store.get(Collection::Group, SALES), None);
    assert!(
        h.store
            .item_ids_of(Collection::GroupOwner, SALES)
            .is_empty()
    );
    assert!(round.changes().contains(&Change::RemovePrefix {
        collection: Collection::GroupMember,
        prefix: format!("{SALES}/")
    }));
}

#[tokio::test]
async fn a_delta_page_without_any_link_is_malformed() {
    let mut h = Harness::new();
    h.api.graph(&groups_delta_url(), json!({"value": []}));
    let result = h
        .round(&GroupsFeed, Position::Baseline, Hints::default())
        .await;
    assert!(matches!(result, Err(FeedError::Malformed(m)) if m.contains("deltaLink")));
}

#[tokio::test]
async fn an_empty_page_with_a_next_link_continues_the_round() {
    let mut h = Harness::new();
    h.api
        .graph(&groups_delta_url(), json!({"value": [], "@odata.nextLink": "https://graph.microsoft.com/v1.0/groups/delta?$skiptoken=a"}))
        .graph("https://graph.microsoft.com/v1.0/groups/delta?$skiptoken=a", json!({"value": [], "@odata.deltaLink": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=b"}));
    let round = h
        .round(&GroupsFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert_eq!(round.pages.len(), 2);
    assert_eq!(
        round.cursor,
        json!({"delta_link": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=b"})
    );
}

#[tokio::test]
async fn a_removed_service_principal_takes_its_owners_and_assignments_and_a_changed_one_is_hinted()
{
    let mut h = Harness::new();
    let sp = "c1d2e3f4-a5b6-4c7d-8e9f-a0b1c2d3e4f5";
    h.store.put(
        Collection::ServicePrincipal,
        "gone-sp",
        json!({"id": "gone-sp"}),
    );
    h.store.put(
        Collection::ServicePrincipalOwner,
        &format!("gone-sp/{ADELE}"),
        json!({}),
    );
    h.store.put(
        Collection::AppRoleAssignment,
        "gone-sp/assignment",
        json!({}),
    );
    h.api.graph("https://graph.microsoft.com/v1.0/servicePrincipals/delta?$deltatoken=t1", json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals",
        "@odata.deltaLink": "https://graph.microsoft.com/v1.0/servicePrincipals/delta?$deltatoken=t2",
        "value": [
            {"id": sp, "displayName": "Contoso HR (renamed)"},
            {"id": "gone-sp", "@removed": {"reason": "deleted"}}
        ]
    }));
    let cursor = json!({"delta_link": "https://graph.microsoft.com/v1.0/servicePrincipals/delta?$deltatoken=t1"});
    let round = h
        .round(
            &ServicePrincipalsFeed,
            Position::Delta(cursor),
            Hints::default(),
        )
        .await
        .unwrap();

    assert_eq!(h.store.get(Collection::ServicePrincipal, "gone-sp"), None);
    assert!(h.store.ids(Collection::ServicePrincipalOwner).is_empty());
    assert!(h.store.ids(Collection::AppRoleAssignment).is_empty());
    assert_eq!(
        round
            .hints
            .service_principals
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        vec![sp.to_string()]
    );
    // servicePrincipal-delta documents no `return=minimal`: the item is whole and replaces.
    assert!(round.changes().contains(&Change::Upsert {
        key: ItemKey::new(Collection::ServicePrincipal, sp),
        value: json!({"id": sp, "displayName": "Contoso HR (renamed)"}),
    }));
    assert!(
        h.api.calls().iter().all(|call| call.headers.is_empty()),
        "no Prefer header on service principal delta requests"
    );
}

#[tokio::test]
async fn a_changed_mail_hints_the_mailbox_feed_and_an_unchanged_one_does_not() {
    let mut h = Harness::new();
    h.options.mailbox = true;
    h.store.put(
        Collection::User,
        ADELE,
        json!({"id": ADELE, "mail": "AdeleV@contoso.com"}),
    );
    h.store.put(
        Collection::User,
        MEGAN,
        json!({"id": MEGAN, "mail": "MeganB@contoso.com"}),
    );
    let link = "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=t";
    h.api.graph(
        link,
        json!({
            "@odata.deltaLink": "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=t2",
            "value": [
                {"id": ADELE, "mail": "Adele.Vance@contoso.com"},
                {"id": MEGAN, "mail": "MeganB@contoso.com", "department": "Sales"}
            ]
        }),
    );
    let round = h
        .round(
            &UsersFeed,
            Position::Delta(json!({"delta_link": link})),
            Hints::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        round
            .hints
            .mailbox_users
            .iter()
            .cloned()
            .collect::<Vec<_>>(),
        vec![ADELE.to_string()]
    );
}

#[tokio::test]
async fn a_page_fetched_again_after_a_crash_gives_the_same_changes_and_cursor() {
    use baton_azure_delta::feeds::{Feed, Next};
    let h = Harness::new();
    let page1 = fixture("groups_delta_page1");
    let next = page1["@odata.nextLink"].as_str().unwrap().to_string();
    h.api.graph(&groups_delta_url(), page1.clone());
    h.api.graph(&next, fixture("groups_delta_page2"));
    h.api.graph(&next, fixture("groups_delta_page2"));
    let ctx = h.context(Hints::default());
    let first = GroupsFeed
        .next_page(&ctx, &Position::Baseline)
        .await
        .unwrap();
    let Next::Continue(state) = first.next.clone() else {
        panic!("the first page continues")
    };
    // The engine crashed before committing the second page: it asks for it again.
    let second = GroupsFeed
        .next_page(&ctx, &Position::Continue(state.clone()))
        .await
        .unwrap();
    let again = GroupsFeed
        .next_page(&ctx, &Position::Continue(state))
        .await
        .unwrap();
    assert_eq!(second, again);
    h.store.apply(&second, 1);
    let once = h.store.ids(Collection::GroupMember);
    h.store.apply(&again, 1);
    assert_eq!(
        h.store.ids(Collection::GroupMember),
        once,
        "applying it twice changes nothing more"
    );
}
