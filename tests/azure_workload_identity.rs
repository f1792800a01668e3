//! Workload identity (the Kubernetes webhook's environment) selected by config: the client
//! exchanges the projected service-account token for Entra tokens at the configured authority,
//! through the extra CA, as the configured identity. Its own test binary, because it sets process
//! environment variables.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use baton_azure_delta::azure::{AzureClient, ClientConfig, Credential, Endpoints};
use baton_azure_delta::config::{Config, Needs, Settings};
use baton_azure_delta::sync::setup;
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

/// The token endpoint and Graph's `/organization`, over TLS on loopback: its port, its
/// certificate (PEM) and the token requests' forms.
async fn serve_authority() -> (u16, String, Forms) {
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
    (port, cert_pem, forms)
}

/// The tests of this binary write the process environment; they take turns.
static ENVIRONMENT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Sets the variables the workload identity webhook injects.
fn set_webhook_environment(tenant: &str, client_id: &str, token_file: &std::path::Path) {
    // SAFETY: the caller holds ENVIRONMENT, and the client that reads these variables is built
    // afterwards; no other thread of this binary reads the environment meanwhile.
    unsafe {
        std::env::set_var("AZURE_TENANT_ID", tenant);
        std::env::set_var("AZURE_CLIENT_ID", client_id);
        std::env::set_var("AZURE_FEDERATED_TOKEN_FILE", token_file);
    }
}

#[tokio::test]
async fn workload_identity_gets_tokens_from_the_configured_authority() {
    let _environment = ENVIRONMENT.lock().await;
    let (port, cert_pem, forms) = serve_authority().await;
    let token_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token_file.path(), ASSERTION).unwrap();
    set_webhook_environment(TENANT, CLIENT_ID, token_file.path());

    let endpoints = Endpoints {
        authority_host: Url::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
        graph: Url::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
        arm: Url::parse(&format!("https://localhost:{port}")).unwrap(),
    };
    let credential = Credential::WorkloadIdentity {
        tenant_id: None,
        client_id: None,
    };
    let mut config = ClientConfig::new(endpoints, credential);
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

/// `azure-tenant-id` and `azure-client-id` override the pod's environment, as the configuration
/// documents: the worker signs in as the configured identity, not as the webhook's.
#[tokio::test]
async fn configured_ids_override_the_webhook_environment() {
    let _environment = ENVIRONMENT.lock().await;
    let (port, cert_pem, forms) = serve_authority().await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, ASSERTION).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert_pem).unwrap();
    set_webhook_environment(
        "00000000-0000-0000-0000-0000000000ff",
        "99999999-9999-4999-8999-999999999999",
        &token_file,
    );
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        format!(
            "credential = \"workload-identity\"\nazure-tenant-id = \"{TENANT}\"\n\
             azure-client-id = \"{CLIENT_ID}\"\ngraph-domain = \"127.0.0.1:{port}\"\n\
             ca-cert = \"{}\"\n",
            ca.display()
        ),
    )
    .unwrap();
    let settings = Settings::from_file(&file, "--config").unwrap();
    let config = Config::from_settings(&settings, Needs { credential: true }).unwrap();

    let client = setup::connect(&config).await;

    let forms = forms.lock().unwrap();
    let client_ids: Vec<&str> = forms.iter().map(|f| f["client_id"].as_str()).collect();
    assert!(client.is_ok(), "{:#}", client.err().unwrap());
    assert!(!client_ids.is_empty());
    assert!(
        client_ids.iter().all(|id| *id == CLIENT_ID),
        "{client_ids:?}"
    );
}
