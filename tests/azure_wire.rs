//! The azure client against wire shapes Microsoft documents (or is observed sending) that differ
//! from what our own emulator sends: error codes in another casing, links on another spelling
//! of the host, `$batch` items with numeric headers. Each test scripts the exact answer on the
//! scripted TLS server of `azure_support`.

mod azure_support;

use azure_support::*;

/// Graph spells the expired-token code `syncStateNotFound` in the delta documentation and
/// `SyncStateNotFound` in real answers (microsoft-graph-docs issues #2350 and #2877, both with
/// a 400 or a 410); `resyncRequired` is the errors page's spelling. Any casing, top-level or in
/// `innerError`, means "re-baseline", never a hard failure.
#[tokio::test]
async fn expired_delta_codes_are_recognised_in_any_casing() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let answers = [
        json!({"error": {"code": "SyncStateNotFound", "message": "The sync state generation is not found; generation=149;[highest=157]."}}),
        json!({"error": {"code": "ResyncRequired", "message": "Resync required."}}),
        json!({"error": {"code": "BadRequest", "message": "m", "innerError": {"code": "SYNCSTATENOTFOUND"}}}),
    ];
    for (n, body) in answers.into_iter().enumerate() {
        let stale = format!("/v1.0/users/delta?$deltatoken=old{n}");
        server.script(&stale, vec![json_answer(400, body)]);
        let err = client.graph_get(&stale, &[]).await.unwrap_err();
        assert_eq!(err, ApiError::DeltaTokenExpired { location: None }, "{n}");
    }

    server.script(
        "/v1.0/roleManagement/directory/roleEligibilitySchedules",
        vec![json_answer(
            400,
            graph_error("aadPremiumLicenseRequired", "needs P2"),
        )],
    );
    let err = client
        .graph_get(
            "/v1.0/roleManagement/directory/roleEligibilitySchedules",
            &[],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::LicenseRequired { .. }), "{err:?}");
}

/// Graph and ARM return nextLinks and deltaLinks as absolute URLs on their public host
/// (`https://graph.microsoft.com/v1.0/...`, `https://management.azure.com/...`; delta-query-overview,
/// ARM paging). A tenant emulator, a proxy or a private endpoint may answer on another address
/// while its links still name that host, or name the same loopback server by another name
/// (`localhost` for `127.0.0.1`). Such links are followed on the configured endpoint, so the
/// token still goes only there; links to any other host are still refused.
#[tokio::test]
async fn links_on_microsofts_public_host_or_a_loopback_alias_are_followed_on_the_endpoint() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let port = server.addr.port();
    server.script(
        "/v1.0/users/delta?$select=id",
        vec![json_answer(
            200,
            json!({"value": [{"id": "a"}], "@odata.nextLink": "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=p2"}),
        )],
    );
    server.script(
        "/v1.0/users/delta?$skiptoken=p2",
        vec![json_answer(
            200,
            json!({"value": [], "@odata.nextLink": format!("https://LOCALHOST:{port}/v1.0/users/delta?$skiptoken=p3")}),
        )],
    );
    server.script(
        "/v1.0/users/delta?$skiptoken=p3",
        vec![json_answer(
            200,
            json!({"value": [{"id": "b"}], "@odata.deltaLink": "https://Graph.Microsoft.com/v1.0/users/delta?$deltatoken=d1"}),
        )],
    );
    server.script(
        "/v1.0/users/delta?$deltatoken=d1",
        vec![json_answer(
            200,
            json!({"value": [], "@odata.deltaLink": "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=d2"}),
        )],
    );
    let pages: Vec<Value> = client
        .graph_pages("/v1.0/users/delta?$select=id", &[])
        .map(|p| p.unwrap())
        .collect()
        .await;
    assert_eq!(pages.len(), 3);
    let delta_link = pages[2]["@odata.deltaLink"].as_str().unwrap();
    let next_round = client.graph_get(delta_link, &[]).await.unwrap();
    assert_eq!(
        next_round["@odata.deltaLink"],
        "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=d2"
    );
    assert_eq!(server.seen("/v1.0/users/delta?$deltatoken=d1").len(), 1);

    server.script(
        "/subscriptions?api-version=2022-12-01",
        vec![json_answer(
            200,
            json!({"value": [1], "nextLink": "https://management.azure.com/subscriptions?api-version=2022-12-01&$skiptoken=2"}),
        )],
    );
    server.script(
        "/subscriptions?api-version=2022-12-01&$skiptoken=2",
        vec![json_answer(200, json!({"value": [2]}))],
    );
    let arm_pages: Vec<Value> = client
        .arm_pages("/subscriptions?api-version=2022-12-01")
        .map(|p| p.unwrap())
        .collect()
        .await;
    assert_eq!(arm_pages.len(), 2);

    // Every request carried a token, and only to the test server (the scripted server saw them).
    assert!(
        server
            .state
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|s| s.bearer.starts_with("tok-"))
    );
    // A link on a host that is neither Microsoft's nor the endpoint's is still refused, as is a
    // Graph link handed to ARM.
    for (api, link) in [
        ("graph", "https://graph.example.com/v1.0/users?$skiptoken=x"),
        (
            "graph",
            "https://management.azure.com/subscriptions?api-version=1",
        ),
        ("arm", "https://graph.microsoft.com/v1.0/users"),
    ] {
        let err = match api {
            "graph" => client.graph_get(link, &[]).await.unwrap_err(),
            _ => client.arm_get(link).await.unwrap_err(),
        };
        assert!(
            err.to_string().contains("refusing to send a token"),
            "{link}: {err}"
        );
    }
}

/// Inside a `$batch`, answers come in any order and are matched by `id`; a throttled one
/// carries its own `Retry-After` in its `headers` object (whatever the header's casing), and an
/// answer may have no `headers` or no `body` at all (json-batching, throttling). A `Retry-After`
/// written as a JSON number is still honoured.
#[tokio::test]
async fn batch_answers_in_any_order_with_numeric_or_missing_headers_are_read() {
    let server = TestServer::start().await;
    let client = server.client().await;
    server.script(
        "/v1.0/$batch",
        vec![json_answer(200, json!({"responses": [
            {"id": "3", "status": 204},
            {"id": "2", "status": 429, "headers": {"retry-after": 2}},
            {"id": "1", "status": 200, "headers": {"RETRY-AFTER": "9"}, "body": {"userPurpose": "user"}},
        ]}))],
    );
    let answers = client
        .graph_batch(mailbox_requests(&["1", "2", "3"]))
        .await
        .unwrap();
    let ids: Vec<&str> = answers.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(answers[0].body["userPurpose"], "user");
    // Only a throttling answer's Retry-After counts.
    assert_eq!(answers[0].retry_after, None);
    assert_eq!(answers[1].status, 429);
    assert_eq!(answers[1].retry_after, Some(Duration::from_secs(2)));
    assert_eq!(answers[1].body, Value::Null);
    assert_eq!(answers[2].status, 204);
    assert_eq!(answers[2].body, Value::Null);
}

/// OData JSON batching carries a body whose media type is not JSON as a string, base64-encoded
/// when binary (json-batching: the body "might be a JSON object or a base64 URL-encoded
/// value"), and Graph has been seen to send JSON answers base64-encoded (Q&A 1352007). A body
/// that is base64 of JSON, or JSON written as a string, is read as that JSON; a plain text
/// (a proxy's "Bad Gateway") stays the text it is.
#[tokio::test]
async fn batch_bodies_written_as_strings_are_decoded_when_they_hold_json() {
    use base64::Engine;
    let server = TestServer::start().await;
    let client = server.client().await;
    let settings = json!({"userPurpose": "shared", "timeZone": "UTC"});
    let standard = base64::engine::general_purpose::STANDARD.encode(settings.to_string());
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(settings.to_string());
    server.script(
        "/v1.0/$batch",
        vec![json_answer(200, json!({"responses": [
            {"id": "1", "status": 200, "headers": {"Content-Type": "application/json"}, "body": standard},
            {"id": "2", "status": 200, "body": url_safe},
            {"id": "3", "status": 200, "body": settings.to_string()},
            {"id": "4", "status": 502, "headers": {"Content-Type": "text/plain"}, "body": "Bad Gateway"},
        ]}))],
    );
    let answers = client
        .graph_batch(mailbox_requests(&["1", "2", "3", "4"]))
        .await
        .unwrap();
    for answer in &answers[..3] {
        assert_eq!(answer.body, settings, "answer {}", answer.id);
    }
    assert_eq!(answers[3].body, json!("Bad Gateway"));
}

/// The token endpoint answers a misconfiguration with 400/401, `error` (`invalid_client`,
/// `unauthorized_client`, `invalid_request`) and an `AADSTSnnnn` description
/// (v2-oauth2-client-creds-grant-flow; reference-error-codes). Each gives one authentication
/// error that says which setting to fix, carries Microsoft's code, is not retried, and never
/// shows the secret.
#[tokio::test]
async fn token_endpoint_errors_name_the_setting_to_fix_without_the_secret() {
    let server = TestServer::start().await;
    let wrong_secret = "wrong-secret-Qz7";
    let mut cases = Vec::new();
    let config = server.config(wrong_secret);
    cases.push((config, "AADSTS7000215", "client secret"));
    let mut config = server.config(RIGHT_SECRET);
    if let Credential::ClientSecret { client_id, .. } = &mut config.credential {
        *client_id = "99999999-aaaa-bbbb-cccc-000000000000".into();
    }
    cases.push((config, "AADSTS700016", "client id"));
    let mut config = server.config(RIGHT_SECRET);
    if let Credential::ClientSecret { tenant_id, .. } = &mut config.credential {
        *tenant_id = "99999999-0000-0000-0000-000000000000".into();
    }
    cases.push((config, "AADSTS90002", "tenant id"));
    for (config, code, setting) in cases {
        let client = AzureClient::new(config).await.unwrap();
        let err = client.check_credentials().await.unwrap_err();
        let ApiError::Authentication { message } = &err else {
            panic!("{code}: expected an authentication error, got {err:?}");
        };
        assert!(message.contains(code), "{message}");
        assert!(
            message.contains(setting),
            "{code} names the {setting}: {message}"
        );
        assert!(!err.is_retryable(), "{code}");
        assert!(
            !format!("{err:?}").contains(wrong_secret),
            "{code}: secret leaked"
        );
    }
    assert_eq!(server.tokens_issued(), 0);
}

/// One `mailboxSettings` read per id, as the mailbox feed batches them.
fn mailbox_requests(ids: &[&str]) -> Vec<BatchRequest> {
    ids.iter()
        .map(|id| BatchRequest {
            id: (*id).into(),
            url: format!("/users/u{id}/mailboxSettings"),
            headers: vec![],
        })
        .collect()
}
