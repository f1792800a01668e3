//! A fake ConductorOne for the service-mode tests, written from baton-sdk's documented messages
//! (`c1.connectorapi.baton.v1.BatonService`) and token exchange: one TLS port on loopback (a
//! test CA) serving `POST /auth/v1/token`, which checks the client assertion's EdDSA signature
//! and claims, and the gRPC service, which checks the bearer token on every call. Tests queue
//! tasks, cancel them, make upload streams drop, and stop and restart the server on its port.
#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsConfig;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use baton_azure_delta::service::proto::{self, Task};
use prost::Message;
use ring::signature::{self, KeyPair};
use tonic::codegen::http;
use tonic::server::{ClientStreamingService, Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status, Streaming};

pub const CLIENT_ID: &str = "baton-azure-delta@tenant.c1.test/worker";
/// The audience the assertion must carry: the client id's host.
pub const AUDIENCE: &str = "tenant.c1.test";

/// A client secret in ConductorOne's format for `seed`.
pub fn client_secret(seed: [u8; 32]) -> String {
    let pair = signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let jwk = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519",
        "d": URL_SAFE_NO_PAD.encode(seed),
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
    });
    format!(
        "secret-token:conductorone.com:v1:{}",
        URL_SAFE_NO_PAD.encode(jwk.to_string())
    )
}

pub fn public_key(seed: [u8; 32]) -> Vec<u8> {
    let pair = signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    pair.public_key().as_ref().to_vec()
}

/// What a finished task reported.
#[derive(Clone, Debug)]
pub struct Finished {
    pub request: proto::FinishTaskRequest,
    pub at: Instant,
}

/// A received upload.
#[derive(Clone, Debug, Default)]
pub struct Upload {
    pub host_id: String,
    pub bytes: Vec<u8>,
    pub chunks: usize,
    pub checksum_ok: bool,
}

#[derive(Default)]
pub struct FakeState {
    /// The public key the token endpoint verifies assertions with.
    pub public_key: Mutex<Vec<u8>>,
    /// Lifetime (`expires_in`) of issued tokens, in seconds.
    pub token_lifetime: AtomicU64,
    pub tokens_issued: AtomicUsize,
    /// Token -> when it expires.
    tokens: Mutex<BTreeMap<String, Instant>>,
    pub rejected_assertions: AtomicUsize,
    pub hellos: Mutex<Vec<proto::HelloRequest>>,
    pub get_tasks: AtomicUsize,
    pub unauthenticated_calls: AtomicUsize,
    pub tasks: Mutex<VecDeque<Task>>,
    /// `next_poll` and `next_heartbeat` handed out, in milliseconds.
    pub next_poll_ms: AtomicU64,
    pub heartbeat_ms: AtomicU64,
    pub heartbeats: Mutex<Vec<String>>,
    /// Task ids whose next heartbeat answers `cancelled`.
    pub cancel: Mutex<Vec<String>>,
    pub finished: Mutex<Vec<Finished>>,
    pub uploads: Mutex<BTreeMap<String, Upload>>,
    /// Upload streams to break after their first data chunk.
    pub drop_uploads: AtomicUsize,
    pub upload_attempts: AtomicUsize,
}

impl FakeState {
    pub fn push_task(&self, task: Task) {
        self.tasks.lock().unwrap().push_back(task);
    }

    pub fn finished(&self, task_id: &str) -> Option<Finished> {
        self.finished
            .lock()
            .unwrap()
            .iter()
            .find(|f| f.request.task_id == task_id)
            .cloned()
    }

    /// Waits until `task_id` is finished.
    pub async fn wait_finished(&self, task_id: &str, limit: Duration) -> Finished {
        let start = Instant::now();
        loop {
            if let Some(f) = self.finished(task_id) {
                return f;
            }
            assert!(
                start.elapsed() < limit,
                "task {task_id} not finished within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn check_token<T>(&self, request: &Request<T>) -> Result<(), Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .unwrap_or_default();
        match self.tokens.lock().unwrap().get(token) {
            Some(expiry) if Instant::now() < *expiry => Ok(()),
            _ => {
                self.unauthenticated_calls.fetch_add(1, Ordering::SeqCst);
                Err(Status::unauthenticated("no valid access token"))
            }
        }
    }
}

/// A 27-character task id, as baton.proto requires.
pub fn task_id(n: u32) -> String {
    format!("{:0>27}", format!("task{n}"))
}

pub fn task(n: u32, task_type: proto::TaskType) -> Task {
    Task {
        id: task_id(n),
        status: 1,
        debug: false,
        task_type: Some(task_type),
    }
}

pub struct FakeConductorOne {
    pub state: Arc<FakeState>,
    pub address: SocketAddr,
    pub ca_pem: String,
    tls: RustlsConfig,
    handle: Handle<SocketAddr>,
}

impl FakeConductorOne {
    pub async fn start(secret_seed: [u8; 32]) -> FakeConductorOne {
        let (ca_pem, server_config) = test_tls();
        let tls = RustlsConfig::from_config(Arc::new(server_config));
        let state = Arc::new(FakeState::default());
        *state.public_key.lock().unwrap() = public_key(secret_seed);
        state.token_lifetime.store(3600, Ordering::SeqCst);
        state.next_poll_ms.store(50, Ordering::SeqCst);
        state.heartbeat_ms.store(1000, Ordering::SeqCst);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let handle = serve(listener, tls.clone(), state.clone());
        FakeConductorOne {
            state,
            address,
            ca_pem,
            tls,
            handle,
        }
    }

    /// Stops answering: open connections are closed, the port refuses.
    pub async fn stop(&self) {
        self.handle.shutdown();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// Serves again on the same port.
    pub async fn restart(&mut self) {
        let mut attempts = 0;
        let listener = loop {
            match std::net::TcpListener::bind(self.address) {
                Ok(l) => break l,
                Err(e) if attempts < 50 => {
                    attempts += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot bind {} again: {e}", self.address),
            }
        };
        self.handle = serve(listener, self.tls.clone(), self.state.clone());
    }

    /// `host:port` for `--c1-api-host`.
    pub fn api_host(&self) -> String {
        self.address.to_string()
    }
}

fn serve(
    listener: std::net::TcpListener,
    tls: RustlsConfig,
    state: Arc<FakeState>,
) -> Handle<SocketAddr> {
    listener.set_nonblocking(true).unwrap();
    let handle = Handle::new();
    let grpc = tonic::service::Routes::new(BatonService {
        state: state.clone(),
    })
    .into_axum_router();
    let router = grpc.route("/auth/v1/token", post(token).with_state(state));
    let server = axum_server::from_tcp_rustls(listener, tls)
        .unwrap()
        .handle(handle.clone());
    tokio::spawn(async move {
        let _ = server.serve(router.into_make_service()).await;
    });
    handle
}

/// A CA and a leaf for 127.0.0.1, the rustls configuration presenting it (h2 and http/1.1).
fn test_tls() -> (String, rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        leaf_key.serialize_der(),
    ));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (ca_cert.pem(), config)
}

/// `POST /auth/v1/token`: an OAuth2 client-credentials grant with a JWT-bearer assertion.
async fn token(
    State(state): State<Arc<FakeState>>,
    axum::Form(form): axum::Form<BTreeMap<String, String>>,
) -> (http::StatusCode, axum::Json<serde_json::Value>) {
    let refuse = |why: &str| {
        state.rejected_assertions.fetch_add(1, Ordering::SeqCst);
        (
            http::StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "invalid_client", "error_description": why})),
        )
    };
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials"
        || field("client_assertion_type")
            != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        || field("client_id") != CLIENT_ID
    {
        return refuse("bad form");
    }
    let parts: Vec<&str> = field("client_assertion").split('.').collect();
    let [header, claims, sig] = parts.as_slice() else {
        return refuse("not a compact JWS");
    };
    let public = state.public_key.lock().unwrap().clone();
    let verified = URL_SAFE_NO_PAD.decode(sig).ok().is_some_and(|sig| {
        signature::UnparsedPublicKey::new(&signature::ED25519, &public)
            .verify(format!("{header}.{claims}").as_bytes(), &sig)
            .is_ok()
    });
    if !verified {
        return refuse("signature does not verify");
    }
    let decode = |part: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default())
            .unwrap_or_default()
    };
    let (header, claims) = (decode(header), decode(claims));
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let number = |k: &str| claims[k].as_i64().unwrap_or(i64::MIN);
    if header["alg"] != "EdDSA"
        || header["nonce"].as_str().is_none_or(str::is_empty)
        || claims["iss"] != CLIENT_ID
        || claims["sub"] != CLIENT_ID
        || claims["aud"] != AUDIENCE
        || number("exp") < now
        || number("nbf") > now
        || number("exp") - number("iat") > 120
    {
        return refuse("claims");
    }
    let n = state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    let lifetime = state.token_lifetime.load(Ordering::SeqCst);
    let token = format!("token-{n}-{}", rand_suffix());
    state.tokens.lock().unwrap().insert(
        token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    );
    (
        http::StatusCode::OK,
        axum::Json(serde_json::json!({
            "access_token": token, "token_type": "bearer", "expires_in": lifetime,
        })),
    )
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

fn millis(ms: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: (ms / 1000) as i64,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// The gRPC service, routed by method path.
#[derive(Clone)]
struct BatonService {
    state: Arc<FakeState>,
}

impl NamedService for BatonService {
    const NAME: &'static str = proto::SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Reply<T> = BoxFuture<Result<Response<T>, Status>>;

/// One unary method: its handler, given the shared state.
struct Method<Req, Resp> {
    state: Arc<FakeState>,
    handler: fn(Arc<FakeState>, Request<Req>) -> Reply<Resp>,
}

impl<Req, Resp> UnaryService<Req> for Method<Req, Resp> {
    type Response = Resp;
    type Future = Reply<Resp>;
    fn call(&mut self, request: Request<Req>) -> Self::Future {
        (self.handler)(self.state.clone(), request)
    }
}

struct UploadMethod(Arc<FakeState>);

impl ClientStreamingService<proto::UploadAssetRequest> for UploadMethod {
    type Response = proto::UploadAssetResponse;
    type Future = Reply<proto::UploadAssetResponse>;
    fn call(&mut self, request: Request<Streaming<proto::UploadAssetRequest>>) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move { receive_upload(&state, request).await })
    }
}

async fn unary<Req, Resp>(
    request: http::Request<tonic::body::Body>,
    state: Arc<FakeState>,
    handler: fn(Arc<FakeState>, Request<Req>) -> Reply<Resp>,
) -> http::Response<tonic::body::Body>
where
    Req: Message + Default + Send + 'static,
    Resp: Message + Send + 'static,
{
    let mut grpc = Grpc::new(tonic_prost::ProstCodec::<Resp, Req>::default());
    grpc.unary(Method { state, handler }, request).await
}

fn hello(s: Arc<FakeState>, r: Request<proto::HelloRequest>) -> Reply<proto::HelloResponse> {
    Box::pin(async move {
        s.check_token(&r)?;
        s.hellos.lock().unwrap().push(r.into_inner());
        Ok(Response::new(proto::HelloResponse::default()))
    })
}

fn get_task(s: Arc<FakeState>, r: Request<proto::GetTaskRequest>) -> Reply<proto::GetTaskResponse> {
    Box::pin(async move {
        s.check_token(&r)?;
        s.get_tasks.fetch_add(1, Ordering::SeqCst);
        let task = s.tasks.lock().unwrap().pop_front();
        Ok(Response::new(proto::GetTaskResponse {
            task,
            next_poll: Some(millis(s.next_poll_ms.load(Ordering::SeqCst))),
            next_heartbeat: Some(millis(s.heartbeat_ms.load(Ordering::SeqCst))),
            annotations: Vec::new(),
        }))
    })
}

fn heartbeat(
    s: Arc<FakeState>,
    r: Request<proto::HeartbeatRequest>,
) -> Reply<proto::HeartbeatResponse> {
    Box::pin(async move {
        s.check_token(&r)?;
        let id = r.into_inner().task_id;
        s.heartbeats.lock().unwrap().push(id.clone());
        let cancelled = s.cancel.lock().unwrap().contains(&id);
        Ok(Response::new(proto::HeartbeatResponse {
            next_heartbeat: Some(millis(s.heartbeat_ms.load(Ordering::SeqCst))),
            cancelled,
            annotations: Vec::new(),
        }))
    })
}

fn finish_task(
    s: Arc<FakeState>,
    r: Request<proto::FinishTaskRequest>,
) -> Reply<proto::FinishTaskResponse> {
    Box::pin(async move {
        s.check_token(&r)?;
        s.finished.lock().unwrap().push(Finished {
            request: r.into_inner(),
            at: Instant::now(),
        });
        Ok(Response::new(proto::FinishTaskResponse::default()))
    })
}

impl tonic::codegen::Service<http::Request<tonic::body::Body>> for BatonService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let s = self.state.clone();
        let path = request.uri().path().to_string();
        Box::pin(async move {
            let response = match path.as_str() {
                proto::HELLO => unary(request, s, hello).await,
                proto::GET_TASK => unary(request, s, get_task).await,
                proto::HEARTBEAT => unary(request, s, heartbeat).await,
                proto::FINISH_TASK => unary(request, s, finish_task).await,
                proto::UPLOAD_ASSET => {
                    let mut grpc = Grpc::new(tonic_prost::ProstCodec::<
                        proto::UploadAssetResponse,
                        proto::UploadAssetRequest,
                    >::default());
                    grpc.client_streaming(UploadMethod(s), request).await
                }
                _ => Status::unimplemented(format!("no method {path}")).into_http(),
            };
            Ok(response)
        })
    }
}

async fn receive_upload(
    s: &FakeState,
    r: Request<Streaming<proto::UploadAssetRequest>>,
) -> Result<Response<proto::UploadAssetResponse>, Status> {
    s.check_token(&r)?;
    s.upload_attempts.fetch_add(1, Ordering::SeqCst);
    let mut stream = r.into_inner();
    let mut upload = Upload::default();
    let mut task = None;
    while let Some(message) = stream.message().await? {
        match message.msg {
            Some(proto::UploadMsg::Metadata(m)) => {
                upload.host_id = m.host_id;
                task = Some(m.task_id);
            }
            Some(proto::UploadMsg::Data(d)) => {
                if task.is_none() {
                    return Err(Status::invalid_argument("data before metadata"));
                }
                if d.data.is_empty() || d.data.len() > 1024 * 1024 {
                    return Err(Status::invalid_argument("chunk size out of range"));
                }
                upload.bytes.extend_from_slice(&d.data);
                upload.chunks += 1;
                let drop_it = s
                    .drop_uploads
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if drop_it {
                    return Err(Status::unavailable("stream dropped (test fault)"));
                }
            }
            Some(proto::UploadMsg::Eof(eof)) => {
                let digest = ring::digest::digest(&ring::digest::SHA256, &upload.bytes);
                upload.checksum_ok = digest.as_ref() == eof.sha256_checksum.as_slice();
                let task = task.ok_or_else(|| Status::invalid_argument("no metadata"))?;
                s.uploads.lock().unwrap().insert(task, upload);
                return Ok(Response::new(proto::UploadAssetResponse::default()));
            }
            None => return Err(Status::invalid_argument("empty message")),
        }
    }
    Err(Status::invalid_argument("the stream ended before its eof"))
}
