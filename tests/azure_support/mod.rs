//! The scripted TLS test server (token endpoint + Graph + ARM) the azure client tests run against.
#![allow(dead_code, unused_imports)]

pub use std::collections::{HashMap, HashSet, VecDeque};
pub use std::net::SocketAddr;
pub use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
pub use std::sync::{Arc, Mutex};
pub use std::time::{Duration, Instant};

pub use axum::Router;
pub use axum::body::{Body, Bytes};
pub use axum::extract::{Form, Path, State};
pub use axum::http::{HeaderMap, Method, StatusCode, Uri};
pub use axum::response::{IntoResponse, Response};
pub use axum::routing::post;
pub use baton_azure_delta::azure::{
    ApiError, AzureClient, BatchRequest, ClientConfig, Credential, Endpoints, RetryPolicy, Secret,
};
pub use futures::StreamExt;
pub use serde_json::{Value, json};
pub use url::Url;

pub const TENANT: &str = "00000000-0000-0000-0000-00000000aaaa";
pub const RIGHT_SECRET: &str = "right-secret-value";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// One scripted answer for one `path?query`.
pub enum Scripted {
    Json {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// The handler panics: the connection is torn down with no answer.
    Drop,
    /// Never answers (the client's timeout must fire).
    Hang,
    /// 200, part of a JSON body, then the body stream fails.
    Truncated,
    /// Sleeps, then answers 200 (for concurrency measurements).
    Slow(Duration),
}

pub fn json_answer(status: u16, body: Value) -> Scripted {
    Scripted::Json {
        status,
        headers: vec![],
        body: body.to_string(),
    }
}

pub fn with_headers(status: u16, headers: &[(&'static str, &str)], body: Value) -> Scripted {
    Scripted::Json {
        status,
        headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        body: body.to_string(),
    }
}

pub fn graph_error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message, "innerError": {"request-id": "r1"}}})
}

/// What the server saw of one API request.
#[derive(Clone)]
pub struct Seen {
    pub path_and_query: String,
    pub bearer: String,
    pub body: Option<Value>,
    pub at: Instant,
}

#[derive(Default)]
pub struct ServerState {
    pub scripts: Mutex<HashMap<String, VecDeque<Scripted>>>,
    pub seen: Mutex<Vec<Seen>>,
    pub token_scopes: Mutex<Vec<String>>,
    pub issued: AtomicU64,
    pub token_lifetime_secs: AtomicI64,
    pub rejected_tokens: Mutex<HashSet<String>>,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub ca_pem: Vec<u8>,
    pub state: Arc<ServerState>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let cert = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .unwrap();
        let cert_pem = cert.cert.pem();
        let key_pem = cert.signing_key.serialize_pem();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            cert_pem.clone().into_bytes(),
            key_pem.into_bytes(),
        )
        .await
        .unwrap();
        let state = Arc::new(ServerState::default());
        state.token_lifetime_secs.store(3600, Ordering::SeqCst);
        let app = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .fallback(api)
            .with_state(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = axum_server::from_tcp_rustls(listener, tls).unwrap();
        tokio::spawn(async move { server.serve(app.into_make_service()).await });
        TestServer {
            addr,
            ca_pem: cert_pem.into_bytes(),
            state,
        }
    }

    /// Graph on `https://127.0.0.1:port`, ARM on `https://localhost:port`: one server, but two
    /// origins, so the two token audiences differ as they do against Microsoft.
    pub fn endpoints(&self) -> Endpoints {
        let port = self.addr.port();
        Endpoints {
            authority_host: Url::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
            graph: Url::parse(&format!("https://127.0.0.1:{port}")).unwrap(),
            arm: Url::parse(&format!("https://localhost:{port}")).unwrap(),
        }
    }

    pub fn config(&self, secret: &str) -> ClientConfig {
        let mut config = ClientConfig::new(
            self.endpoints(),
            Credential::ClientSecret {
                tenant_id: TENANT.into(),
                client_id: CLIENT_ID.into(),
                client_secret: Secret::new(secret),
            },
        );
        config.extra_ca_pem = Some(self.ca_pem.clone());
        config.retry = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(30),
        };
        config.request_timeout = Duration::from_secs(5);
        config
    }

    pub async fn client(&self) -> AzureClient {
        AzureClient::new(self.config(RIGHT_SECRET)).await.unwrap()
    }

    pub fn script(&self, path_and_query: &str, answers: Vec<Scripted>) {
        self.state
            .scripts
            .lock()
            .unwrap()
            .entry(path_and_query.to_owned())
            .or_default()
            .extend(answers);
    }

    pub fn seen(&self, path_and_query: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path_and_query == path_and_query)
            .cloned()
            .collect()
    }

    pub fn tokens_issued(&self) -> u64 {
        self.state.issued.load(Ordering::SeqCst)
    }
}

pub async fn token(
    State(state): State<Arc<ServerState>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if tenant != TENANT {
        let body = json!({
            "error": "invalid_request",
            "error_description": format!("AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
            "error_codes": [90002],
            "timestamp": "2026-11-26 04:00:00Z",
            "trace_id": "t", "correlation_id": "c"
        });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    if let Some(client) = form.get("client_id").filter(|c| c.as_str() != CLIENT_ID) {
        let body = json!({
            "error": "unauthorized_client",
            "error_description": format!("AADSTS700016: Application with identifier '{client}' was not found in the directory 'Contoso'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
            "error_codes": [700016],
            "timestamp": "2026-11-26 04:00:00Z",
            "trace_id": "t", "correlation_id": "c"
        });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    if form.get("client_secret").map(String::as_str) != Some(RIGHT_SECRET) {
        let body = json!({
            "error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
            "error_codes": [7000215],
            "timestamp": "2026-11-26 04:00:00Z",
            "trace_id": "t", "correlation_id": "c"
        });
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    state
        .token_scopes
        .lock()
        .unwrap()
        .push(form.get("scope").cloned().unwrap_or_default());
    let n = state.issued.fetch_add(1, Ordering::SeqCst) + 1;
    let lifetime = state.token_lifetime_secs.load(Ordering::SeqCst);
    axum::Json(json!({
        "token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
        "access_token": format!("tok-{n}")
    }))
    .into_response()
}

pub async fn api(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    state.seen.lock().unwrap().push(Seen {
        path_and_query: path_and_query.clone(),
        bearer: bearer.clone(),
        body: serde_json::from_slice(&body).ok(),
        at: Instant::now(),
    });
    if !bearer.starts_with("tok-") || state.rejected_tokens.lock().unwrap().contains(&bearer) {
        let body = graph_error(
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        );
        return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    }
    let next = state
        .scripts
        .lock()
        .unwrap()
        .get_mut(&path_and_query)
        .and_then(VecDeque::pop_front);
    match next {
        None => {
            let body = graph_error(
                "Request_ResourceNotFound",
                &format!("{method} {path_and_query} not scripted"),
            );
            (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        }
        Some(Scripted::Json {
            status,
            headers,
            body,
        }) => {
            let mut response = Response::builder()
                .status(status)
                .header("content-type", "application/json");
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(Body::from(body)).unwrap()
        }
        Some(Scripted::Drop) => panic!("scripted connection drop"),
        Some(Scripted::Hang) => std::future::pending().await,
        Some(Scripted::Truncated) => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"value\":[{\"id\":\"1\"}")),
                Err(std::io::Error::other("scripted truncation")),
            ];
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
        Some(Scripted::Slow(delay)) => {
            let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            state.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            axum::Json(json!({"ok": true})).into_response()
        }
    }
}
