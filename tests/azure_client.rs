//! The azure client against a scripted TLS server on 127.0.0.1 that plays the Entra token
//! endpoint and Graph/ARM answers. The server is this file's own (not `src/emulator`): each test
//! scripts the exact wire answers it needs and then checks what the client did with them.

mod azure_support;

use azure_support::*;
use baton_azure_delta::azure::Api;
#[tokio::test]
async fn tokens_come_from_the_authority_through_the_extra_ca_one_per_audience() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client.check_credentials().await.unwrap();
    let port = server.addr.port();
    let mut scopes = server.state.token_scopes.lock().unwrap().clone();
    scopes.sort();
    assert_eq!(
        scopes,
        vec![
            format!("https://127.0.0.1:{port}/.default"),
            format!("https://localhost:{port}/.default"),
        ]
    );
    // Cached: a second check and real calls fetch no new token.
    server.script(
        "/v1.0/organization",
        vec![json_answer(200, json!({"value": []}))],
    );
    client.check_credentials().await.unwrap();
    client.graph_get("/v1.0/organization", &[]).await.unwrap();
    assert_eq!(server.tokens_issued(), 2);
    assert_eq!(server.seen("/v1.0/organization")[0].bearer, "tok-1");
}

#[tokio::test]
async fn without_the_extra_ca_the_self_signed_server_is_not_trusted() {
    let server = TestServer::start().await;
    let mut config = server.config(RIGHT_SECRET);
    config.extra_ca_pem = None;
    let client = AzureClient::new(config).await.unwrap();
    let err = client.check_credentials().await.unwrap_err();
    assert_eq!(server.tokens_issued(), 0);
    // The TLS failure is transient from the pipeline's view, but its cause is spelled out.
    assert!(matches!(err, ApiError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[tokio::test]
async fn wrong_secret_fails_clearly_without_revealing_it() {
    let server = TestServer::start().await;
    let wrong = "wrong-secret-Xy9";
    let client = AzureClient::new(server.config(wrong)).await.unwrap();
    let err = client.check_credentials().await.unwrap_err();
    let ApiError::Authentication { message } = &err else {
        panic!("expected an authentication error, got {err:?}");
    };
    assert!(message.contains("AADSTS7000215"), "{message}");
    for shown in [
        err.to_string(),
        format!("{err:?}"),
        format!("{:?}", server.config(wrong)),
    ] {
        assert!(!shown.contains(wrong), "secret leaked: {shown}");
    }
    assert!(!err.is_retryable());
    assert!(server.state.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn wrong_or_malformed_tenant_fails_clearly() {
    let server = TestServer::start().await;
    let mut config = server.config(RIGHT_SECRET);
    let Credential::ClientSecret { tenant_id, .. } = &mut config.credential else {
        unreachable!()
    };
    *tenant_id = "99999999-0000-0000-0000-000000000000".into();
    let client = AzureClient::new(config.clone()).await.unwrap();
    let err = client.check_credentials().await.unwrap_err();
    assert!(
        matches!(err, ApiError::Authentication { ref message } if message.contains("AADSTS90002")),
        "{err:?}"
    );

    let Credential::ClientSecret { tenant_id, .. } = &mut config.credential else {
        unreachable!()
    };
    *tenant_id = "not a tenant/../".into();
    let err = AzureClient::new(config).await.err().unwrap();
    assert!(
        matches!(err, ApiError::Authentication { ref message } if message.contains("invalid tenant ID")),
        "{err:?}"
    );
}

#[tokio::test]
async fn retry_after_on_429_is_honoured_and_pauses_the_whole_api() {
    let server = TestServer::start().await;
    let client = server.client().await;
    server.script(
        "/v1.0/users",
        vec![
            with_headers(
                429,
                &[("Retry-After", "1")],
                graph_error("TooManyRequests", "slow down"),
            ),
            json_answer(200, json!({"value": [{"id": "u1"}]})),
        ],
    );
    server.script("/v1.0/groups", vec![json_answer(200, json!({"value": []}))]);
    server.script(
        "/subscriptions?api-version=2022-12-01",
        vec![json_answer(200, json!({"value": []}))],
    );

    let users = tokio::spawn({
        let client = client.clone();
        async move { client.graph_get("/v1.0/users", &[]).await }
    });
    // The client counts the 429 and closes Graph's gate in one step: once it is counted, the
    // gate is closed.
    while client.counters().graph.throttled == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Issued while Graph is throttled: ARM has its own gate and goes at once; another Graph
    // request must wait for the Graph gate.
    client
        .arm_get("/subscriptions?api-version=2022-12-01")
        .await
        .unwrap();
    client.graph_get("/v1.0/groups", &[]).await.unwrap();
    let page = users.await.unwrap().unwrap();
    assert_eq!(page["value"][0]["id"], "u1");

    let seen = server.seen("/v1.0/users");
    assert_eq!(seen.len(), 2);
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(950));
    assert!(server.seen("/v1.0/groups")[0].at - seen[0].at >= Duration::from_millis(950));
    let arm_seen = server.seen("/subscriptions?api-version=2022-12-01");
    assert!(arm_seen[0].at - seen[0].at < Duration::from_millis(900));

    let counters = client.counters();
    assert_eq!(counters.graph.throttled, 1);
    assert_eq!(counters.graph.retries, 1);
    assert_eq!(counters.graph.by_status.get(&429), Some(&1));
    assert_eq!(counters.graph.by_status.get(&200), Some(&2));
    // Both the retry and the concurrent request waited on the throttle gate.
    assert!(counters.graph.budget_wait_ms >= 950 + 800, "{counters:?}");
    assert!(counters.arm.budget_wait_ms < 500, "{counters:?}");
    assert_eq!(counters.arm.throttled, 0);
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let server = TestServer::start().await;
    let client = server.client().await;
    server.script(
        "/v1.0/groups/delta",
        vec![
            json_answer(503, graph_error("serviceNotAvailable", "busy")),
            json_answer(500, graph_error("generalException", "oops")),
            json_answer(504, graph_error("gatewayTimeout", "late")),
            json_answer(200, json!({"value": [], "@odata.deltaLink": "x"})),
        ],
    );
    let page = client.graph_get("/v1.0/groups/delta", &[]).await.unwrap();
    assert_eq!(page["@odata.deltaLink"], "x");
    let counters = client.counters();
    assert_eq!(counters.graph.retries, 3);
    assert_eq!(counters.graph.requests, 4);
    assert_eq!(
        counters.graph.by_endpoint.get("GET /v1.0/groups/delta"),
        Some(&4)
    );
}

#[tokio::test]
async fn exhausted_retries_give_unavailable() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let url = "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01";
    server.script(
        url,
        (0..5)
            .map(|_| {
                json_answer(
                    502,
                    json!({"error": {"code": "BadGateway", "message": "bad gateway"}}),
                )
            })
            .collect(),
    );
    let err = client.arm_get(url).await.unwrap_err();
    assert!(matches!(err, ApiError::Unavailable { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("4 attempts"), "{err}");
    assert_eq!(server.seen(url).len(), 4); // max_attempts
    let counters = client.counters();
    assert_eq!(
        counters
            .arm
            .by_endpoint
            .get("GET /subscriptions/{id}/providers/Microsoft.Authorization/roleAssignments"),
        Some(&4)
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_allowed_fails_at_once() {
    let server = TestServer::start().await;
    let client = server.client().await;
    server.script(
        "/v1.0/users",
        vec![with_headers(
            429,
            &[("Retry-After", "3600")],
            graph_error("TooManyRequests", "later"),
        )],
    );
    let err = client.graph_get("/v1.0/users", &[]).await.unwrap_err();
    assert!(matches!(err, ApiError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("3600"), "{err}");
    assert_eq!(server.seen("/v1.0/users").len(), 1);
}

#[tokio::test]
async fn dropped_connections_timeouts_and_truncated_bodies_are_retried() {
    let server = TestServer::start().await;
    let mut config = server.config(RIGHT_SECRET);
    config.request_timeout = Duration::from_millis(500);
    let client = AzureClient::new(config).await.unwrap();
    server.script(
        "/v1.0/users",
        vec![
            Scripted::Drop,
            Scripted::Hang,
            Scripted::Truncated,
            json_answer(200, json!({"value": [{"id": "u1"}]})),
        ],
    );
    let page = client.graph_get("/v1.0/users", &[]).await.unwrap();
    assert_eq!(page["value"][0]["id"], "u1");
    let counters = client.counters();
    assert_eq!(server.seen("/v1.0/users").len(), 4);
    assert_eq!(counters.graph.retries, 3);
    // Drop, timeout and truncation are failures without a readable answer.
    assert_eq!(counters.graph.transport_errors, 3, "{counters:?}");
}

#[tokio::test]
async fn an_unparseable_200_body_is_retried() {
    let server = TestServer::start().await;
    let client = server.client().await;
    server.script(
        "/v1.0/groups",
        vec![
            Scripted::Json {
                status: 200,
                headers: vec![],
                body: "{\"value\":[".into(),
            },
            json_answer(200, json!({"value": []})),
        ],
    );
    client.graph_get("/v1.0/groups", &[]).await.unwrap();
    assert_eq!(client.counters().graph.retries, 1);
}

#[tokio::test]
async fn expired_delta_links_are_reported_for_rebaselining() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let stale = "/v1.0/users/delta?$deltatoken=old";
    server.script(
        stale,
        vec![json_answer(
            400,
            graph_error(
                "syncStateNotFound",
                "The sync state generation is not found.",
            ),
        )],
    );
    let err = client.graph_get(stale, &[]).await.unwrap_err();
    assert_eq!(err, ApiError::DeltaTokenExpired { location: None });

    let port = server.addr.port();
    let fresh = format!("https://127.0.0.1:{port}/v1.0/groups/delta?$deltatoken=");
    let gone = "/v1.0/groups/delta?$deltatoken=older";
    server.script(
        gone,
        vec![with_headers(
            410,
            &[("Location", &fresh)],
            graph_error("resyncRequired", "Resync required."),
        )],
    );
    // An absolute deltaLink is replayed as Graph gave it.
    let err = client
        .graph_get(&format!("https://127.0.0.1:{port}{gone}"), &[])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ApiError::DeltaTokenExpired {
            location: Some(fresh)
        }
    );
    assert!(!err.is_retryable());
    assert_eq!(client.counters().graph.retries, 0);
}

#[tokio::test]
async fn licence_permission_and_missing_objects_are_told_apart() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let pim = "/v1.0/roleManagement/directory/roleEligibilitySchedules";
    server.script(pim, vec![json_answer(400, graph_error("AadPremiumLicenseRequired", "The tenant needs to have Microsoft Entra ID P2 or Microsoft Entra ID Governance license."))]);
    let err = client.graph_get(pim, &[]).await.unwrap_err();
    assert!(
        matches!(err, ApiError::LicenseRequired { ref message } if message.contains("P2")),
        "{err:?}"
    );

    server.script(
        "/v1.0/auditLogs/directoryAudits",
        vec![json_answer(
            403,
            graph_error("Authorization_RequestDenied", "Insufficient privileges"),
        )],
    );
    let err = client
        .graph_get("/v1.0/auditLogs/directoryAudits", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::Forbidden { ref code, .. } if code == "Authorization_RequestDenied"),
        "{err:?}"
    );

    server.script(
        "/v1.0/users/u1/mailboxSettings",
        vec![json_answer(
            404,
            graph_error("ErrorItemNotFound", "no mailbox"),
        )],
    );
    let err = client
        .graph_get("/v1.0/users/u1/mailboxSettings", &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, ApiError::NotFound { ref code, .. } if code == "ErrorItemNotFound"),
        "{err:?}"
    );
}

#[tokio::test]
async fn batch_round_trip_matches_answers_and_reports_throttled_items() {
    let server = TestServer::start().await;
    let client = server.client().await;
    server.script(
        "/v1.0/$batch",
        vec![json_answer(200, json!({"responses": [
            {"id": "2", "status": 429, "headers": {"Retry-After": "1", "x-ms-resource-unit": "1"},
             "body": graph_error("TooManyRequests", "slow down")},
            {"id": "1", "status": 200, "headers": {"Content-Type": "application/json", "x-ms-resource-unit": "1"},
             "body": {"userPurpose": "shared"}},
            {"id": "3", "status": 404, "body": graph_error("ErrorItemNotFound", "no mailbox")},
        ]}))],
    );
    let requests: Vec<BatchRequest> = ["1", "2", "3"]
        .iter()
        .map(|id| BatchRequest {
            id: (*id).into(),
            url: format!("/users/u{id}/mailboxSettings/userPurpose"),
            headers: vec![("ConsistencyLevel".into(), "eventual".into())],
        })
        .collect();
    let answers = client.graph_batch(requests).await.unwrap();

    let sent = server.seen("/v1.0/$batch")[0].body.clone().unwrap();
    assert_eq!(sent["requests"].as_array().unwrap().len(), 3);
    assert_eq!(sent["requests"][1]["method"], "GET");
    assert_eq!(
        sent["requests"][1]["url"],
        "/users/u2/mailboxSettings/userPurpose"
    );
    assert_eq!(
        sent["requests"][1]["headers"]["ConsistencyLevel"],
        "eventual"
    );

    let ids: Vec<&str> = answers.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(answers[0].body["userPurpose"], "shared");
    assert_eq!(answers[1].status, 429);
    assert_eq!(answers[1].retry_after, Some(Duration::from_secs(1)));
    assert_eq!(answers[2].status, 404);
    assert_eq!(answers[2].retry_after, None);
    let counters = client.counters();
    assert_eq!(counters.graph.throttled, 1);
    assert_eq!(counters.graph.resource_units, 2);

    let too_many: Vec<BatchRequest> = (0..21)
        .map(|i| BatchRequest {
            id: i.to_string(),
            url: "/users".into(),
            headers: vec![],
        })
        .collect();
    assert!(client.graph_batch(too_many).await.is_err());
    assert_eq!(server.seen("/v1.0/$batch").len(), 1);
}

#[tokio::test]
async fn resource_units_are_summed_from_response_headers() {
    let server = TestServer::start().await;
    let client = server.client().await;
    server.script(
        "/v1.0/users",
        vec![with_headers(
            200,
            &[("x-ms-resource-unit", "2")],
            json!({"value": []}),
        )],
    );
    server.script(
        "/v1.0/groups/g1/members",
        vec![with_headers(
            200,
            &[("x-ms-resource-unit", "3")],
            json!({"value": []}),
        )],
    );
    server.script(
        "/v1.0/organization",
        vec![json_answer(200, json!({"value": []}))],
    );
    client.graph_get("/v1.0/users", &[]).await.unwrap();
    client
        .graph_get("/v1.0/groups/g1/members", &[])
        .await
        .unwrap();
    client.graph_get("/v1.0/organization", &[]).await.unwrap();
    let counters = client.counters();
    assert_eq!(counters.graph.resource_units, 5);
    assert_eq!(counters.graph.requests, 3);
    let json = serde_json::to_value(&counters).unwrap();
    assert_eq!(json["graph"]["resource_units"], 5);
}

#[tokio::test]
async fn a_401_for_an_expired_token_renews_it_once_and_retries() {
    let server = TestServer::start().await;
    let client = server.client().await;
    client.check_credentials().await.unwrap(); // tok-1 (Graph), tok-2 (ARM)
    let graph_token = server
        .state
        .token_scopes
        .lock()
        .unwrap()
        .iter()
        .position(|s| s.contains("127.0.0.1"))
        .unwrap()
        + 1;
    server
        .state
        .rejected_tokens
        .lock()
        .unwrap()
        .insert(format!("tok-{graph_token}"));
    server.script("/v1.0/users", vec![json_answer(200, json!({"value": []}))]);

    client.graph_get("/v1.0/users", &[]).await.unwrap();
    let seen = server.seen("/v1.0/users");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].bearer, format!("tok-{graph_token}"));
    assert_eq!(seen[1].bearer, "tok-3");
    assert_eq!(client.counters().graph.by_status.get(&401), Some(&1));

    // Every token rejected: one renewal, then a clear authentication error.
    for n in 1..=10 {
        server
            .state
            .rejected_tokens
            .lock()
            .unwrap()
            .insert(format!("tok-{n}"));
    }
    let err = client.graph_get("/v1.0/users", &[]).await.unwrap_err();
    assert!(
        matches!(err, ApiError::Authentication { ref message } if message.contains("InvalidAuthenticationToken")),
        "{err:?}"
    );
    assert_eq!(server.seen("/v1.0/users").len(), 4);
}

#[tokio::test]
async fn tokens_close_to_expiry_are_renewed_before_use() {
    let server = TestServer::start().await;
    // azure_identity renews tokens within five minutes of expiry; a 60 s token is always "due".
    server.state.token_lifetime_secs.store(60, Ordering::SeqCst);
    let client = server.client().await;
    server.script(
        "/v1.0/users",
        vec![json_answer(200, json!({})), json_answer(200, json!({}))],
    );
    client.graph_get("/v1.0/users", &[]).await.unwrap();
    client.graph_get("/v1.0/users", &[]).await.unwrap();
    let bearers: Vec<String> = server
        .seen("/v1.0/users")
        .into_iter()
        .map(|s| s.bearer)
        .collect();
    assert_eq!(bearers, ["tok-1", "tok-2"]);
}

#[tokio::test]
async fn pages_are_followed_and_foreign_links_refused() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let port = server.addr.port();
    server.script(
        "/v1.0/users/delta",
        vec![json_answer(200, json!({"value": [{"id": "a"}], "@odata.nextLink": format!("https://127.0.0.1:{port}/v1.0/users/delta?$skiptoken=p2")}))],
    );
    server.script(
        "/v1.0/users/delta?$skiptoken=p2",
        vec![json_answer(
            200,
            json!({"value": [{"id": "b"}], "@odata.deltaLink": "d"}),
        )],
    );
    let pages: Vec<Value> = client
        .graph_pages("/v1.0/users/delta", &[])
        .map(|p| p.unwrap())
        .collect()
        .await;
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[1]["@odata.deltaLink"], "d");

    server.script("/subscriptions?api-version=2022-12-01", vec![json_answer(200, json!({"value": [1], "nextLink": format!("https://localhost:{port}/subscriptions?api-version=2022-12-01&$skiptoken=2")}))]);
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

    let err = client
        .graph_get("https://evil.example.com/v1.0/users?$skiptoken=x", &[])
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("refusing to send a token"),
        "{err}"
    );
}

#[tokio::test]
async fn concurrency_per_api_is_bounded() {
    let server = TestServer::start().await;
    let mut config = server.config(RIGHT_SECRET);
    config.max_concurrency = 2;
    let client = AzureClient::new(config).await.unwrap();
    server.script(
        "/v1.0/slow",
        (0..6)
            .map(|_| Scripted::Slow(Duration::from_millis(150)))
            .collect(),
    );
    let calls = (0..6).map(|_| client.graph_get("/v1.0/slow", &[]));
    for result in futures::future::join_all(calls).await {
        result.unwrap();
    }
    let max = server.state.max_in_flight.load(Ordering::SeqCst);
    assert!((1..=2).contains(&max), "max in flight {max}");
}

#[tokio::test]
async fn the_request_budget_spaces_requests() {
    let server = TestServer::start().await;
    let mut config = server.config(RIGHT_SECRET);
    config.graph_requests_per_minute = Some(120); // 2 per second, burst 2
    let client = AzureClient::new(config).await.unwrap();
    server.script(
        "/v1.0/users",
        (0..4).map(|_| json_answer(200, json!({}))).collect(),
    );
    for _ in 0..4 {
        client.graph_get("/v1.0/users", &[]).await.unwrap();
    }
    let counters = client.counters();
    // Two free slots, then two waits that add up to about one second.
    assert!(counters.graph.budget_wait_ms >= 800, "{counters:?}");
    assert_eq!(counters.graph.effective_requests_per_minute, Some(120.0));
}

#[tokio::test]
async fn throttling_slows_the_configured_budget_and_success_wins_it_back() {
    let server = TestServer::start().await;
    let mut config = server.config(RIGHT_SECRET);
    config.graph_requests_per_minute = Some(600);
    let client = AzureClient::new(config).await.unwrap();
    server.script(
        "/v1.0/users",
        vec![
            with_headers(
                429,
                &[("Retry-After", "0")],
                graph_error("TooManyRequests", "slow down"),
            ),
            json_answer(200, json!({})),
        ],
    );
    client.graph_get("/v1.0/users", &[]).await.unwrap();
    // Halved to 300 by the 429, then one success adds back 1/32 of 600.
    assert_eq!(
        client.counters().graph.effective_requests_per_minute,
        Some(318.75)
    );
    assert_eq!(client.counters().arm.effective_requests_per_minute, None);
}

#[tokio::test]
async fn writes_are_not_repeated_after_an_unknown_outcome_but_are_after_throttling() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let body = json!({"invitedUserEmailAddress": "guest@example.com"});
    server.script(
        "/v1.0/invitations",
        vec![
            json_answer(500, graph_error("generalException", "maybe applied")),
            with_headers(
                429,
                &[("Retry-After", "0")],
                graph_error("TooManyRequests", "not applied"),
            ),
            json_answer(201, json!({"id": "inv1"})),
        ],
    );
    let post = || client.write(Api::Graph, Method::POST, "/v1.0/invitations", Some(&body));
    let err = post().await.unwrap_err();
    assert!(err.to_string().contains("not retried"), "{err}");
    assert_eq!(server.seen("/v1.0/invitations").len(), 1);

    let created = post().await.unwrap();
    assert_eq!(created.status, 201);
    assert_eq!(created.body["id"], "inv1");
    let seen = server.seen("/v1.0/invitations");
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].body.as_ref(), Some(&body));
}

#[tokio::test]
async fn bad_configuration_is_refused_with_the_reason() {
    let server = TestServer::start().await;
    let mut config = server.config(RIGHT_SECRET);
    config.extra_ca_pem = Some(b"not a certificate".to_vec());
    let err = AzureClient::new(config).await.err().unwrap();
    assert!(err.to_string().contains("extra_ca_pem"), "{err}");

    let mut config = server.config(RIGHT_SECRET);
    config.max_concurrency = 0;
    let err = AzureClient::new(config).await.err().unwrap();
    assert!(err.to_string().contains("max_concurrency"), "{err}");

    let mut config = server.config(RIGHT_SECRET);
    config.endpoints.arm = Url::parse("http://management.example.com").unwrap();
    let err = AzureClient::new(config).await.err().unwrap();
    assert!(err.to_string().contains("arm endpoint"), "{err}");
}
