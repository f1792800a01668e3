//! Shared by the `emulator_http_*` tests: starts an emulator on 127.0.0.1:0 and talks to it with
//! a plain reqwest client that trusts only the emulator's CA (not the worker's azure client).
#![allow(dead_code)]

use std::time::Duration;

use emulator::{Emulator, EmulatorConfig, TenantSpec};
use reqwest::header::HeaderMap;
use serde_json::Value;

pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

pub struct Harness {
    pub emulator: Emulator,
    pub http: reqwest::Client,
    _ca_dir: tempfile::TempDir,
}

/// One answer: status, headers and the body as JSON (Null when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Harness {
    pub async fn start(spec: TenantSpec) -> Harness {
        Harness::start_with(spec, |_| {}).await
    }

    pub async fn start_with(spec: TenantSpec, adjust: impl FnOnce(&mut EmulatorConfig)) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir for the CA");
        let mut config = EmulatorConfig::new(spec, dir.path().to_path_buf());
        adjust(&mut config);
        let emulator = Emulator::start(config).await.expect("emulator starts");
        let ca =
            reqwest::Certificate::from_pem(emulator.ca_cert_pem().as_bytes()).expect("CA parses");
        let http = reqwest::Client::builder()
            .tls_certs_only([ca])
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client builds");
        Harness {
            emulator,
            http,
            _ca_dir: dir,
        }
    }

    /// Posts a client-credentials form and returns the raw answer.
    pub async fn token_request(&self, tenant: &str, pairs: &[(&str, &str)]) -> Answer {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            form.append_pair(k, v);
        }
        let url = format!(
            "{}/{tenant}/oauth2/v2.0/token",
            self.emulator.authority_host()
        );
        let response = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish())
            .send()
            .await
            .expect("token request is answered");
        answer(response).await
    }

    pub async fn token(&self, scope: &str) -> String {
        let client_id = self.emulator.client_id();
        let secret = self.emulator.client_secret();
        let answer = self
            .token_request(
                &self.emulator.tenant_id(),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &client_id),
                    ("client_secret", &secret),
                    ("scope", scope),
                ],
            )
            .await;
        assert_eq!(answer.status, 200, "token: {}", answer.body);
        answer.body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// GET a Graph path (`/v1.0/users`) or an absolute link, with a fresh Graph token.
    pub async fn graph_get(&self, path_or_url: &str, headers: &[(&str, &str)]) -> Answer {
        let token = self.token(GRAPH_SCOPE).await;
        self.send(
            reqwest::Method::GET,
            &self.graph_url(path_or_url),
            &token,
            headers,
            None,
        )
        .await
    }

    pub fn graph_url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.emulator.graph_url())
        }
    }

    pub fn arm_url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.emulator.arm_url())
        }
    }

    pub async fn arm_get(&self, path_or_url: &str) -> Answer {
        let token = self.token(ARM_SCOPE).await;
        self.send(
            reqwest::Method::GET,
            &self.arm_url(path_or_url),
            &token,
            &[],
            None,
        )
        .await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.http.request(method, url).bearer_auth(token);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        answer(request.send().await.expect("request is answered")).await
    }

    /// Follows `@odata.nextLink` to the end, returning every `value` item and the last page.
    pub async fn graph_all(&self, path: &str, headers: &[(&str, &str)]) -> (Vec<Value>, Value) {
        let mut items = Vec::new();
        let mut url = self.graph_url(path);
        loop {
            let page = self.graph_get(&url, headers).await;
            assert_eq!(page.status, 200, "{url}: {}", page.body);
            items.extend(page.body["value"].as_array().cloned().unwrap_or_default());
            match page.body["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => return (items, page.body),
            }
        }
    }

    /// Follows ARM `nextLink`s to the end.
    pub async fn arm_all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut url = self.arm_url(path);
        loop {
            let page = self.arm_get(&url).await;
            assert_eq!(page.status, 200, "{url}: {}", page.body);
            items.extend(page.body["value"].as_array().cloned().unwrap_or_default());
            match page.body["nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => return items,
            }
        }
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body is read");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}
