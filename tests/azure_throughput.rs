//! Benchmark (ignored by default, prints numbers, asserts none): how many Graph GETs per second
//! the pipeline (budget, semaphore, token cache, TLS, JSON parsing, counters) sustains against a
//! local TLS server answering a 100-user page.
//!
//! Run: `cargo test --release --test azure_throughput -- --ignored --nocapture`

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use baton_azure_delta::azure::{AzureClient, ClientConfig, Credential, Endpoints, Secret};
use serde_json::{Value, json};
use url::Url;

fn users_page() -> Value {
    let users: Vec<Value> = (0..100)
        .map(|i| {
            json!({
                "id": format!("{i:08}-0000-4000-8000-000000000000"),
                "displayName": format!("User {i}"),
                "userPrincipalName": format!("user{i}@contoso.example"),
                "accountEnabled": true,
                "mail": format!("user{i}@contoso.example"),
                "jobTitle": "Engineer",
            })
        })
        .collect();
    json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users", "value": users})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn graph_get_throughput() {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        cert_pem.clone().into_bytes(),
        cert.signing_key.serialize_pem().into_bytes(),
    )
    .await
    .unwrap();
    let page = users_page().to_string();
    let page_bytes = page.len();
    let app = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(|| async {
                axum::Json(
                    json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "bench"}),
                )
            }),
        )
        .route(
            "/v1.0/users",
            get(move || {
                let page = page.clone();
                async move {
                    (
                        [
                            ("content-type", "application/json"),
                            ("x-ms-resource-unit", "2"),
                        ],
                        page,
                    )
                }
            }),
        );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // TCP_NODELAY on the server side too, or Nagle + delayed ACK add ~40 ms per request.
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    let server = axum_server::from_tcp(listener).unwrap().acceptor(acceptor);
    tokio::spawn(async move { server.serve(app.into_make_service()).await });

    let root = Url::parse(&format!("https://127.0.0.1:{port}")).unwrap();
    let endpoints = Endpoints {
        authority_host: root.clone(),
        graph: root.clone(),
        arm: root,
    };
    let mut config = ClientConfig::new(
        endpoints,
        Credential::ClientSecret {
            tenant_id: "00000000-0000-0000-0000-00000000cccc".into(),
            client_id: "bench".into(),
            client_secret: Secret::new("bench-secret"),
        },
    );
    config.extra_ca_pem = Some(cert_pem.into_bytes());
    let client = AzureClient::new(config).await.unwrap();
    client.check_credentials().await.unwrap();

    for (workers, per_worker) in [(1, 300), (8, 250)] {
        let started = Instant::now();
        let tasks: Vec<_> = (0..workers)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut slowest = Duration::ZERO;
                    for _ in 0..per_worker {
                        let t = Instant::now();
                        let page = client.graph_get("/v1.0/users", &[]).await.unwrap();
                        assert_eq!(page["value"].as_array().map(Vec::len), Some(100));
                        slowest = slowest.max(t.elapsed());
                    }
                    slowest
                })
            })
            .collect();
        let mut slowest = Duration::ZERO;
        for task in tasks {
            slowest = slowest.max(task.await.unwrap());
        }
        let elapsed = started.elapsed();
        let total = workers * per_worker;
        println!(
            "graph_get x{total} ({workers} concurrent, {page_bytes} B pages): {:.0} req/s, {:.2} ms mean per request per worker, {:.1} ms slowest",
            total as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / per_worker as f64,
            slowest.as_secs_f64() * 1000.0,
        );
    }
    println!("{}", client.counters());
}
