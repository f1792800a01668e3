//! The table of every configuration key, and the layering of the file, the environment and the
//! flags into one string per key that remembers where it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches};

use super::ConfigError;
use Kind::{Bool, Choice, Number, Secret, Text};

/// What kind of value a key takes; decides the command-line shape and the schema variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `--flag` alone means true; `--flag=false`, `BATON_FLAG=0` or `flag = false` also work.
    Bool,
    Text,
    /// Never printed: hidden from `--help`'s env values, never echoed in an error.
    Secret,
    Number,
    Choice(&'static [&'static str]),
}

/// One configuration key. `id` is at once the long flag, the file key and (upper-cased, `-` as
/// `_`, behind `BATON_`) the environment variable.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub id: &'static str,
    pub env: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub help: &'static str,
}

const fn setting(
    id: &'static str,
    env: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    help: &'static str,
) -> Setting {
    Setting {
        id,
        env,
        short: None,
        kind,
        default,
        help,
    }
}

const fn short(mut s: Setting, c: char) -> Setting {
    s.short = Some(c);
    s
}

/// Every key, in the order `--help` and `config.example.toml` show them.
pub const SETTINGS: &[Setting] = &[
    // Credentials.
    setting(
        "azure-tenant-id",
        "BATON_AZURE_TENANT_ID",
        Text,
        None,
        "Directory (tenant) id: a GUID or a domain such as contoso.onmicrosoft.com",
    ),
    setting(
        "azure-client-id",
        "BATON_AZURE_CLIENT_ID",
        Text,
        None,
        "Application (client) id of the app registration; with managed identity, the client id of a user-assigned identity",
    ),
    setting(
        "azure-client-secret",
        "BATON_AZURE_CLIENT_SECRET",
        Secret,
        None,
        "Client secret of the app registration (prefer the environment or the file over the command line)",
    ),
    setting(
        "credential",
        "BATON_CREDENTIAL",
        Choice(&[
            "client-secret",
            "managed-identity",
            "workload-identity",
            "azure-cli",
        ]),
        None,
        "How to authenticate; default: client-secret when a secret is set",
    ),
    setting(
        "use-cli-credentials",
        "BATON_USE_CLI_CREDENTIALS",
        Bool,
        None,
        "Same as --credential azure-cli (kept for compatibility with baton-azure-infrastructure)",
    ),
    // Endpoints.
    setting(
        "graph-domain",
        "BATON_GRAPH_DOMAIN",
        Text,
        Some("graph.microsoft.com"),
        "Microsoft Graph host (graph.microsoft.us, dod-graph.microsoft.us, microsoftgraph.chinacloudapi.cn...), host:port or https URL; a national cloud's host also picks its authority host, ARM endpoint and token scopes",
    ),
    setting(
        "authority-host",
        "BATON_AUTHORITY_HOST",
        Text,
        None,
        "Entra ID token authority URL; default: the Graph domain's cloud (https://login.microsoftonline.com)",
    ),
    setting(
        "arm-endpoint",
        "BATON_ARM_ENDPOINT",
        Text,
        None,
        "Azure Resource Manager URL; default: the Graph domain's cloud (https://management.azure.com)",
    ),
    setting(
        "ca-cert",
        "BATON_CA_CERT",
        Text,
        None,
        "PEM file of extra trusted root certificates (TLS-inspecting proxies, the emulator)",
    ),
    // Local files.
    setting(
        "state-dir",
        "BATON_STATE_DIR",
        Text,
        Some("./state"),
        "Directory of the local store (sled)",
    ),
    short(
        setting(
            "file",
            "BATON_FILE",
            Text,
            Some("sync.c1z"),
            "The .c1z file to write",
        ),
        'f',
    ),
    // What is synced (DATA_MODEL.md).
    setting(
        "mailboxSettings",
        "BATON_MAILBOXSETTINGS",
        Bool,
        None,
        "Read each user's mailbox settings: shared, room and equipment mailboxes become SERVICE accounts",
    ),
    setting(
        "skip-ad-groups",
        "BATON_SKIP_AD_GROUPS",
        Bool,
        None,
        "Leave out groups synced from on-premises Active Directory",
    ),
    setting(
        "skip-unused-roles",
        "BATON_SKIP_UNUSED_ROLES",
        Bool,
        None,
        "Give Azure roles entitlements only where they are assigned",
    ),
    setting(
        "skip-sync-storage-containers",
        "BATON_SKIP_SYNC_STORAGE_CONTAINERS",
        Bool,
        None,
        "Do not sync blob containers",
    ),
    setting(
        "skip-entra-id-p2-license-features",
        "BATON_SKIP_ENTRA_ID_P2_LICENSE_FEATURES",
        Bool,
        None,
        "Make no PIM or other Entra ID P2 calls",
    ),
    setting(
        "enable-sync-external-resources-via-baton-id",
        "BATON_ENABLE_SYNC_EXTERNAL_RESOURCES_VIA_BATON_ID",
        Bool,
        None,
        "Take users, groups and managed identities from --external-resource-c1z instead of emitting them",
    ),
    setting(
        "external-resource-c1z",
        "BATON_EXTERNAL_RESOURCE_C1Z",
        Text,
        None,
        "The .c1z holding the principals for --enable-sync-external-resources-via-baton-id",
    ),
    short(
        setting(
            "provisioning",
            "BATON_PROVISIONING",
            Bool,
            None,
            "Allow grant and revoke",
        ),
        'p',
    ),
    setting(
        "skip-expand-grants",
        "BATON_SKIP_EXPAND_GRANTS",
        Bool,
        None,
        "Do not expand grants of group-held access in the .c1z",
    ),
    setting(
        "client-id",
        "BATON_CLIENT_ID",
        Text,
        None,
        "ConductorOne client id: with --client-secret, run as a self-hosted ConductorOne connector (service mode)",
    ),
    setting(
        "client-secret",
        "BATON_CLIENT_SECRET",
        Secret,
        None,
        "ConductorOne client secret of service mode",
    ),
    setting(
        "c1-api-host",
        "BATON_C1_API_HOST",
        Text,
        None,
        "Service mode: host[:port] of ConductorOne's API and token endpoint; default: the host in --client-id",
    ),
    setting(
        "host-id",
        "BATON_HOST_ID",
        Text,
        None,
        "Service mode: the id this connector host reports to ConductorOne; default: the host name",
    ),
    setting(
        "event-feed",
        "BATON_EVENT_FEED",
        Bool,
        None,
        "Print the event feed (the store's changes as baton events) as protojson lines, then exit",
    ),
    setting(
        "event-feed-id",
        "BATON_EVENT_FEED_ID",
        Text,
        None,
        "With --event-feed: the feed to read; the only one is baton_feed_event",
    ),
    setting(
        "event-feed-start-at",
        "BATON_EVENT_FEED_START_AT",
        Text,
        None,
        "With --event-feed: the first changes to print, an RFC 3339 time; default: 24 hours ago",
    ),
    setting(
        "event-feed-cursor",
        "BATON_EVENT_FEED_CURSOR",
        Text,
        None,
        "With --event-feed: resume after the cursor a previous page ended with",
    ),
    // Schedules and budgets.
    setting(
        "delta-schedule",
        "BATON_DELTA_SCHEDULE",
        Text,
        Some("0 * * * * *"),
        "Cron (seconds first) of delta rounds",
    ),
    setting(
        "poll-schedule",
        "BATON_POLL_SCHEDULE",
        Text,
        Some("0 */15 * * * *"),
        "Cron (seconds first) of the feeds without change cursors, re-listed",
    ),
    setting(
        "reconcile-schedule",
        "BATON_RECONCILE_SCHEDULE",
        Text,
        Some("0 0 3 * * *"),
        "Cron (seconds first) of full reconciliation rounds",
    ),
    setting(
        "graph-requests-per-minute",
        "BATON_GRAPH_REQUESTS_PER_MINUTE",
        Number,
        None,
        "Budget of Graph requests per minute; default: no budget beyond Graph's own throttling",
    ),
    setting(
        "arm-requests-per-minute",
        "BATON_ARM_REQUESTS_PER_MINUTE",
        Number,
        None,
        "Budget of ARM requests per minute; default: no budget beyond ARM's own throttling",
    ),
    setting(
        "max-concurrency",
        "BATON_MAX_CONCURRENCY",
        Number,
        Some("8"),
        "Requests in flight per API",
    ),
    // Operations.
    setting(
        "log-level",
        "BATON_LOG_LEVEL",
        Choice(&["error", "warn", "info", "debug", "trace"]),
        Some("info"),
        "Log level",
    ),
    setting(
        "log-format",
        "BATON_LOG_FORMAT",
        Choice(&["console", "json"]),
        None,
        "Log format; default: console when stdout is a terminal, else json",
    ),
    setting(
        "reset",
        "BATON_RESET",
        Bool,
        None,
        "Forget every change cursor: the next round is a full baseline",
    ),
    setting(
        "export-mode",
        "BATON_EXPORT_MODE",
        Choice(&["full", "diff", "both"]),
        Some("full"),
        "What the worker writes after each round: a full snapshot, a diff since the last export, or both",
    ),
    setting(
        "listen",
        "BATON_LISTEN",
        Text,
        Some("127.0.0.1:9464"),
        "Address of /healthz, /readyz and /metrics, or 'off'",
    ),
];

/// The setting of a key; panics only on a key missing from [`SETTINGS`], a bug in this crate.
fn spec(id: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("'{id}' is not in SETTINGS"))
}

/// The command-line arguments of every key (global, so they may follow a subcommand).
pub fn settings_args() -> Vec<Arg> {
    SETTINGS
        .iter()
        .map(|s| {
            let mut help = s.help.to_string();
            if let Choice(values) = s.kind {
                help.push_str(&format!(" [one of: {}]", values.join(", ")));
            }
            if let Some(default) = s.default {
                help.push_str(&format!(" [default: {default}]"));
            }
            let mut arg = Arg::new(s.id)
                .long(s.id)
                .env(s.env)
                .global(true)
                .help(help)
                .action(ArgAction::Set);
            if let Some(c) = s.short {
                arg = arg.short(c);
            }
            match s.kind {
                // `require_equals` keeps `--flag sync` from reading `sync` as the flag's value.
                Bool => arg
                    .num_args(0..=1)
                    .require_equals(true)
                    .default_missing_value("true")
                    .value_name("BOOL"),
                Secret => arg.hide_env_values(true).value_name("SECRET"),
                Number => arg.value_name("N"),
                Text => arg.value_name("VALUE"),
                Choice(_) => arg.value_name("CHOICE"),
            }
        })
        .collect()
}

/// Where a value came from; decides how an error names its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File(PathBuf),
}

/// The layered settings: for each key that is set, its text and where it came from.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl Settings {
    /// Layers the file under the environment and flags that `matches` holds. `config_path` is
    /// the `--config` value; without it `./config.toml` is read when it exists.
    pub fn load(matches: &ArgMatches, config_path: Option<&Path>) -> Result<Settings, ConfigError> {
        let config_key = match matches.value_source("config") {
            Some(ValueSource::EnvVariable) => "BATON_CONFIG",
            _ => "--config",
        };
        let mut settings = match config_path {
            Some(path) => Settings::from_file(path, config_key)?,
            None if Path::new("config.toml").is_file() => {
                Settings::from_file(Path::new("config.toml"), "./config.toml")?
            }
            None => Settings::default(),
        };
        for s in SETTINGS {
            let source = match matches.value_source(s.id) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => Source::Env,
                _ => continue,
            };
            if let Some(value) = matches.get_one::<String>(s.id) {
                settings.set(s.id, value, source);
            }
        }
        Ok(settings)
    }

    /// Reads a TOML file of `key = value` lines whose keys are the long flag names; a problem
    /// with the file as a whole is reported under `file_key` (how the user named the file).
    pub fn from_file(path: &Path, file_key: &str) -> Result<Settings, ConfigError> {
        let file_error = |problem: String| ConfigError {
            key: file_key.into(),
            problem,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| file_error(format!("cannot read '{}': {e}", path.display())))?;
        // Only toml's message and position: its rendered error quotes the offending line,
        // which could be a secret.
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|span| {
                    let line = text[..span.start].matches('\n').count() + 1;
                    format!(" at line {line}")
                })
                .unwrap_or_default();
            file_error(format!(
                "'{}' is not valid TOML{at}: {}",
                path.display(),
                e.message()
            ))
        })?;
        let mut settings = Settings::default();
        for (key, value) in table {
            let Some(s) = SETTINGS.iter().find(|s| s.id == key) else {
                return Err(ConfigError {
                    key: format!("{key} (in {})", path.display()),
                    problem: "unknown key; the keys are the long flag names, as in \
                              config.example.toml"
                        .into(),
                });
            };
            let text = match value {
                toml::Value::String(v) => v,
                toml::Value::Integer(v) => v.to_string(),
                toml::Value::Boolean(v) => v.to_string(),
                _ => {
                    return Err(ConfigError {
                        key: format!("{key} (in {})", path.display()),
                        problem: "must be a string, a whole number or a boolean".into(),
                    });
                }
            };
            settings.set(s.id, &text, Source::File(path.to_path_buf()));
        }
        Ok(settings)
    }

    /// An empty value counts as unset, as an empty `BATON_X=` usually means "not configured".
    fn set(&mut self, id: &'static str, value: &str, source: Source) {
        if value.is_empty() {
            self.values.remove(id);
        } else {
            self.values.insert(id, (value.to_string(), source));
        }
    }

    /// The value of `id`, if any layer set it.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.values.get(id).map(|(v, _)| v.as_str())
    }

    /// Where `id` came from, if set.
    pub fn source(&self, id: &str) -> Option<&Source> {
        self.values.get(id).map(|(_, s)| s)
    }

    /// The key as the user wrote it: `--flag`, `BATON_FLAG` or `flag (in file)`; an unset key
    /// is named by its flag.
    pub fn key(&self, id: &str) -> String {
        let s = spec(id);
        match self.source(id) {
            Some(Source::Env) => s.env.to_string(),
            Some(Source::File(path)) => format!("{} (in {})", s.id, path.display()),
            Some(Source::Flag) | None => format!("--{}", s.id),
        }
    }

    pub fn error(&self, id: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            key: self.key(id),
            problem: problem.into(),
        }
    }

    /// Parses the value of `id` (or its default) with `parse`. A secret's parse error is never
    /// shown, since it would quote the secret.
    pub fn parse_opt_with<T>(
        &self,
        id: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let s = spec(id);
        let Some(value) = self.get(id).or(s.default) else {
            return Ok(None);
        };
        parse(value).map(Some).map_err(|problem| {
            let problem = if s.kind == Secret {
                "is not a valid value".to_string()
            } else {
                problem
            };
            self.error(id, problem)
        })
    }

    /// As [`Settings::parse_opt_with`], for a key that has a default.
    pub fn parse_with<T>(
        &self,
        id: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.parse_opt_with(id, parse)?
            .ok_or_else(|| self.error(id, "is required"))
    }

    /// A boolean key; unset is false.
    pub fn flag(&self, id: &str) -> Result<bool, ConfigError> {
        Ok(self
            .parse_opt_with(id, |v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(format!("'{v}' is not a boolean (true or false)")),
            })?
            .unwrap_or(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_the_baton_rule() {
        for s in SETTINGS {
            let expected = format!("BATON_{}", s.id.to_ascii_uppercase().replace('-', "_"));
            assert_eq!(s.env, expected, "env var of {}", s.id);
        }
    }

    #[test]
    fn keys_are_unique() {
        let mut ids: Vec<_> = SETTINGS.iter().map(|s| s.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), SETTINGS.len());
    }

    #[test]
    fn defaults_parse() {
        let settings = Settings::default();
        let config = super::super::Config::from_settings(
            &settings,
            super::super::Needs { credential: false },
        );
        assert!(config.is_ok(), "{config:?}");
    }

    #[test]
    fn example_file_documents_every_key() {
        let example = include_str!("../../config.example.toml");
        for s in SETTINGS {
            assert!(
                example.contains(&format!("{} = ", s.id)),
                "config.example.toml lacks {}",
                s.id
            );
            assert!(
                example.contains(s.env),
                "config.example.toml lacks {}",
                s.env
            );
        }
    }

    #[test]
    fn example_file_is_a_valid_configuration() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let settings = Settings::from_file(&path, "--config");
        assert!(settings.is_ok(), "{settings:?}");
        let settings = settings.unwrap_or_default();
        assert_eq!(
            settings.get("azure-tenant-id"),
            Some("00000000-0000-0000-0000-000000000000")
        );
        let config = super::super::Config::from_settings(
            &settings,
            super::super::Needs { credential: false },
        );
        assert!(config.is_ok(), "{config:?}");
    }
}
