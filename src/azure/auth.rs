//! Tokens: one `azure_identity` credential chosen by config, shared HTTP client and authority
//! host, a token per audience (Graph, ARM). `azure_identity` caches tokens per scope and renews
//! them five minutes before expiry; on top of that, a 401 from an API makes the pipeline call
//! [`TokenProvider::renew`], which replaces the credential (and so its cache) once, because the
//! cached token may have been revoked or expired early by the service's clock.

use std::sync::{Arc, RwLock};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions,
    UserAssignedId, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use super::{ApiError, ClientConfig, Credential, Secret};

type Builder = Box<dyn Fn() -> azure_core::Result<Arc<dyn TokenCredential>> + Send + Sync>;

pub(crate) struct TokenProvider {
    build: Builder,
    /// The credential in use and its generation; a renewal bumps the generation so concurrent
    /// 401s for the same stale token replace the credential only once.
    current: RwLock<(u64, Arc<dyn TokenCredential>)>,
}

/// A bearer token and the credential generation that produced it.
pub(crate) struct BearerToken {
    pub(crate) value: Secret,
    pub(crate) generation: u64,
}

impl TokenProvider {
    pub(crate) fn new(config: &ClientConfig, http: reqwest::Client) -> Result<Self, ApiError> {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = config
            .endpoints
            .authority_host
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        // The token endpoint gets the same retry budget as the APIs, so an unreachable or
        // untrusted authority fails after `max_attempts`, not after azure_core's default minute.
        let to_time = |d: std::time::Duration| {
            azure_core::time::Duration::try_from(d).unwrap_or(azure_core::time::Duration::MAX)
        };
        let retry = RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: to_time(config.retry.base_delay),
            max_retries: config.retry.max_attempts.saturating_sub(1),
            max_delay: to_time(config.retry.max_delay),
            ..Default::default()
        });
        let options = ClientOptions {
            transport: Some(Transport::new(Arc::new(http))),
            retry,
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            ..Default::default()
        };
        let credential = config.credential.clone();
        let build: Builder = Box::new(move || build_credential(&credential, options.clone()));
        let first = build().map_err(|e| ApiError::Authentication {
            message: format!("cannot set up the credential: {e}"),
        })?;
        Ok(TokenProvider {
            build,
            current: RwLock::new((0, first)),
        })
    }

    /// A token for `scope` (`<root>/.default`), from the credential's cache when still fresh.
    pub(crate) async fn token(&self, scope: &str) -> Result<BearerToken, ApiError> {
        let (generation, credential) = {
            let guard = self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (guard.0, guard.1.clone())
        };
        let token = credential
            .get_token(&[scope], None)
            .await
            .map_err(|e| token_error(scope, &e))?;
        Ok(BearerToken {
            value: Secret::new(token.token.secret()),
            generation,
        })
    }

    /// Drops every cached token by starting a fresh credential, unless another request already
    /// did so since `generation` was handed out.
    pub(crate) fn renew(&self, generation: u64) -> Result<(), ApiError> {
        let mut guard = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.0 == generation {
            let fresh = (self.build)().map_err(|e| ApiError::Authentication {
                message: format!("cannot set up the credential: {e}"),
            })?;
            *guard = (generation + 1, fresh);
        }
        Ok(())
    }
}

fn build_credential(
    credential: &Credential,
    client_options: ClientOptions,
) -> azure_core::Result<Arc<dyn TokenCredential>> {
    Ok(match credential {
        Credential::ClientSecret {
            tenant_id,
            client_id,
            client_secret,
        } => ClientSecretCredential::new(
            tenant_id,
            client_id.clone(),
            client_secret.expose().to_owned().into(),
            Some(ClientSecretCredentialOptions { client_options }),
        )?,
        Credential::ManagedIdentity { client_id } => {
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                client_options,
            }))?
        }
        Credential::WorkloadIdentity {
            tenant_id,
            client_id,
        } => {
            let mut options = WorkloadIdentityCredentialOptions::default();
            options.credential_options.client_options = client_options;
            options.tenant_id.clone_from(tenant_id);
            options.client_id.clone_from(client_id);
            WorkloadIdentityCredential::new(Some(options))?
        }
        Credential::AzureCli { tenant_id } => {
            AzureCliCredential::new(Some(AzureCliCredentialOptions {
                tenant_id: tenant_id.clone(),
                ..AzureCliCredentialOptions::default()
            }))?
        }
    })
}

/// A failed token request is an authentication problem unless it never got a real answer
/// (connection failure, 5xx, 429 at the authority): that one is worth retrying later.
fn token_error(scope: &str, error: &azure_core::Error) -> ApiError {
    // azure_core's top-level text can be as vague as "retry policy expired"; the causes below
    // it (a TLS or DNS failure, an AADSTS description) are what an operator needs.
    let mut message = format!("could not get a token for {scope}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let text = e.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        source = e.source();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut hint = None;
    while let Some(e) = source {
        if let Some(core) = e.downcast_ref::<azure_core::Error>() {
            let transient = match core.kind() {
                ErrorKind::Connection | ErrorKind::Io => true,
                ErrorKind::HttpResponse {
                    status, error_code, ..
                } => {
                    hint = hint.or(error_code.as_deref().and_then(aadsts_hint));
                    let code = u16::from(*status);
                    code == 429 || code >= 500
                }
                _ => false,
            };
            if transient {
                return ApiError::Unavailable { message };
            }
        }
        source = e.source();
    }
    // Microsoft's description names the problem in its own terms; the hint names the setting
    // to fix first, so the one error an operator sees says what to do.
    if let Some(hint) = hint {
        message = format!("{hint}. {message}");
    }
    ApiError::Authentication { message }
}

/// What to fix for the token endpoint's error codes a misconfiguration gives (the `error_codes`
/// of its 400/401 answer; reference-error-codes). `codes` is azure_identity's comma-joined list.
fn aadsts_hint(codes: &str) -> Option<&'static str> {
    codes.split(',').find_map(|code| {
        Some(match code.trim() {
            "7000215" => {
                "the client secret was rejected (AADSTS7000215): check the Azure client secret, and that it is the secret's value, not its id"
            }
            "7000222" => {
                "the client secret has expired (AADSTS7000222): create a new secret for the app registration"
            }
            "700016" => {
                "no application with this client id in the tenant (AADSTS700016): check the Azure client id and tenant id, and that the app is consented in the tenant"
            }
            "90002" => {
                "the tenant was not found (AADSTS90002): check the Azure tenant id, and that the authority host is the tenant's cloud"
            }
            "900023" => {
                "the tenant id is malformed (AADSTS900023): check the Azure tenant id (a GUID or a domain)"
            }
            "90038" => {
                "the tenant belongs to another national cloud (AADSTS90038): set the authority host, Graph and ARM endpoints of that cloud"
            }
            "7000112" => "the application is disabled in the tenant (AADSTS7000112)",
            _ => return None,
        })
    })
}
