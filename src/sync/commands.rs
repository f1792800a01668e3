//! The commands the command line dispatches to. Each opens what it needs (store, client),
//! does one job, and says what it did.

use std::sync::Arc;

use anyhow::Context;

use super::engine::RoundReport;
use super::{export, history, setup, worker};
use crate::c1z::reader;
use crate::c1z::writer::ExportOptions;
use crate::config::{Config, ExportMode};
use crate::store::StoreUse;

/// The long-running worker: a baseline, then rounds on the schedules.
pub async fn run(config: &Config) -> anyhow::Result<()> {
    worker::run(config).await
}

/// One round now (a baseline if the store is empty or reset, else delta), then an export. Also
/// what runs without a subcommand.
pub async fn sync_once(config: &Config) -> anyhow::Result<()> {
    let client = setup::connect(config).await?;
    let store = Arc::new(setup::open_store(
        &config.state_dir,
        setup::projection_options(config),
        StoreUse::Rounds,
    )?);
    if config.reset {
        store.reset()?;
        tracing::info!("reset: every feed re-reads Microsoft from scratch this round");
    }
    let engine = setup::engine(store.clone(), client.clone(), setup::feed_options(config));
    let report = engine.round(super::engine::RoundKind::Poll).await?;
    history::record_round(&config.state_dir, &report)?;
    log_round(&report);
    client.log_counters();
    export_after_round(config, &store, true)?;
    if !report.failed.is_empty() {
        anyhow::bail!(
            "{} feed(s) failed this round and will resume next round: {}",
            report.failed.len(),
            report
                .failed
                .iter()
                .map(|(feed, error)| format!("{feed}: {error}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

/// Writes the export(s) the configuration asks for. `always` exports even when nothing changed
/// (a one-shot `sync` must leave its file behind).
pub(crate) fn export_after_round(
    config: &Config,
    store: &crate::store::Store,
    always: bool,
) -> anyhow::Result<()> {
    let options = export_options(config);
    let full = matches!(config.export_mode, ExportMode::Full | ExportMode::Both);
    let diff = matches!(config.export_mode, ExportMode::Diff | ExportMode::Both);
    let base = export::last_export_sync_id(store)?;
    if diff && let Some(base) = &base {
        let summary = export::diff(
            store,
            &export::diff_path(&config.file),
            base,
            false,
            options,
        )?;
        tracing::info!("{}", export::describe(&summary));
    }
    if full || base.is_none() || always {
        let summary = export::full(store, &config.file, options)?;
        tracing::info!("{}", export::describe(&summary));
        println!("{}", export::describe(&summary));
    }
    Ok(())
}

fn export_options(config: &Config) -> ExportOptions {
    ExportOptions {
        skip_expand_grants: config.options.skip_expand_grants,
    }
}

/// Writes a full snapshot, or with `--diff-since` the diff since an earlier export (a sync id,
/// or a `.c1z` whose newest sync is taken).
pub async fn export(
    config: &Config,
    diff_since: Option<&str>,
    with_full: bool,
) -> anyhow::Result<()> {
    let store = setup::open_store(
        &config.state_dir,
        setup::projection_options(config),
        StoreUse::OnePass,
    )?;
    let options = export_options(config);
    let summary = match diff_since {
        None => export::full(&store, &config.file, options)?,
        Some(base) => {
            let base_sync_id = reader::diff_base(base)
                .with_context(|| format!("--diff-since {base}: finding the earlier export"))?;
            export::diff(&store, &config.file, &base_sync_id, with_full, options)?
        }
    };
    if let Some(reason) = &summary.fell_back_to_full {
        eprintln!("warning: {reason}");
    }
    println!("{}", export::describe(&summary));
    Ok(())
}

/// `--event-feed`: the store's change log as baton events, one protojson line each, oldest
/// first, every page until the end of the log.
pub async fn event_feed(config: &Config) -> anyhow::Result<()> {
    use crate::events::{self, StartAt};
    let Some(request) = &config.event_feed else {
        anyhow::bail!("--event-feed was not asked for");
    };
    let store = setup::open_store(
        &config.state_dir,
        setup::projection_options(config),
        StoreUse::OnePass,
    )?;
    let mut start = match &request.cursor {
        Some(cursor) => StartAt::Cursor(cursor.clone()),
        None => StartAt::Time(request.start_at),
    };
    let mut out = std::io::stdout().lock();
    loop {
        let page = events::list_events(&store, &start, events::MAX_PAGE_SIZE)?;
        for event in &page.events {
            use std::io::Write;
            writeln!(out, "{}", events::event_json(event)).context("writing to stdout")?;
        }
        if !page.has_more {
            tracing::info!(cursor = %page.cursor, "event feed: resume with --event-feed-cursor");
            return Ok(());
        }
        start = StartAt::Cursor(page.cursor);
    }
}

/// What the store holds: counts, each feed's cursor age and last round, API calls spent, exports.
pub async fn status(config: &Config) -> anyhow::Result<()> {
    let store = setup::open_store(
        &config.state_dir,
        setup::projection_options(config),
        StoreUse::OnePass,
    )?;
    let status = store.status()?;
    let now = time::OffsetDateTime::now_utc();
    println!("state dir: {}", config.state_dir.display());
    println!("records:");
    match &status.records {
        Some(records) => {
            for (table, count) in records {
                println!("  {table:?}: {count}");
            }
        }
        None => println!("  not counted yet (counted by the first export)"),
    }
    println!("source items:");
    for (collection, count) in &status.items {
        println!("  {collection:?}: {count}");
    }
    println!("feeds:");
    for (feed, state) in &status.feeds {
        let age = state
            .cursor_written_at
            .map(|at| format!("cursor written {}s ago", (now - at).whole_seconds()))
            .unwrap_or_else(|| "no cursor (next round is a baseline)".to_string());
        let last = match &state.last_round {
            Some(round) => format!("last round {:?} at {}", round.outcome, round.ended_at),
            None => "no finished round".to_string(),
        };
        let running = if state.round.is_some() {
            " (a round is in progress or was interrupted)"
        } else {
            ""
        };
        // A feed may leave a note in its cursor about what it left out (`arm_tenant`).
        let note = state
            .cursor
            .as_ref()
            .and_then(|c| c.get("cursor"))
            .and_then(|c| c.get("note"))
            .and_then(serde_json::Value::as_str)
            .map(|note| format!("; {note}"))
            .unwrap_or_default();
        println!("  {feed}: {age}; {last}{running}{note}");
    }
    match history::read(&config.state_dir)? {
        Some(h) => println!(
            "API calls spent: {} to Graph ({} resource units), {} to ARM, over {} rounds; last round {} calls, {} records changed",
            h.graph_requests,
            h.graph_resource_units,
            h.arm_requests,
            h.rounds,
            h.last_round_requests,
            h.last_round_records_changed
                .map(|n| n.to_string())
                .unwrap_or_else(|| "untracked".into())
        ),
        None => println!("API calls spent: none recorded yet"),
    }
    match status.exports.last() {
        Some(e) => println!(
            "last export: {:?} {} at {} (change log seq {})",
            e.kind, e.sync_id, e.at, e.seq
        ),
        None => println!("last export: none"),
    }
    println!(
        "change log: head {}, diffs answerable since seq {}, {} entries; store {} bytes on disk",
        status.head_seq, status.log_floor, status.log_entries, status.disk_bytes
    );
    Ok(())
}

/// Forces a full resync of every feed on the next round.
pub async fn reset(config: &Config) -> anyhow::Result<()> {
    let store = setup::open_store(
        &config.state_dir,
        setup::projection_options(config),
        StoreUse::OnePass,
    )?;
    store.reset()?;
    store.flush()?;
    println!(
        "reset: the next round re-reads every feed from scratch (state dir {})",
        config.state_dir.display()
    );
    Ok(())
}

#[cfg(feature = "emulator")]
pub async fn demo(config: &Config, tenant: super::demo::SimulatedTenant) -> anyhow::Result<()> {
    super::demo::run(config, tenant).await
}

/// Serves the simulated tenant alone, until interrupted; its state lives in `./.emulator`.
#[cfg(feature = "emulator")]
pub async fn emulator(tenant: super::demo::SimulatedTenant) -> anyhow::Result<()> {
    let dir = std::env::current_dir()?.join(".emulator");
    emulator::run_standalone(emulator::EmulatorConfig::new(tenant.spec(), dir)).await
}

pub(crate) fn log_round(report: &RoundReport) {
    tracing::info!(
        pages = report.pages,
        items_written = report.items_written,
        items_removed = report.items_removed,
        records_changed = ?report.records_changed,
        api_requests = report.api_requests,
        elapsed_ms = report.elapsed.as_millis() as u64,
        baselines = ?report.baselines,
        expired = ?report.expired,
        failed = ?report.failed,
        "round finished"
    );
}
