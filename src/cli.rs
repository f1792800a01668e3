//! The command line: parses the arguments, layers and validates the configuration, sets up
//! logging and a tokio runtime, and dispatches to `sync::commands` (or, for baton's
//! `--grant-entitlement` / `--revoke-grant` one-shots, to `provision`). `capabilities` and `config`
//! are answered here, as baton connectors print them.
//!
//! Exit codes: 0 success, 1 a command failed, 2 bad usage or configuration (one message naming
//! the key).

pub mod capabilities;
pub mod provision;
mod schema;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, ConfigError, LogSettings, Needs, Settings, settings_args};
use crate::sync::commands;

/// Incremental Microsoft Entra ID and Azure access sync for ConductorOne and baton: reads the
/// tenant once, then follows its changes, and writes .c1z files. Without a subcommand it syncs
/// once and writes --file.
#[derive(Debug, Parser)]
#[command(name = "baton-azure-delta", version)]
pub struct Cli {
    /// TOML configuration file (keys are the long flag names); default: ./config.toml if present
    #[arg(long, env = "BATON_CONFIG", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub one_shot: provision::OneShotArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The long-running worker: a baseline, then delta, polling and reconciliation rounds on
    /// their schedules, exporting after each
    Run,
    /// One round now (a baseline if the store is empty or reset, else delta), then export
    Sync,
    /// Write a full snapshot of the store to --file, or a diff with --diff-since
    Export(ExportArgs),
    /// What the store holds: counts per resource type, feed cursors, API calls, last export
    Status,
    /// Force a full resync on the next round
    Reset,
    /// Run the whole worker against a simulated tenant and write demo.c1z
    #[cfg(feature = "emulator")]
    Demo(TenantArgs),
    /// Serve the simulated tenant alone (Graph, ARM and token endpoints on loopback)
    #[cfg(feature = "emulator")]
    Emulator(TenantArgs),
    /// Print the connector's capabilities (protojson)
    Capabilities,
    /// Print the connector's configuration schema (JSON)
    Config,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write the changes since this earlier export (its sync id, or a .c1z whose newest sync
    /// is taken) instead of a full snapshot
    #[arg(long, value_name = "SYNC_ID|FILE")]
    pub diff_since: Option<String>,
    /// With --diff-since, also put the new full snapshot in the same file
    #[arg(long, requires = "diff_since")]
    pub with_full: bool,
}

/// The simulated tenant of `demo` and `emulator`.
#[derive(Debug, Clone, Args)]
pub struct TenantArgs {
    /// Users in the simulated tenant; the rest of the tenant scales with it
    #[arg(long, value_name = "N")]
    pub users: Option<usize>,
    /// Seed of the simulated tenant (same seed, same tenant)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[cfg(feature = "emulator")]
impl TenantArgs {
    fn tenant(&self) -> crate::sync::demo::SimulatedTenant {
        crate::sync::demo::SimulatedTenant {
            users: self.users,
            seed: self.seed,
        }
    }
}

/// The whole command line, with every configuration key as a global argument.
pub fn command() -> clap::Command {
    Cli::command().args(settings_args())
}

pub fn main() -> ExitCode {
    // clap prints usage errors and exits 2 itself, and exits 0 after --help and --version.
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let command = cli.command.as_ref().unwrap_or(&Command::Sync);
    match command {
        Command::Capabilities => return print_json(&capabilities::capabilities()),
        Command::Config => return print_json(&schema::config_schema()),
        _ => {}
    }
    let settings = match Settings::load(&matches, cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => return config_error(&e),
    };
    if cli.one_shot.requested() {
        if cli.command.is_some() {
            eprintln!(
                "error: --grant-entitlement and --revoke-grant run alone, without a subcommand"
            );
            return ExitCode::from(2);
        }
        return match Config::from_settings(&settings, Needs { credential: true }) {
            Ok(config) => execute(
                config.log,
                "provisioning",
                provision::run(&config, &cli.one_shot),
            ),
            Err(e) => config_error(&e),
        };
    }
    // Only `run` and `sync` talk to Microsoft; the others, and the `--event-feed` one-shot,
    // work on the store or the emulator.
    let event_feed = matches!(settings.flag("event-feed"), Ok(true));
    let needs = Needs {
        credential: matches!(command, Command::Run | Command::Sync) && !event_feed,
    };
    match command {
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => match LogSettings::from_settings(&settings) {
            Ok(log) => execute(log, name(command), commands::emulator(args.tenant())),
            Err(e) => config_error(&e),
        },
        _ => match Config::from_settings(&settings, needs) {
            Ok(config) => execute(config.log, name(command), dispatch(command, &config)),
            Err(e) => config_error(&e),
        },
    }
}

/// Starts logging and a tokio runtime, and runs `work` to its end.
fn execute(
    log: LogSettings,
    name: &str,
    work: impl Future<Output = anyhow::Result<()>>,
) -> ExitCode {
    if let Err(e) = crate::logging::init(log) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{name} failed");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: &Command, config: &Config) -> anyhow::Result<()> {
    tracing::debug!(?config, "configuration");
    match command {
        // baton's one-shot: printed instead of the sync that runs without a subcommand.
        Command::Sync if config.event_feed.is_some() => commands::event_feed(config).await,
        // With ConductorOne credentials a connector runs as a service, as baton's do.
        Command::Run | Command::Sync if config.service.is_some() => commands::run(config).await,
        Command::Run => commands::run(config).await,
        Command::Sync => commands::sync_once(config).await,
        Command::Export(args) => {
            commands::export(config, args.diff_since.as_deref(), args.with_full).await
        }
        Command::Status => commands::status(config).await,
        Command::Reset => commands::reset(config).await,
        #[cfg(feature = "emulator")]
        Command::Demo(args) => commands::demo(config, args.tenant()).await,
        #[cfg(feature = "emulator")]
        Command::Emulator(args) => commands::emulator(args.tenant()).await,
        // Printed before any configuration is read.
        Command::Capabilities | Command::Config => Ok(()),
    }
}

fn name(command: &Command) -> &'static str {
    match command {
        Command::Run => "run",
        Command::Sync => "sync",
        Command::Export(_) => "export",
        Command::Status => "status",
        Command::Reset => "reset",
        #[cfg(feature = "emulator")]
        Command::Demo(_) => "demo",
        #[cfg(feature = "emulator")]
        Command::Emulator(_) => "emulator",
        Command::Capabilities => "capabilities",
        Command::Config => "config",
    }
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn print_json(value: &serde_json::Value) -> ExitCode {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        super::command().debug_assert();
    }
}
