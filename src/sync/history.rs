//! A small JSON file beside the store with the API calls spent, so `status` can tell them
//! without a live process. Written after every round; losing it loses only statistics.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::engine::RoundReport;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub rounds: u64,
    pub graph_requests: u64,
    pub graph_resource_units: u64,
    pub arm_requests: u64,
    pub last_round_requests: u64,
    /// None when the round's record changes were not tracked (before the first export).
    pub last_round_records_changed: Option<u64>,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("api-calls.json")
}

pub fn read(state_dir: &Path) -> anyhow::Result<Option<History>> {
    let file = path(state_dir);
    match std::fs::read(&file) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("reading {}", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", file.display())),
    }
}

/// Adds one round's requests to the totals kept across processes.
pub fn record_round(state_dir: &Path, report: &RoundReport) -> anyhow::Result<()> {
    let mut history = read(state_dir)?.unwrap_or_default();
    history.rounds += 1;
    history.last_round_requests = report.api_requests;
    history.last_round_records_changed = report.records_changed.map(|n| n as u64);
    history.graph_requests += report.graph_requests;
    history.arm_requests += report.arm_requests;
    history.graph_resource_units += report.graph_resource_units;
    let file = path(state_dir);
    let temp = file.with_extension("json.tmp");
    std::fs::write(&temp, serde_json::to_vec_pretty(&history)?)
        .with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, &file).with_context(|| format!("writing {}", file.display()))?;
    Ok(())
}
