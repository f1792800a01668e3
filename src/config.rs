//! Configuration: one validated [`Config`] built from three layers in rising precedence, the TOML
//! file (`--config`, else `./config.toml` when present), the environment (`BATON_<FLAG>`) and the
//! flags.
//!
//! One table, [`SETTINGS`], describes every key once: the command line arguments, the accepted
//! file keys, the environment variables, `config.example.toml` and the `config` schema all come
//! from it. Every layer yields plain strings per key, so one parse step turns them into typed
//! values and an error always names the key the way the user wrote it (`--flag`, `BATON_FLAG`,
//! or `flag` in the file). Validation makes no network call. Secrets live in the client's
//! [`Secret`], whose `Debug` and `Display` print `***`, and no error message ever carries a
//! secret's value. The credential and endpoints it builds are the client's own types.

mod endpoints;
mod settings;

use std::fmt;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use endpoints::{is_national_cloud, known_graph_hosts};

use crate::azure::{Credential, Endpoints, Secret};
pub use settings::{Kind, SETTINGS, Setting, Settings, Source, settings_args};

/// Extra trusted root certificates, read from `ca-cert` and parsed once to prove they are
/// certificates.
#[derive(Clone, PartialEq, Eq)]
pub struct CaCertificates {
    pub path: PathBuf,
    /// The file as read: one or more PEM certificates.
    pub pem: Vec<u8>,
    /// How many certificates it holds.
    pub count: usize,
}

impl fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} certificates)", self.path.display(), self.count)
    }
}

/// A configuration problem: the key as the user wrote it, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

/// Which options change what the worker reads and what lands in a `.c1z` (DATA_MODEL.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataOptions {
    /// `mailboxSettings`: read `userPurpose` to tell shared/room/equipment mailboxes (SERVICE).
    pub mailbox_settings: bool,
    pub skip_ad_groups: bool,
    pub skip_unused_roles: bool,
    pub skip_storage_containers: bool,
    /// `skip-entra-id-p2-license-features`: no PIM or other P2-only calls.
    pub skip_p2: bool,
    /// Principals come from this external `.c1z` (the external-resources option).
    pub external_resource_c1z: Option<PathBuf>,
    /// Grant and revoke are allowed.
    pub provisioning: bool,
    /// Do not expand group grants when writing the `.c1z`.
    pub skip_expand_grants: bool,
}

/// A cron expression that tokio-cron-scheduler accepts (6 or 7 fields, seconds first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CronSchedule(String);

impl CronSchedule {
    /// Parses with the scheduler's own parser, so what validates here also schedules there.
    pub fn parse(expression: &str) -> Result<CronSchedule, String> {
        tokio_cron_scheduler::Job::new_async(expression, |_, _| Box::pin(async {}))
            .map(|_| CronSchedule(expression.to_string()))
            .map_err(|_| {
                format!(
                    "'{expression}' is not a cron expression the scheduler accepts: it needs 6 or 7 \
                     fields with seconds first, e.g. '0 * * * * *' for every minute"
                )
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// When rounds run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedules {
    /// Graph delta rounds (users, groups, service principals...).
    pub delta: CronSchedule,
    /// Feeds without a change cursor, re-listed on a schedule (role definitions, ARM scopes...).
    pub poll: CronSchedule,
    /// Full reconciliation: a fresh baseline compared with the incremental state.
    pub reconcile: CronSchedule,
}

/// How many requests the worker may spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiBudget {
    /// Requests per minute to Graph; `None` = no budget beyond what Graph's throttling imposes.
    pub graph_requests_per_minute: Option<u32>,
    pub arm_requests_per_minute: Option<u32>,
    /// Requests in flight per API.
    pub max_concurrency: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Console,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSettings {
    pub level: LogLevel,
    pub format: LogFormat,
}

/// What the worker exports after each round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportMode {
    /// A full snapshot to `file`.
    Full,
    /// A diff since the previous export.
    Diff,
    /// A full snapshot and a diff.
    Both,
}

/// Everything the worker needs, validated. Built only through [`Config::from_settings`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Always `Some` when the command needs Microsoft (see [`Needs`]); `None` only for commands
    /// that work on the local store alone and had no credential configured.
    pub credential: Option<Credential>,
    pub endpoints: Endpoints,
    /// Extra trusted roots.
    pub ca_cert: Option<CaCertificates>,
    /// The sled store.
    pub state_dir: PathBuf,
    /// The `.c1z` to write.
    pub file: PathBuf,
    pub options: DataOptions,
    pub schedules: Schedules,
    pub budget: ApiBudget,
    pub log: LogSettings,
    /// Force a full resync on the next round.
    pub reset: bool,
    pub export_mode: ExportMode,
    /// Address of `/healthz`, `/readyz` and `/metrics`; `None` when set to `off`.
    pub listen: Option<SocketAddr>,
    /// ConductorOne service mode, when `client-id` and `client-secret` are set.
    pub service: Option<ServiceSettings>,
    /// `--event-feed`: print the event feed instead of running the command.
    pub event_feed: Option<EventFeedSettings>,
}

/// ConductorOne service mode's credentials and overrides (section "Service mode" of README).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSettings {
    pub client_id: String,
    pub client_secret: Secret,
    /// `c1-api-host`: where the API and the token endpoint are, instead of the client id's host.
    pub api_host: Option<String>,
    /// `host-id`: what this host calls itself; default its host name.
    pub host_id: Option<String>,
}

/// `--event-feed`: print the event feed and exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventFeedSettings {
    /// Resume after this cursor (wins over `start_at`).
    pub cursor: Option<String>,
    /// The first changes to print; default: 24 hours before now.
    pub start_at: time::OffsetDateTime,
}

/// What the command about to run requires of the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// The command talks to Microsoft, so a credential must be configured.
    pub credential: bool,
}

impl Config {
    /// The configured credential, or an error for a command that was validated without one.
    pub fn require_credential(&self) -> Result<&Credential, ConfigError> {
        self.credential.as_ref().ok_or_else(missing_credential)
    }

    /// Validates every layered setting into one `Config`. Reads `ca-cert` and checks
    /// `external-resource-c1z` exist; makes no network call.
    pub fn from_settings(settings: &Settings, needs: Needs) -> Result<Config, ConfigError> {
        let credential = credential(settings, needs)?;
        let endpoints = endpoints::from_settings(settings)?;
        let ca_cert = match settings.get("ca-cert") {
            Some(value) => Some(read_ca_cert(settings, value)?),
            None => None,
        };
        let options = data_options(settings)?;
        let service = service_settings(settings)?;
        let event_feed = event_feed_settings(settings)?;
        let schedules = Schedules {
            delta: settings.parse_with("delta-schedule", CronSchedule::parse)?,
            poll: settings.parse_with("poll-schedule", CronSchedule::parse)?,
            reconcile: settings.parse_with("reconcile-schedule", CronSchedule::parse)?,
        };
        let budget = ApiBudget {
            graph_requests_per_minute: settings
                .parse_opt_with("graph-requests-per-minute", positive_u32)?,
            arm_requests_per_minute: settings
                .parse_opt_with("arm-requests-per-minute", positive_u32)?,
            max_concurrency: settings.parse_with("max-concurrency", concurrency)?,
        };
        let listen = settings.parse_with("listen", |v| match v {
            "off" => Ok(None),
            _ => v
                .parse::<SocketAddr>()
                .map(Some)
                .map_err(|_| format!("'{v}' is not an address such as 127.0.0.1:9464 (or 'off')")),
        })?;
        let export_mode = settings.parse_with("export-mode", |v| match v {
            "full" => Ok(ExportMode::Full),
            "diff" => Ok(ExportMode::Diff),
            "both" => Ok(ExportMode::Both),
            _ => Err(format!("'{v}' is not one of full, diff, both")),
        })?;
        Ok(Config {
            credential,
            endpoints,
            ca_cert,
            state_dir: settings.parse_with("state-dir", plain_path)?,
            file: settings.parse_with("file", plain_path)?,
            options,
            schedules,
            budget,
            log: LogSettings::from_settings(settings)?,
            reset: settings.flag("reset")?,
            export_mode,
            listen,
            service,
            event_feed,
        })
    }
}

fn service_settings(settings: &Settings) -> Result<Option<ServiceSettings>, ConfigError> {
    match (settings.get("client-id"), settings.get("client-secret")) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(settings.error(
            "client-secret",
            "required with --client-id: service mode needs both",
        )),
        (None, Some(_)) => Err(settings.error(
            "client-id",
            "required with --client-secret: service mode needs both",
        )),
        (Some(id), Some(secret)) => Ok(Some(ServiceSettings {
            client_id: id.to_string(),
            client_secret: Secret::new(secret),
            api_host: settings.get("c1-api-host").map(str::to_string),
            host_id: settings.get("host-id").map(str::to_string),
        })),
    }
}

fn event_feed_settings(settings: &Settings) -> Result<Option<EventFeedSettings>, ConfigError> {
    if !settings.flag("event-feed")? {
        return Ok(None);
    }
    if let Some(id) = settings.get("event-feed-id")
        && id != crate::events::FEED_ID
    {
        return Err(settings.error(
            "event-feed-id",
            format!(
                "'{id}' is not an event feed of this connector; its one feed is {}",
                crate::events::FEED_ID
            ),
        ));
    }
    let start_at = settings.parse_opt_with("event-feed-start-at", |v| {
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            .map_err(|_| format!("'{v}' is not an RFC 3339 time such as 2026-01-31T08:00:00Z"))
    })?;
    Ok(Some(EventFeedSettings {
        cursor: settings.get("event-feed-cursor").map(str::to_string),
        start_at: start_at
            .unwrap_or_else(|| time::OffsetDateTime::now_utc() - time::Duration::hours(24)),
    }))
}

impl LogSettings {
    /// Only the logging keys: commands that need no other configuration still log as asked.
    pub fn from_settings(settings: &Settings) -> Result<LogSettings, ConfigError> {
        let level = settings.parse_with("log-level", |v| match v {
            "error" => Ok(LogLevel::Error),
            "warn" => Ok(LogLevel::Warn),
            "info" => Ok(LogLevel::Info),
            "debug" => Ok(LogLevel::Debug),
            "trace" => Ok(LogLevel::Trace),
            _ => Err(format!(
                "'{v}' is not one of error, warn, info, debug, trace"
            )),
        })?;
        // baton's rule: console for a person at a terminal, json for everything else.
        let format = settings
            .parse_opt_with("log-format", |v| match v {
                "console" => Ok(LogFormat::Console),
                "json" => Ok(LogFormat::Json),
                _ => Err(format!("'{v}' is not one of console, json")),
            })?
            .unwrap_or(if std::io::stdout().is_terminal() {
                LogFormat::Console
            } else {
                LogFormat::Json
            });
        Ok(LogSettings { level, format })
    }
}

fn missing_credential() -> ConfigError {
    ConfigError {
        key: "--azure-client-secret".into(),
        problem: "no credential configured: set --azure-client-secret (BATON_AZURE_CLIENT_SECRET) \
                  with --azure-tenant-id and --azure-client-id, or choose --credential \
                  managed-identity, workload-identity or azure-cli"
            .into(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum CredentialKind {
    ClientSecret,
    ManagedIdentity,
    WorkloadIdentity,
    AzureCli,
}

fn credential(settings: &Settings, needs: Needs) -> Result<Option<Credential>, ConfigError> {
    let tenant_id = settings.parse_opt_with("azure-tenant-id", tenant_id)?;
    let client_id = settings.parse_opt_with("azure-client-id", guid)?;
    let secret = settings.get("azure-client-secret").map(Secret::new);
    let chosen = settings.parse_opt_with("credential", |v| match v {
        "client-secret" => Ok(CredentialKind::ClientSecret),
        "managed-identity" => Ok(CredentialKind::ManagedIdentity),
        "workload-identity" => Ok(CredentialKind::WorkloadIdentity),
        "azure-cli" => Ok(CredentialKind::AzureCli),
        _ => Err(format!(
            "'{v}' is not one of client-secret, managed-identity, workload-identity, azure-cli"
        )),
    })?;
    let use_cli = settings.flag("use-cli-credentials")?;
    let kind = match (chosen, use_cli) {
        (Some(kind), false) => kind,
        (Some(CredentialKind::AzureCli) | None, true) => CredentialKind::AzureCli,
        (Some(_), true) => {
            return Err(settings.error(
                "use-cli-credentials",
                format!(
                    "conflicts with {}: choose one credential",
                    settings.key("credential")
                ),
            ));
        }
        (None, false) if secret.is_some() => CredentialKind::ClientSecret,
        (None, false) if needs.credential => return Err(missing_credential()),
        (None, false) => return Ok(None),
    };
    if kind != CredentialKind::ClientSecret && secret.is_some() {
        return Err(settings.error(
            "azure-client-secret",
            "a client secret is only used with --credential client-secret; remove one of the two",
        ));
    }
    Ok(Some(match kind {
        CredentialKind::ClientSecret => Credential::ClientSecret {
            tenant_id: tenant_id.ok_or_else(|| {
                settings.error("azure-tenant-id", "required with a client secret")
            })?,
            client_id: client_id.ok_or_else(|| {
                settings.error("azure-client-id", "required with a client secret")
            })?,
            client_secret: secret.ok_or_else(|| {
                settings.error(
                    "azure-client-secret",
                    "required with --credential client-secret",
                )
            })?,
        },
        CredentialKind::ManagedIdentity => Credential::ManagedIdentity { client_id },
        CredentialKind::WorkloadIdentity => Credential::WorkloadIdentity {
            tenant_id,
            client_id,
        },
        CredentialKind::AzureCli => {
            if client_id.is_some() {
                return Err(settings.error(
                    "azure-client-id",
                    "conflicts with Azure CLI credentials, which use the signed-in account",
                ));
            }
            Credential::AzureCli { tenant_id }
        }
    }))
}

fn data_options(settings: &Settings) -> Result<DataOptions, ConfigError> {
    let external = settings.flag("enable-sync-external-resources-via-baton-id")?;
    let external_c1z = settings.parse_opt_with("external-resource-c1z", existing_file)?;
    let external_resource_c1z = match (external, external_c1z) {
        (true, Some(path)) => Some(path),
        (true, None) => {
            return Err(settings.error(
                "enable-sync-external-resources-via-baton-id",
                "needs --external-resource-c1z, the .c1z that holds the principals",
            ));
        }
        (false, Some(_)) => {
            return Err(settings.error(
                "external-resource-c1z",
                "has no effect without --enable-sync-external-resources-via-baton-id",
            ));
        }
        (false, None) => None,
    };
    Ok(DataOptions {
        mailbox_settings: settings.flag("mailboxSettings")?,
        skip_ad_groups: settings.flag("skip-ad-groups")?,
        skip_unused_roles: settings.flag("skip-unused-roles")?,
        skip_storage_containers: settings.flag("skip-sync-storage-containers")?,
        skip_p2: settings.flag("skip-entra-id-p2-license-features")?,
        external_resource_c1z,
        provisioning: settings.flag("provisioning")?,
        skip_expand_grants: settings.flag("skip-expand-grants")?,
    })
}

fn read_ca_cert(settings: &Settings, path: &str) -> Result<CaCertificates, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let pem = std::fs::read(path)
        .map_err(|e| settings.error("ca-cert", format!("cannot read '{path}': {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert =
            cert.map_err(|e| settings.error("ca-cert", format!("'{path}' is not valid PEM: {e}")))?;
        roots.add(cert).map_err(|e| {
            settings.error(
                "ca-cert",
                format!("'{path}' holds a certificate that does not parse: {e}"),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(settings.error(
            "ca-cert",
            format!("'{path}' holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(CaCertificates {
        path: PathBuf::from(path),
        pem,
        count: roots.len(),
    })
}

/// A directory (tenant) id: a GUID, or a domain such as `contoso.onmicrosoft.com`.
fn tenant_id(value: &str) -> Result<String, String> {
    if is_guid(value) || is_domain(value) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(format!(
            "'{value}' is neither a GUID nor a domain such as contoso.onmicrosoft.com"
        ))
    }
}

fn guid(value: &str) -> Result<String, String> {
    if is_guid(value) {
        Ok(value.to_ascii_lowercase())
    } else {
        Err(format!(
            "'{value}' is not a GUID such as 00000000-0000-0000-0000-000000000000"
        ))
    }
}

/// Only the hyphenated 36-character form Entra shows; `uuid` alone also accepts braces and urns.
fn is_guid(value: &str) -> bool {
    value.len() == 36 && uuid::Uuid::try_parse(value).is_ok()
}

fn is_domain(value: &str) -> bool {
    let labels: Vec<&str> = value.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let tld_ok = labels
        .last()
        .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    value.len() <= 253 && labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
}

fn positive_u32(value: &str) -> Result<u32, String> {
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{value}' is not a whole number of at least 1")),
    }
}

fn concurrency(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=256).contains(&n) => Ok(n),
        _ => Err(format!("'{value}' is not a whole number from 1 to 256")),
    }
}

fn plain_path(value: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(value))
}

fn existing_file(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("'{value}' is not a readable file"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_are_guids_or_domains() {
        assert!(tenant_id("72F988BF-86F1-41AF-91AB-2D7CD011DB47").is_ok());
        assert!(tenant_id("contoso.onmicrosoft.com").is_ok());
        assert!(tenant_id("{72f988bf-86f1-41af-91ab-2d7cd011db47}").is_err());
        assert!(tenant_id("common").is_err());
        assert!(tenant_id("contoso..com").is_err());
        assert!(tenant_id("-contoso.com").is_err());
        assert!(tenant_id("contoso.c0m").is_err());
    }

    #[test]
    fn cron_uses_the_scheduler_syntax() {
        assert!(CronSchedule::parse("0 * * * * *").is_ok());
        assert!(CronSchedule::parse("0 0 3 * * *").is_ok());
        assert!(CronSchedule::parse("* * * *").is_err());
        assert!(
            CronSchedule::parse("*/5 * * * *").is_err(),
            "five fields lack seconds"
        );
        assert!(CronSchedule::parse("0 61 * * * *").is_err());
    }
}
