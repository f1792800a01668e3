//! Workload identity (the Kubernetes webhook's environment) selected by config: the client
//! exchanges the projected service-account token for Entra tokens at the configured authority,
//! through the extra CA. Its own test binary, because it sets process environment variables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use baton_azure_delta::azure::{AzureClient, ClientConfig, Credential, Endpoints};
use serde_json::json;
use url::Url;

const TENANT: &str = "00000000-0000-0000-0000-00000000bbbb";
const CLIENT_ID: &str = "22222222-3333-4444-5555-666666666666";
const ASSERTION: &str = "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig";

type Forms = Arc<Mutex<Vec<HashMap<String, String>>>>;

async fn token(
    State(forms): State<Forms>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let accepted = tenant == TENANT
        && form.get("client_assertion").map(String::as_str) == Some(ASSERTION)
        && form.get("client_id").map(String::as_str) == Some(CLIENT_ID);
    forms.lock().unwrap().push(form);
    if !accepted {
        let body = json!({"error": "invalid_client", "error_description": "AADSTS700213: No matching federated identity record found", "error_codes": [700213]});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    axum::Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "wi-token"}))
        .into_response()
}

#[tokio::test]
async fn workload_identity_gets_tokens_from_the_configured_authority() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .unwrap();
    let cert_pem = cert.cert.pem();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert_pem.clone().into_bytes(),
        cert.signing_key.serialize_pem().into_bytes(),
    )
    .await
    .unwrap();
    let forms: Forms = Arc::default();
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/v1.0/organization",
            get(|| async { axum::Json(json!({"value": [{"id": TENANT}]})) }),
        )
        .with_state(forms.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
    tokio::spawn(async move { server.serve(app.into_make_service()).await });

    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), ASSERTION).unwrap();
    // SAFETY: this binary holds this one test on a single-threaded runtime; nothing else reads
    // the environment while it is written (the client that reads it is built afterwards).
    unsafe {
        std::env::set_var("AZURE_TENANT_ID", TENANT);
        std::env::set_var("AZURE_CLIENT_ID", CLIENT_ID);
        std::env::set_var("AZURE_FEDERATED_TOKEN_FILE", token_file.path());
    }

    let endpoints = Endpoints {
        authority_host: Url::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
        graph: Url::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
        arm: Url::parse(&format!("https://localhost:{port}")).unwrap(),
    };
    let mut config = ClientConfig::new(endpoints, Credential::WorkloadIdentity);
    config.extra_ca_pem = Some(cert_pem.into_bytes());
    let client = AzureClient::new(config).await.unwrap();
    client.check_credentials().await.unwrap();
    let org = client.graph_get("/v1.0/organization", &[]).await.unwrap();
    assert_eq!(org["value"][0]["id"], TENANT);

    let forms = forms.lock().unwrap();
    let scopes: Vec<&str> = forms.iter().map(|f| f["scope"].as_str()).collect();
    assert_eq!(
        scopes,
        [
            format!("https://127.0.0.1:{port}/.default"),
            format!("https://localhost:{port}/.default")
        ]
    );
    assert!(forms.iter().all(|f| f.get("client_secret").is_none()));
}
