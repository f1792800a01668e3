//! The feeds against wire shapes Microsoft documents that our own emulator does not send:
//! pages without `value`, ARM's empty `nextLink`, member links of other object types, ARM
//! ids whose resource group is spelled in another case than the resource group list spells it,
//! requests inside a `$batch` that fail alone with a server error, and the many ways Graph says
//! "no mailbox" or says nothing about a mailbox; storage accounts without a Blob service, and an
//! Activity Log that refuses the query window.

mod feeds_support;

use baton_azure_delta::azure::ApiError;
use baton_azure_delta::feeds::groups::GroupsFeed;
use baton_azure_delta::feeds::mailbox::MailboxFeed;
use baton_azure_delta::feeds::sp_owners::ServicePrincipalOwnersFeed;
use baton_azure_delta::feeds::{Collection, Hints, Position, activity_log, subscription_feed};
use feeds_support::Harness;
use serde_json::json;

const SUB: &str = "089bd33f-d4ec-47fe-8ba5-0753aa5c5b33";

fn groups_delta_url() -> String {
    "/v1.0/groups/delta?$select=id,displayName,description,mail,mailEnabled,securityEnabled,groupTypes,onPremisesSyncEnabled,isAssignableToRole,createdDateTime,securityIdentifier,members,owners".into()
}

fn sub_url(tail: &str) -> String {
    format!("/subscriptions/{SUB}/{tail}")
}

/// A delta response "always includes" a nextLink or a deltaLink (delta-query-overview, "State
/// tokens"); the items are what may be missing: `$deltatoken=latest` answers "no resource
/// data", and a page of a round may carry nothing but its nextLink. Such a page is an empty
/// page, not a malformed one.
#[tokio::test]
async fn a_delta_page_with_a_link_but_no_value_is_an_empty_page() {
    let mut h = Harness::new();
    h.api
        .graph(&groups_delta_url(), json!({"@odata.nextLink": "https://graph.microsoft.com/v1.0/groups/delta?$skiptoken=a"}))
        .graph("https://graph.microsoft.com/v1.0/groups/delta?$skiptoken=a", json!({
            "value": [{"id": "g1", "displayName": "G1"}],
            "@odata.nextLink": "https://graph.microsoft.com/v1.0/groups/delta?$skiptoken=b"
        }))
        .graph("https://graph.microsoft.com/v1.0/groups/delta?$skiptoken=b", json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#groups",
            "@odata.deltaLink": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=c"
        }));
    let round = h
        .round(&GroupsFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert!(h.api.all_used());
    assert_eq!(h.store.ids(Collection::Group), vec!["g1".to_string()]);
    assert_eq!(
        round.cursor,
        json!({"delta_link": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=c"})
    );
}

/// `members@delta` and `owners@delta` name objects of any directory type: the documented
/// examples show `#microsoft.graph.user`, and groups also hold groups, service principals,
/// devices and organizational contacts (delta-query-groups). Every link is kept with its type,
/// removals of any type are removed, and unknown annotations and null properties do no harm.
#[tokio::test]
async fn member_links_of_every_directory_type_are_kept_and_removed_alike() {
    let mut h = Harness::new();
    h.api
        .graph(&groups_delta_url(), json!({
            "value": [{
                "id": "g1", "displayName": "G1", "description": null, "mail": null,
                "extraProperty@odata.type": "#String", "futureProperty": {"x": 1},
                "members@delta": [
                    {"@odata.type": "#microsoft.graph.user", "id": "u1"},
                    {"@odata.type": "#microsoft.graph.group", "id": "g2"},
                    {"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp1"},
                    {"@odata.type": "#microsoft.graph.orgContact", "id": "c1"},
                    {"@odata.type": "#microsoft.graph.device", "id": "d1"},
                    {"id": "x1"}
                ],
                "owners@delta": [{"@odata.type": "#microsoft.graph.servicePrincipal", "id": "sp1"}]
            }],
            "@odata.deltaLink": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=d1"
        }))
        .graph("https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=d1", json!({
            "value": [{
                "id": "g1",
                "members@delta": [
                    {"@odata.type": "#microsoft.graph.orgContact", "id": "c1", "@removed": {"reason": "deleted"}},
                    {"@odata.type": "#microsoft.graph.device", "id": "d1", "@removed": {"reason": "deleted"}},
                    {"id": "x1", "@removed": {"reason": "deleted"}}
                ]
            }],
            "@odata.deltaLink": "https://graph.microsoft.com/v1.0/groups/delta?$deltatoken=d2"
        }));
    let baseline = h
        .round(&GroupsFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert_eq!(
        h.store.item_ids_of(Collection::GroupMember, "g1"),
        ["g1/c1", "g1/d1", "g1/g2", "g1/sp1", "g1/u1", "g1/x1"]
    );
    assert_eq!(
        h.store.get(Collection::GroupMember, "g1/c1"),
        Some(json!({"@odata.type": "#microsoft.graph.orgContact"}))
    );
    assert_eq!(
        h.store.get(Collection::GroupOwner, "g1/sp1"),
        Some(json!({"@odata.type": "#microsoft.graph.servicePrincipal"}))
    );
    assert_eq!(
        h.store.get(Collection::Group, "g1"),
        Some(
            json!({"id": "g1", "displayName": "G1", "description": null, "mail": null, "futureProperty": {"x": 1}})
        )
    );

    h.round(
        &GroupsFeed,
        Position::Delta(baseline.cursor),
        Hints::default(),
    )
    .await
    .unwrap();
    assert!(h.api.all_used());
    assert_eq!(
        h.store.item_ids_of(Collection::GroupMember, "g1"),
        ["g1/g2", "g1/sp1", "g1/u1"]
    );
}

/// ARM may end a list with `"nextLink": ""` as well as with none or null; the client's own
/// `arm_pages` already stops there, and so must the feeds, instead of requesting "".
#[tokio::test]
async fn an_arm_page_with_an_empty_next_link_ends_its_list() {
    let mut h = Harness::new();
    h.options.skip_p2 = true;
    h.options.skip_storage_containers = true;
    let empty = json!({"value": [], "nextLink": ""});
    h.api
        .arm(&sub_url("resourcegroups?api-version=2021-04-01"), json!({"value": [
            {"id": format!("/subscriptions/{SUB}/resourceGroups/rg-web"), "name": "rg-web", "location": "westeurope"}
        ], "nextLink": ""}))
        .arm(&sub_url("providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=atScopeAndBelow()"), empty.clone())
        .arm(&sub_url("providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"), empty.clone())
        .arm(&sub_url("providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01"), empty);
    let feed = subscription_feed(SUB);
    h.round(feed.as_ref(), Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert!(h.api.all_used());
    assert_eq!(h.api.count("arm"), 4);
    assert_eq!(
        h.store.ids(Collection::ResourceGroup),
        vec![format!("{SUB}:rg-web")]
    );
}

/// ARM resource group names are case-insensitive, and ARM ids do not always spell a resource
/// group the way the resource group list does (a storage account created through a client
/// that lower-cased the group's name carries `/resourceGroups/rg-web/` in its id while the
/// group is listed as `RG-Web`). A storage account and its containers are keyed under the
/// listed spelling, so they sit under the resource group item that exists.
#[tokio::test]
async fn a_storage_account_id_spelling_its_resource_group_differently_is_keyed_under_the_listed_group()
 {
    let mut h = Harness::new();
    h.options.skip_p2 = true;
    let account = format!(
        "/subscriptions/{SUB}/resourcegroups/rg-web/providers/Microsoft.Storage/storageAccounts/contosoweb"
    );
    h.api
        .arm(&sub_url("resourcegroups?api-version=2021-04-01"), json!({"value": [
            {"id": format!("/subscriptions/{SUB}/resourceGroups/RG-Web"), "name": "RG-Web", "location": "westeurope"}
        ]}))
        .arm(&sub_url("providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=atScopeAndBelow()"), json!({"value": []}))
        .arm(&sub_url("providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"), json!({"value": []}))
        .arm(&sub_url("providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01"), json!({"value": [
            {"id": account, "name": "contosoweb", "type": "Microsoft.Storage/storageAccounts", "location": "westeurope"}
        ]}))
        .arm(&format!("{account}/blobServices/default/containers?api-version=2023-05-01"), json!({"value": [
            {"id": format!("{account}/blobServices/default/containers/images"), "name": "images"}
        ]}));
    let feed = subscription_feed(SUB);
    let round = h
        .round(feed.as_ref(), Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert!(h.api.all_used());
    assert_eq!(
        h.store.ids(Collection::ResourceGroup),
        vec![format!("{SUB}:RG-Web")]
    );
    assert_eq!(
        h.store.ids(Collection::StorageAccount),
        vec![format!("{SUB}:RG-Web:contosoweb")]
    );
    assert_eq!(
        h.store.ids(Collection::Container),
        vec![format!("{SUB}:RG-Web:contosoweb:images")]
    );
    // The account's containers were not forgotten as those of a gone account.
    assert!(!round.changes().iter().any(|c| matches!(
        c,
        baton_azure_delta::feeds::Change::RemovePrefix {
            collection: Collection::Container,
            ..
        }
    )));
}

/// Each request in a `$batch` is evaluated on its own and can fail alone inside a 200 envelope;
/// Microsoft's advice is to retry only the failed ones (throttling, "Throttling and batching").
/// A 503 or 500 for one request is as transient as for a whole call (errors page), so only
/// that request is sent again, and the page succeeds.
#[tokio::test]
async fn a_server_error_inside_a_batch_retries_only_that_request() {
    let mut h = Harness::new();
    for sp in ["a", "b", "c"] {
        h.store.put(Collection::ServicePrincipal, sp, json!({}));
    }
    let owners = |sp: &str| format!("/servicePrincipals/{sp}/owners?$select=id");
    let unavailable = json!({"error": {"code": "serviceNotAvailable", "message": "try later"}});
    h.api
        .batch(&owners("a"), 200, json!({"value": []}))
        .batch(&owners("b"), 503, unavailable.clone())
        .batch(
            &owners("c"),
            500,
            json!({"error": {"code": "generalException", "message": "boom"}}),
        )
        .batch(
            &owners("b"),
            200,
            json!({"value": [{"@odata.type": "#microsoft.graph.user", "id": "u1"}]}),
        )
        .batch(&owners("c"), 503, unavailable)
        .batch(&owners("c"), 200, json!({"value": [{"id": "u2"}]}));
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
            format!("{} | {} | {}", owners("a"), owners("b"), owners("c")),
            format!("{} | {}", owners("b"), owners("c")),
            owners("c"),
        ]
    );
    assert!(h.api.all_used());
    assert_eq!(
        h.store.ids(Collection::ServicePrincipalOwner),
        vec!["b/u1".to_string(), "c/u2".to_string()]
    );
}

/// A request that keeps failing with a server error fails the page as retryable (its object's
/// owners must not be swept as if it had none), after only the failing request was retried.
#[tokio::test]
async fn a_request_failing_with_server_errors_every_time_fails_the_page_as_retryable() {
    let mut h = Harness::new();
    h.store.put(Collection::ServicePrincipal, "a", json!({}));
    let url = "/servicePrincipals/a/owners?$select=id";
    for _ in 0..4 {
        h.api.batch(url, 502, json!("Bad Gateway"));
    }
    let error = h
        .round(
            &ServicePrincipalOwnersFeed,
            Position::Baseline,
            Hints::default(),
        )
        .await
        .err();
    let Some(error) = error else {
        panic!("a request failing every time must fail the page");
    };
    assert!(error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("Bad Gateway"), "{error}");
    assert_eq!(h.api.count("batch"), 4);
    assert!(h.api.all_used());
}

/// `mailboxSettings` answers that say "no mailbox": a 404 whatever its code
/// (`MailboxNotEnabledForRESTAPI`, Exchange KB 4462988; `ResourceNotFound`, `ErrorItemNotFound`
/// and `UnknownError` as reported for users without one), and Exchange's own "mailbox does not
/// exist" code whatever the status. Answers that say nothing about the mailbox: a 403
/// `ErrorAccessDenied` (an application access policy, auth-limit-mailbox-access), a server error
/// that outlives the retries, a 2xx without a settings object. Those keep what the store knew,
/// even through a full pass that sweeps the rest.
#[tokio::test]
async fn mailbox_answers_say_no_mailbox_or_nothing_and_nothing_keeps_the_stored_purpose() {
    let mut h = Harness::new();
    h.options.mailbox = true;
    let users = [
        "u1-policy",
        "u2-outage",
        "u3-empty",
        "u4-gone",
        "u5-unknown",
        "u6-rest",
        "u7-item",
    ];
    for user in users {
        h.store.put(Collection::User, user, json!({}));
    }
    h.store.put(
        Collection::Mailbox,
        "u1-policy",
        json!({"userPurpose": "shared"}),
    );
    h.store.put(
        Collection::Mailbox,
        "u2-outage",
        json!({"userPurpose": "room"}),
    );
    h.store.put(
        Collection::Mailbox,
        "u3-empty",
        json!({"userPurpose": "equipment"}),
    );
    let url = |user: &str| format!("/users/{user}/mailboxSettings");
    let error = |code: &str| json!({"error": {"code": code, "message": code}});
    h.api
        .batch(&url("u1-policy"), 403, json!({"error": {"code": "ErrorAccessDenied", "message": "Access to OData is disabled."}}))
        .batch(&url("u3-empty"), 200, serde_json::Value::Null)
        .batch(&url("u4-gone"), 403, error("ErrorNonExistentMailbox"))
        .batch(&url("u5-unknown"), 404, error("UnknownError"))
        .batch(&url("u6-rest"), 404, error("MailboxNotSupportedForRESTAPI"))
        .batch(&url("u7-item"), 404, error("ErrorItemNotFound"));
    for _ in 0..4 {
        h.api
            .batch(&url("u2-outage"), 503, error("ServiceUnavailable"));
    }
    h.round(&MailboxFeed, Position::Baseline, Hints::default())
        .await
        .unwrap();
    assert!(h.api.all_used());
    let purpose = |user: &str| h.store.get(Collection::Mailbox, user);
    assert_eq!(purpose("u1-policy"), Some(json!({"userPurpose": "shared"})));
    assert_eq!(purpose("u2-outage"), Some(json!({"userPurpose": "room"})));
    assert_eq!(
        purpose("u3-empty"),
        Some(json!({"userPurpose": "equipment"}))
    );
    for user in ["u4-gone", "u5-unknown", "u6-rest", "u7-item"] {
        assert_eq!(purpose(user), Some(json!({"noMailbox": true})), "{user}");
    }
    assert_eq!(h.store.ids(Collection::User).len(), users.len());
}

/// A status that is neither "no mailbox" nor transient (a 400: the request is wrong) is a
/// failure to report, not a state to store.
#[tokio::test]
async fn a_bad_request_for_mailbox_settings_fails_the_page() {
    let mut h = Harness::new();
    h.options.mailbox = true;
    h.store.put(Collection::User, "u1", json!({}));
    h.api.batch(
        "/users/u1/mailboxSettings",
        400,
        json!({"error": {"code": "BadRequest", "message": "Resource not found for the segment 'mailboxSettings'."}}),
    );
    let error = h
        .round(&MailboxFeed, Position::Baseline, Hints::default())
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("/users/u1/mailboxSettings"), "{error}");
    assert_eq!(h.store.get(Collection::Mailbox, "u1"), None);
}

/// A `FileStorage` account holds only file shares (storage-account-overview), and listing blob
/// containers of an account without a Blob service answers 400 `FeatureNotSupportedForAccount`
/// ("Blob is not supported for the account."). Neither may fail the subscription's feed: the
/// file-only account is not asked, and an account that answers so has no containers.
#[tokio::test]
async fn accounts_without_a_blob_service_have_no_containers_and_fail_nothing() {
    let mut h = Harness::new();
    h.options.skip_p2 = true;
    let account = |name: &str| {
        format!(
            "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/{name}"
        )
    };
    h.store.put(
        Collection::Container,
        &format!("{SUB}:rg:nosvc:stale"),
        json!({}),
    );
    h.api
        .arm(&sub_url("resourcegroups?api-version=2021-04-01"), json!({"value": [
            {"id": format!("/subscriptions/{SUB}/resourceGroups/rg"), "name": "rg"}
        ]}))
        .arm(&sub_url("providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=atScopeAndBelow()"), json!({"value": []}))
        .arm(&sub_url("providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"), json!({"value": []}))
        .arm(&sub_url("providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01"), json!({"value": [
            {"id": account("files"), "name": "files", "kind": "FileStorage", "sku": {"name": "Premium_LRS", "tier": "Premium"}},
            {"id": account("nosvc"), "name": "nosvc", "kind": "StorageV2"},
            {"id": account("blobs"), "name": "blobs", "kind": "BlockBlobStorage"}
        ]}))
        .arm_err(
            &format!("{}/blobServices/default/containers?api-version=2023-05-01", account("nosvc")),
            ApiError::Other {
                status: Some(400),
                code: "FeatureNotSupportedForAccount".into(),
                message: "Blob is not supported for the account.".into(),
            },
        )
        .arm(&format!("{}/blobServices/default/containers?api-version=2023-05-01", account("blobs")), json!({"value": [
            {"id": format!("{}/blobServices/default/containers/c1", account("blobs")), "name": "c1"}
        ]}));
    h.round(
        subscription_feed(SUB).as_ref(),
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
            .any(|c| c.url.contains("/files/blobServices")),
        "a FileStorage account has no blob containers to list"
    );
    assert_eq!(h.store.ids(Collection::StorageAccount).len(), 3);
    assert_eq!(
        h.store.ids(Collection::Container),
        vec![format!("{SUB}:rg:blobs:c1")]
    );
}

/// The Activity Log answers 400 for a start time past its retention (about 90 days; azure-cli
/// #4885 shows "Bad Request" just past three months), which a round resumed long after it was
/// planned can ask for. The log then cannot say what changed: the feed lists everything again
/// rather than failing the same query every round.
#[tokio::test]
async fn an_activity_log_that_refuses_the_window_makes_the_round_list_everything() {
    let mut h = Harness::new();
    h.options.skip_p2 = true;
    h.options.skip_storage_containers = true;
    let now = h.clock.now();
    let checked_until = now - time::Duration::hours(1);
    let overlap = time::Duration::seconds(h.options.activity_log_overlap.as_secs() as i64);
    let url = activity_log::query_url(SUB, checked_until - overlap, now).unwrap();
    h.api
        .arm_err(
            &url,
            ApiError::Other {
                status: Some(400),
                code: "BadRequest".into(),
                message: "The start time of the query is out of the retention range.".into(),
            },
        )
        .arm(
            &sub_url("resourcegroups?api-version=2021-04-01"),
            json!({"value": [
                {"id": format!("/subscriptions/{SUB}/resourceGroups/rg"), "name": "rg"}
            ]}),
        )
        .arm(
            &sub_url("providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=atScopeAndBelow()"),
            json!({"value": []}),
        )
        .arm(
            &sub_url("providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"),
            json!({"value": []}),
        )
        .arm(
            &sub_url("providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01"),
            json!({"value": []}),
        );
    let cursor = json!({
        "checked_until": checked_until.unix_timestamp(),
        "seen": {},
        "last_full": checked_until.unix_timestamp(),
    });
    let round = h
        .round(
            subscription_feed(SUB).as_ref(),
            Position::Delta(cursor),
            Hints::default(),
        )
        .await
        .unwrap();
    assert!(h.api.all_used());
    assert_eq!(
        h.store.ids(Collection::ResourceGroup),
        vec![format!("{SUB}:rg")]
    );
    assert_eq!(round.cursor["last_full"], json!(now.unix_timestamp()));
    assert_eq!(round.cursor["checked_until"], json!(now.unix_timestamp()));
}
