//! Exports from the store: a full snapshot to the configured file, a diff pair since an earlier
//! export, or both, and the bookkeeping that lets the next diff find its base.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::c1z::writer::{self, ExportOptions, ExportRequest, ExportSummary};
use crate::store::{ExportKind, Store};

/// Writes a full snapshot of the store to `path` and remembers it as a diff base.
pub fn full(store: &Store, path: &Path, options: ExportOptions) -> anyhow::Result<ExportSummary> {
    write(store, path, &ExportRequest::Full, options)
}

/// Writes the diff pair since the export `base_sync_id` (a full snapshot instead, with a
/// warning, when the change log no longer reaches it) and remembers it as the next base.
pub fn diff(
    store: &Store,
    path: &Path,
    base_sync_id: &str,
    with_full: bool,
    options: ExportOptions,
) -> anyhow::Result<ExportSummary> {
    let request = ExportRequest::DiffSince {
        base_sync_id: base_sync_id.to_string(),
        with_full,
    };
    write(store, path, &request, options)
}

fn write(
    store: &Store,
    path: &Path,
    request: &ExportRequest,
    options: ExportOptions,
) -> anyhow::Result<ExportSummary> {
    // Rounds and exports run one at a time in this process (and sled's lock keeps other
    // processes out), so the head read now is the state the export writes.
    let seq = store.head_seq();
    let summary = writer::export(path, store, request, options)?;
    let kind = if summary.diff.is_some() {
        ExportKind::Diff
    } else {
        ExportKind::Full
    };
    if let Some(sync_id) = summary.state_sync_id() {
        store
            .record_export(sync_id, seq, kind)
            .with_context(|| format!("remembering export {sync_id}"))?;
    }
    Ok(summary)
}

/// The newest export this store remembers, the base of the next automatic diff.
pub fn last_export_sync_id(store: &Store) -> anyhow::Result<Option<String>> {
    Ok(store.status()?.exports.last().map(|e| e.sync_id.clone()))
}

/// Where an automatic diff goes: beside the snapshot file, named by time so none overwrites another.
pub fn diff_path(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "sync".to_string());
    let stamp = time::OffsetDateTime::now_utc()
        .format(&time::macros::format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .unwrap_or_else(|_| "now".to_string());
    file.with_file_name(format!("{stem}.diff-{stamp}.c1z"))
}

/// One line for logs and the CLI.
pub fn describe(summary: &ExportSummary) -> String {
    let mut line = format!(
        "wrote {} ({} bytes)",
        summary.path.display(),
        summary.file_size
    );
    if let Some(id) = &summary.full_sync_id {
        let [types, resources, entitlements, grants] = summary.full_rows;
        line.push_str(&format!(
            "; full sync {id}: {types} resource types, {resources} resources, {entitlements} entitlements, {grants} grants ({} expanded)",
            summary.expanded_grants
        ));
    }
    if let Some(d) = &summary.diff {
        line.push_str(&format!(
            "; diff since {}: {} upserts, {} deletions",
            d.base_sync_id, d.upserts, d.deletions
        ));
    }
    if let Some(reason) = &summary.fell_back_to_full {
        line.push_str(&format!(" (full snapshot: {reason})"));
    }
    line
}
