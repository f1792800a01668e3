//! Logging: tracing-subscriber writing to stderr (stdout stays for `capabilities`/`config`
//! output), console or json by [`LogFormat`], at the configured level.
//!
//! Dependencies stay at `warn` or quieter whatever the level: their debug and trace logs can
//! carry request headers, and a bearer token or a secret must never reach a log.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogLevel, LogSettings};

/// Installs the global subscriber. Fails only if one is already installed.
pub fn init(settings: LogSettings) -> anyhow::Result<()> {
    let ours = match settings.level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let dependencies = match settings.level {
        LogLevel::Error => "error",
        _ => "warn",
    };
    let filter = EnvFilter::try_new(format!("{dependencies},baton_azure_delta={ours}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match settings.format {
        LogFormat::Console => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
