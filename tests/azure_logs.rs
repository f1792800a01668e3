//! Logging of the azure client, in a test binary of its own: tracing caches per-callsite
//! interest across threads, so a test that installs a subscriber must not share its process
//! with tests that run without one.

mod azure_support;

use azure_support::*;
/// Collects everything logged on this thread (the test runtime is single-threaded, so the
/// client, azure_core, reqwest and the test server all log here).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_show_requests_but_never_secrets_or_tokens() {
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = TestServer::start().await;
    let wrong = "wrong-secret-Qz7";
    let rejected = AzureClient::new(server.config(wrong)).await.unwrap();
    assert!(rejected.check_credentials().await.is_err());

    let client = server.client().await;
    client.check_credentials().await.unwrap();
    server
        .state
        .rejected_tokens
        .lock()
        .unwrap()
        .insert("tok-1".into());
    server.script(
        "/v1.0/users",
        vec![
            with_headers(
                429,
                &[("Retry-After", "0")],
                graph_error("TooManyRequests", "wait"),
            ),
            json_answer(200, json!({"value": []})),
        ],
    );
    client.graph_get("/v1.0/users", &[]).await.unwrap();
    client.log_counters();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("endpoint=GET /v1.0/users"), "{text}");
    assert!(
        text.contains("status=429") && text.contains("status=200"),
        "{text}"
    );
    assert!(text.contains("azure request counters"), "{text}");
    for secret in [RIGHT_SECRET, wrong, "tok-1", "tok-2", "tok-3"] {
        assert!(!text.contains(secret), "{secret} appears in the logs");
    }
}
