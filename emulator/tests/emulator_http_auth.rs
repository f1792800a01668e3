//! The token endpoint and the bearer checks of Graph and ARM, each in its documented shape.

mod emulator_http_support;

use std::time::Duration;

use emulator::TenantSpec;
use emulator_http_support::{ARM_SCOPE, GRAPH_SCOPE, Harness};

#[tokio::test]
async fn ca_is_written_as_pem_and_token_has_documented_fields() {
    let h = Harness::start(TenantSpec::small()).await;
    let on_disk = std::fs::read_to_string(h.emulator.ca_cert_path()).expect("CA file exists");
    assert!(on_disk.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(on_disk, h.emulator.ca_cert_pem());

    let id = h.emulator.client_id();
    let secret = h.emulator.client_secret();
    let answer = h
        .token_request(
            &h.emulator.tenant_id(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", GRAPH_SCOPE),
            ],
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 3600);
    assert_eq!(answer.body["ext_expires_in"], 3600);
    assert!(
        answer.body["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    let counts = h.emulator.control().request_counts();
    assert_eq!(
        counts.by_api.get("token"),
        Some(&1),
        "token requests are counted: {counts:?}"
    );
}

#[tokio::test]
async fn wrong_secret_tenant_and_client_get_aadsts_errors() {
    let h = Harness::start(TenantSpec::small()).await;
    let id = h.emulator.client_id();
    let tenant = h.emulator.tenant_id();
    let wrong_secret = h
        .token_request(
            &tenant,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "nope"),
                ("scope", GRAPH_SCOPE),
            ],
        )
        .await;
    assert_eq!(wrong_secret.status, 401);
    assert_eq!(wrong_secret.body["error"], "invalid_client");
    assert_eq!(wrong_secret.body["error_codes"][0], 7000215);
    for field in [
        "error_description",
        "timestamp",
        "trace_id",
        "correlation_id",
    ] {
        assert!(
            wrong_secret.body[field].is_string(),
            "{field} missing: {}",
            wrong_secret.body
        );
    }
    assert!(
        wrong_secret.body["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with("AADSTS7000215:"))
    );
    assert!(
        !wrong_secret
            .body
            .to_string()
            .contains(&h.emulator.client_secret()),
        "secret leaked"
    );

    let secret = h.emulator.client_secret();
    let unknown_tenant = h
        .token_request(
            "00000000-0000-0000-0000-000000000001",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", GRAPH_SCOPE),
            ],
        )
        .await;
    assert_eq!(unknown_tenant.status, 400);
    assert_eq!(unknown_tenant.body["error_codes"][0], 90002);

    let unknown_client = h
        .token_request(
            &tenant,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "11111111-1111-1111-1111-111111111111"),
                ("client_secret", &secret),
                ("scope", GRAPH_SCOPE),
            ],
        )
        .await;
    assert_eq!(unknown_client.status, 400);
    assert_eq!(unknown_client.body["error_codes"][0], 700016);

    let two_resources = format!("{GRAPH_SCOPE} {ARM_SCOPE}");
    let mixed = h
        .token_request(
            &tenant,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("scope", &two_resources),
            ],
        )
        .await;
    assert_eq!(mixed.status, 400);
    assert_eq!(mixed.body["error"], "invalid_scope");
}

#[tokio::test]
async fn each_api_refuses_the_other_audience_in_its_own_shape() {
    let h = Harness::start(TenantSpec::small()).await;
    let graph_token = h.token(GRAPH_SCOPE).await;
    let arm_token = h.token(ARM_SCOPE).await;
    // The emulator's own listener URLs select the audience too, as the worker asks for them.
    let own_arm_scope = format!("{}/.default", h.emulator.arm_url());
    let own_arm_token = h.token(&own_arm_scope).await;

    let graph_with_arm = h
        .send(
            reqwest::Method::GET,
            &h.graph_url("/v1.0/users"),
            &arm_token,
            &[],
            None,
        )
        .await;
    assert_eq!(graph_with_arm.status, 401);
    assert_eq!(
        graph_with_arm.body["error"]["code"],
        "InvalidAuthenticationToken"
    );
    assert!(graph_with_arm.body["error"]["innerError"]["request-id"].is_string());
    assert!(graph_with_arm.body["error"]["innerError"]["date"].is_string());

    let url = h.arm_url("/subscriptions?api-version=2022-12-01");
    let arm_with_graph = h
        .send(reqwest::Method::GET, &url, &graph_token, &[], None)
        .await;
    assert_eq!(arm_with_graph.status, 401);
    assert_eq!(
        arm_with_graph.body["error"]["code"],
        "InvalidAuthenticationTokenAudience"
    );
    assert!(arm_with_graph.body["error"].get("innerError").is_none());

    let ok = h
        .send(reqwest::Method::GET, &url, &own_arm_token, &[], None)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let missing = h
        .http
        .get(h.graph_url("/v1.0/users"))
        .send()
        .await
        .expect("answered");
    assert_eq!(missing.status().as_u16(), 401);
    let missing_arm = h.http.get(&url).send().await.expect("answered");
    assert_eq!(missing_arm.status().as_u16(), 401);
    let body: serde_json::Value = missing_arm.json().await.expect("json");
    assert_eq!(body["error"]["code"], "AuthenticationFailed");
}

#[tokio::test]
async fn tokens_expire_on_the_emulator_clock() {
    let h = Harness::start_with(TenantSpec::small(), |c| {
        c.token_lifetime = Duration::from_secs(300)
    })
    .await;
    let graph_token = h.token(GRAPH_SCOPE).await;
    let arm_token = h.token(ARM_SCOPE).await;
    h.emulator.control().advance_clock(Duration::from_secs(301));
    let graph = h
        .send(
            reqwest::Method::GET,
            &h.graph_url("/v1.0/organization"),
            &graph_token,
            &[],
            None,
        )
        .await;
    assert_eq!(graph.status, 401);
    assert!(
        graph.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired"))
    );
    let arm = h
        .send(
            reqwest::Method::GET,
            &h.arm_url("/subscriptions?api-version=2022-12-01"),
            &arm_token,
            &[],
            None,
        )
        .await;
    assert_eq!(arm.status, 401);
    assert_eq!(arm.body["error"]["code"], "ExpiredAuthenticationToken");
}

#[tokio::test]
async fn azure_identity_client_secret_credential_accepts_the_token_endpoint() {
    use azure_core::credentials::TokenCredential;
    use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};

    let h = Harness::start(TenantSpec::small()).await;
    let transport = azure_core::http::Transport::new(std::sync::Arc::new(h.http.clone()));
    let mut options = ClientSecretCredentialOptions::default();
    options.client_options.transport = Some(transport);
    let mut cloud = azure_core::cloud::CustomConfiguration::default();
    cloud.authority_host = h.emulator.authority_host();
    options.client_options.cloud = Some(std::sync::Arc::new(cloud.into()));
    let credential = ClientSecretCredential::new(
        &h.emulator.tenant_id(),
        h.emulator.client_id(),
        h.emulator.client_secret().into(),
        Some(options),
    )
    .expect("credential builds");
    let token = credential
        .get_token(&[GRAPH_SCOPE], None)
        .await
        .expect("token from the emulator");
    let users = h
        .send(
            reqwest::Method::GET,
            &h.graph_url("/v1.0/users?$top=1"),
            token.token.secret(),
            &[],
            None,
        )
        .await;
    assert_eq!(users.status, 200, "{}", users.body);
}
