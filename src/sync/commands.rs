//! PLACEHOLDER: the commands the command line dispatches to. The lead replaces these bodies
//! with the sync engine; the signatures are the contract with `src/cli.rs`.

use crate::cli::{DemoArgs, EmulatorArgs, ExportArgs};
use crate::config::Config;

/// The long-running worker: a baseline, then rounds on the schedules.
pub async fn run(_config: &Config) -> anyhow::Result<()> {
    anyhow::bail!("run is not wired yet")
}

/// One round now (a baseline if the store is empty or reset, else delta), then an export. Also
/// what runs without a subcommand.
pub async fn sync_once(_config: &Config) -> anyhow::Result<()> {
    anyhow::bail!("sync is not wired yet")
}

pub async fn export(_config: &Config, _args: &ExportArgs) -> anyhow::Result<()> {
    anyhow::bail!("export is not wired yet")
}

pub async fn status(_config: &Config) -> anyhow::Result<()> {
    anyhow::bail!("status is not wired yet")
}

pub async fn reset(_config: &Config) -> anyhow::Result<()> {
    anyhow::bail!("reset is not wired yet")
}

pub async fn demo(_config: &Config, _args: &DemoArgs) -> anyhow::Result<()> {
    anyhow::bail!("demo is not wired yet")
}

pub async fn emulator(_args: &EmulatorArgs) -> anyhow::Result<()> {
    anyhow::bail!("emulator is not wired yet")
}
