//! Starting and stopping the emulator: one generated tenant, three TLS listeners on loopback
//! (the authority host with the token endpoint and the `/_emulator/` control surface, Graph,
//! and ARM), each on its own port so that the `<root>/.default` scope of each API names a
//! distinct audience, as the real services do.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum_server::Handle;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};

use super::arm::{self, ArmContext};
use super::changes::Control;
use super::control_http;
use super::graph::{self, GraphContext};
use super::tls::TlsIdentity;
use super::token::{self, AppRegistration, TokenIssuer};
use super::{EmulatorConfig, EmulatorState};

/// Public cloud resource names that also select each audience, so tools that hard-code them
/// get the right token.
const GRAPH_RESOURCES: &[&str] = &[
    "https://graph.microsoft.com",
    "https://graph.microsoft.us",
    "https://dod-graph.microsoft.us",
    "https://microsoftgraph.chinacloudapi.cn",
    "00000003-0000-0000-c000-000000000000",
];
const ARM_RESOURCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://management.usgovcloudapi.net",
    "https://management.chinacloudapi.cn",
];

/// A running emulator. It stops when dropped or on [`Emulator::shutdown`].
pub struct Emulator {
    state: Arc<EmulatorState>,
    tenant_id: String,
    client_id: String,
    client_secret: String,
    authority: SocketAddr,
    graph: SocketAddr,
    arm: SocketAddr,
    ca_pem: String,
    ca_path: PathBuf,
    handles: Vec<Handle<SocketAddr>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn loopback_listener(role: &str) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .with_context(|| format!("binding the emulator's {role} listener on 127.0.0.1"))?;
    let addr = listener
        .local_addr()
        .with_context(|| format!("reading the {role} listener address"))?;
    Ok((listener, addr))
}

fn url_of(addr: SocketAddr) -> String {
    format!("https://{addr}")
}

impl Emulator {
    /// Generates the tenant, writes the CA certificate and starts serving.
    pub async fn start(config: EmulatorConfig) -> anyhow::Result<Emulator> {
        config.faults.validate()?;
        if config.token_lifetime.is_zero() {
            anyhow::bail!("token_lifetime must be longer than zero");
        }
        let spec = config.tenant.clone();
        let tenant = tokio::task::spawn_blocking(move || spec.generate())
            .await
            .context("the tenant generator panicked")??;
        let tenant_id = tenant.tenant_id().to_string();
        let client_id = tenant.client_app_id.to_string();
        let client_secret = tenant.client_secret.clone();
        let domains = tenant.organization.verified_domains.clone();

        let state = Arc::new(EmulatorState::new(tenant, &config));

        let tls = TlsIdentity::generate()?;
        let ca_path = tls.write_ca(&config.state_dir_for_ca)?;
        let (authority_listener, authority) = loopback_listener("authority")?;
        let (graph_listener, graph_addr) = loopback_listener("Graph")?;
        let (arm_listener, arm_addr) = loopback_listener("ARM")?;

        let clock_state = state.clone();
        let issuer = Arc::new(TokenIssuer::new(
            AppRegistration {
                tenant_id: tenant_id.clone(),
                tenant_domains: domains,
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                lifetime: config.token_lifetime,
                graph_roots: std::iter::once(url_of(graph_addr))
                    .chain(GRAPH_RESOURCES.iter().map(|s| s.to_string()))
                    .collect(),
                arm_roots: std::iter::once(url_of(arm_addr))
                    .chain(ARM_RESOURCES.iter().map(|s| s.to_string()))
                    .collect(),
            },
            Arc::new(move || clock_state.clock.now()),
        ));

        let graph_ctx = Arc::new(GraphContext {
            state: state.clone(),
            issuer: issuer.clone(),
            base_url: url_of(graph_addr),
            resync_since: std::sync::Mutex::new(None),
        });
        let arm_ctx = Arc::new(ArmContext {
            state: state.clone(),
            issuer: issuer.clone(),
            base_url: url_of(arm_addr),
            management_group_cache: std::sync::Mutex::new(Default::default()),
        });
        let authority_router = token::router(issuer)
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                count_token_requests,
            ))
            .merge(control_http::router(state.clone()));
        let graph_router = Router::new().fallback(graph::serve).with_state(graph_ctx);
        let arm_router = Router::new().fallback(arm::serve).with_state(arm_ctx);

        let rustls = RustlsConfig::from_config(tls.server_config());
        let mut handles = Vec::new();
        let mut tasks = Vec::new();
        for (listener, router) in [
            (authority_listener, authority_router),
            (graph_listener, graph_router),
            (arm_listener, arm_router),
        ] {
            let handle = Handle::new();
            // TCP_NODELAY: without it Nagle's algorithm and delayed ACKs add ~40 ms to every
            // page a client reads over a kept-alive connection.
            let acceptor = RustlsAcceptor::new(rustls.clone()).acceptor(NoDelayAcceptor::new());
            let server = axum_server::from_tcp(listener)
                .context("starting a TLS listener")?
                .acceptor(acceptor)
                .handle(handle.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(err) = server.serve(router.into_make_service()).await {
                    tracing::error!(error = %err, "emulator listener stopped");
                }
            }));
            handles.push(handle);
        }

        Ok(Emulator {
            state,
            tenant_id,
            client_id,
            client_secret,
            authority,
            graph: graph_addr,
            arm: arm_addr,
            ca_pem: tls.ca_pem().to_string(),
            ca_path,
            handles,
            tasks,
        })
    }

    /// `https://127.0.0.1:PORT`: the token endpoint is `{authority_host}/{tenant}/oauth2/v2.0/token`.
    pub fn authority_host(&self) -> String {
        url_of(self.authority)
    }

    /// The Graph root; `/v1.0` and `/beta` are below it.
    pub fn graph_url(&self) -> String {
        url_of(self.graph)
    }

    pub fn arm_url(&self) -> String {
        url_of(self.arm)
    }

    /// The HTTP control surface: `{authority_host}/_emulator/...`.
    pub fn control_url(&self) -> String {
        format!("{}/_emulator", url_of(self.authority))
    }

    pub fn tenant_id(&self) -> String {
        self.tenant_id.clone()
    }

    pub fn client_id(&self) -> String {
        self.client_id.clone()
    }

    pub fn client_secret(&self) -> String {
        self.client_secret.clone()
    }

    pub fn ca_cert_path(&self) -> PathBuf {
        self.ca_path.clone()
    }

    pub fn ca_cert_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The worker's command-line flags that point it at this emulator: tenant, client
    /// credentials, endpoints and the CA to trust. Written `--flag=value`, never as two words:
    /// a generated secret may start with `-`, which the parser would take for a flag.
    pub fn worker_args(&self) -> Vec<String> {
        [
            ("--azure-tenant-id", self.tenant_id()),
            ("--azure-client-id", self.client_id()),
            ("--azure-client-secret", self.client_secret()),
            ("--authority-host", self.authority_host()),
            ("--graph-domain", self.graph_url()),
            ("--arm-endpoint", self.arm_url()),
            ("--ca-cert", self.ca_cert_path().display().to_string()),
        ]
        .iter()
        .map(|(flag, value)| format!("{flag}={value}"))
        .collect()
    }

    pub fn control(&self) -> Control {
        Control::new(self.state.clone())
    }

    /// Stops accepting connections and waits for the listeners to finish.
    pub async fn shutdown(mut self) {
        for handle in &self.handles {
            handle.shutdown();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.shutdown();
        }
    }
}

/// Token requests are counted with Graph's and ARM's, so tests can see a client cache its tokens.
async fn count_token_requests(
    axum::extract::State(state): axum::extract::State<Arc<EmulatorState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let endpoint = format!("{} /{{tenant}}/oauth2/v2.0/token", request.method());
    let response = next.run(request).await;
    state
        .meter
        .record("token", endpoint, response.status().as_u16());
    response
}

/// Runs an emulator until Ctrl-C, printing what a worker needs to connect to it. The client
/// secret is printed on purpose: it is a throw-away credential of a local test tenant.
pub async fn run_standalone(config: EmulatorConfig) -> anyhow::Result<()> {
    let emulator = Emulator::start(config).await?;
    println!("baton-azure-delta emulator is running");
    println!("  authority host : {}", emulator.authority_host());
    println!("  graph url      : {}", emulator.graph_url());
    println!("  arm url        : {}", emulator.arm_url());
    println!("  control url    : {}", emulator.control_url());
    println!("  tenant id      : {}", emulator.tenant_id());
    println!("  client id      : {}", emulator.client_id());
    println!("  client secret  : {}", emulator.client_secret());
    println!("  CA certificate : {}", emulator.ca_cert_path().display());
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    emulator.shutdown().await;
    Ok(())
}
