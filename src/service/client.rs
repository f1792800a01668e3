//! The `c1.connectorapi.baton.v1.BatonService` client: gRPC over TLS (tonic) to
//! `<host>:443` (or the port the host names), every call carrying `authorization: Bearer
//! <token>` and the host id, as baton-sdk's `c1ServiceClient` (`pkg/tasks/c1api/service_client.go`).
//!
//! `UploadAsset` is a client stream: the metadata (host and task id), the file in 512 KiB
//! chunks, then the sha256 of the whole file. A stream that drops is sent again from the start,
//! up to [`UPLOAD_ATTEMPTS`] times.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prost::Message;
use ring::digest;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::proto::{self, UploadMsg};
use super::token::{TokenError, TokenSource};

/// baton-sdk's `fileChunkSize`.
pub const UPLOAD_CHUNK_BYTES: usize = 512 * 1024;
pub const UPLOAD_ATTEMPTS: usize = 3;
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call failed: the credentials (not worth retrying) or anything else.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("ConductorOne answered {}: {}", .0.code(), .0.message())]
    Status(#[from] Status),
}

impl CallError {
    /// The credentials were refused: retrying cannot help.
    pub fn is_rejected(&self) -> bool {
        matches!(self, CallError::Token(TokenError::Rejected { .. }))
            || matches!(self, CallError::Status(s) if s.code() == Code::PermissionDenied)
    }
}

#[derive(Clone)]
pub struct BatonClient {
    channel: Channel,
    tokens: Arc<TokenSource>,
    host_id: String,
}

impl BatonClient {
    /// A lazily connecting channel to `api_host` (`host[:port]`, port 443 when absent), trusting
    /// the system's roots plus `extra_ca_pem`.
    pub fn new(
        api_host: &str,
        extra_ca_pem: Option<&[u8]>,
        tokens: Arc<TokenSource>,
        host_id: String,
    ) -> anyhow::Result<BatonClient> {
        let address = if super::credentials::host_without_port(api_host) == api_host {
            format!("{api_host}:443")
        } else {
            api_host.to_string()
        };
        let mut tls = ClientTlsConfig::new()
            .with_native_roots()
            .domain_name(super::credentials::host_without_port(api_host).trim_matches(['[', ']']));
        if let Some(pem) = extra_ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        let endpoint = Endpoint::from_shared(format!("https://{address}"))
            .with_context(|| format!("'{address}' is not a ConductorOne API address"))?
            .tls_config(tls)
            .context("configuring TLS for the ConductorOne API")?
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .context("setting the user agent")?;
        Ok(BatonClient {
            channel: endpoint.connect_lazy(),
            tokens,
            host_id,
        })
    }

    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    pub async fn hello(&self, mut request: proto::HelloRequest) -> Result<(), CallError> {
        request.host_id = self.host_id.clone();
        self.unary::<_, proto::HelloResponse>(proto::HELLO, request)
            .await
            .map(drop)
    }

    pub async fn get_task(&self) -> Result<proto::GetTaskResponse, CallError> {
        let request = proto::GetTaskRequest {
            host_id: self.host_id.clone(),
        };
        self.unary(proto::GET_TASK, request).await
    }

    pub async fn heartbeat(&self, task_id: &str) -> Result<proto::HeartbeatResponse, CallError> {
        let request = proto::HeartbeatRequest {
            host_id: self.host_id.clone(),
            task_id: task_id.to_string(),
            annotations: Vec::new(),
        };
        self.unary(proto::HEARTBEAT, request).await
    }

    pub async fn finish_task(
        &self,
        task_id: &str,
        status: Option<proto::RpcStatus>,
        final_state: proto::FinalState,
    ) -> Result<(), CallError> {
        let request = proto::FinishTaskRequest {
            host_id: self.host_id.clone(),
            task_id: task_id.to_string(),
            status,
            final_state: Some(final_state),
        };
        self.unary::<_, proto::FinishTaskResponse>(proto::FINISH_TASK, request)
            .await
            .map(drop)
    }

    /// Uploads `path` as the asset of `task_id`; returns the bytes sent in the attempt that
    /// succeeded. Reads the file once for its checksum and once per attempt.
    pub async fn upload(&self, task_id: &str, path: &Path) -> anyhow::Result<u64> {
        let checksum = sha256_file(path).await?;
        let mut last_error = None;
        for attempt in 1..=UPLOAD_ATTEMPTS {
            match self.upload_once(task_id, path, &checksum).await {
                Ok(bytes) => return Ok(bytes),
                Err(error) => {
                    tracing::warn!(attempt, error = %format!("{error:#}"), "uploading the .c1z failed");
                    last_error = Some(error);
                    tokio::time::sleep(Duration::from_millis(500 * attempt as u64)).await;
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| anyhow::anyhow!("no upload attempt was made"))
            .context(format!("uploading the .c1z failed {UPLOAD_ATTEMPTS} times")))
    }

    async fn upload_once(
        &self,
        task_id: &str,
        path: &Path,
        checksum: &[u8],
    ) -> anyhow::Result<u64> {
        use tokio::io::AsyncReadExt;
        let mut file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        let total = file.metadata().await?.len();
        let (sender, receiver) = tokio::sync::mpsc::channel::<proto::UploadAssetRequest>(4);
        let metadata = UploadMsg::Metadata(proto::UploadMetadata {
            host_id: self.host_id.clone(),
            task_id: task_id.to_string(),
            annotations: Vec::new(),
        });
        let eof = UploadMsg::Eof(proto::UploadEof {
            sha256_checksum: checksum.to_vec(),
            annotations: Vec::new(),
        });
        // The reader feeds the stream while the call sends it; a dropped call closes the
        // channel, which ends the reader.
        let reader = async move {
            let send = |msg| proto::UploadAssetRequest { msg: Some(msg) };
            if sender.send(send(metadata)).await.is_err() {
                return Ok(());
            }
            let mut chunk = vec![0u8; UPLOAD_CHUNK_BYTES];
            loop {
                let mut filled = 0;
                while filled < chunk.len() {
                    let n = file.read(&mut chunk[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                let data = UploadMsg::Data(proto::UploadData {
                    data: chunk[..filled].to_vec(),
                });
                if sender.send(send(data)).await.is_err() {
                    return Ok(());
                }
            }
            let _ = sender.send(send(eof)).await;
            Ok::<(), std::io::Error>(())
        };
        let stream = tokio_stream_from(receiver);
        let mut request = Request::new(stream);
        self.authorize(&mut request).await?;
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        let call = async {
            grpc.ready()
                .await
                .map_err(|e| Status::unavailable(format!("connecting: {e}")))?;
            grpc.client_streaming::<_, _, proto::UploadAssetResponse, _>(
                request,
                PathAndQuery::from_static(proto::UPLOAD_ASSET),
                tonic_prost::ProstCodec::default(),
            )
            .await
        };
        let (sent, answer) = tokio::join!(reader, call);
        sent.with_context(|| format!("reading {}", path.display()))?;
        answer.map_err(CallError::from)?;
        Ok(total)
    }

    async fn authorize<T>(&self, request: &mut Request<T>) -> Result<(), CallError> {
        let header = self.tokens.authorization().await?;
        let value = header
            .parse()
            .map_err(|_| Status::internal("the access token is not a valid header value"))?;
        request.metadata_mut().insert("authorization", value);
        request.set_timeout(CALL_TIMEOUT);
        Ok(())
    }

    async fn unary<Req, Resp>(&self, path: &'static str, message: Req) -> Result<Resp, CallError>
    where
        Req: Message + Send + Sync + 'static,
        Resp: Message + Default + Send + Sync + 'static,
    {
        let mut request = Request::new(message);
        self.authorize(&mut request).await?;
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("connecting: {e}")))?;
        let result = grpc
            .unary(
                request,
                PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await;
        match result {
            Ok(response) => Ok(response.into_inner()),
            Err(status) => {
                if status.code() == Code::Unauthenticated {
                    // The next call fetches a new token.
                    self.tokens.invalidate().await;
                }
                Err(status.into())
            }
        }
    }
}

fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    async_stream::stream! {
        while let Some(item) = receiver.recv().await {
            yield item;
        }
    }
}

async fn sha256_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        use std::io::Read;
        let mut file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut context = digest::Context::new(&digest::SHA256);
        let mut buffer = vec![0u8; UPLOAD_CHUNK_BYTES];
        loop {
            let n = file
                .read(&mut buffer)
                .with_context(|| format!("reading {}", path.display()))?;
            if n == 0 {
                break;
            }
            context.update(&buffer[..n]);
        }
        Ok(context.finish().as_ref().to_vec())
    })
    .await
    .context("the checksum thread panicked")?
}
