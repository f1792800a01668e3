//! c1z export benchmark: a full export of 200,000 resources and about 1,000,000 grants, then diff
//! exports of 1% and 0.1% changes. Prints records, wall time, peak RSS and file size; asserts
//! nothing about speed. Run with `cargo bench --bench c1z_export`.

/// The program's allocator (src/main.rs), so the numbers are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/c1z_testdata/mod.rs"]
mod c1z_testdata;
use std::time::Instant;

use anyhow::Result;
use baton_azure_delta::c1z::{ExportOptions, ExportSummary, write_diff, write_full};
use baton_azure_delta::model::{Record, RecordChange};
use c1z_testdata::{self as testdata, Tenant};

const TENANT: Tenant = Tenant {
    users: 150_000,
    groups: 50_000,
    members_per_group: 19,
    nested_every: 10,
};

/// Peak resident set size of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU time (user + system) of this process so far, in seconds: on a shared machine the wall
/// time includes waiting for a core, CPU time does not.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // Linux reports these in USER_HZ, which is 100 on every mainstream configuration.
    (ticks(11) + ticks(12)) / 100.0
}

/// Resets VmHWM to the current RSS, so each phase reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn report(label: &str, records: u64, started: (Instant, f64), summary: &ExportSummary) {
    println!(
        "{label:<20} records={records:>8} wall={:>6.2}s cpu={:>6.2}s peak_rss={:>6.1}MiB file={:>6.2}MiB",
        started.0.elapsed().as_secs_f64(),
        cpu_seconds() - started.1,
        peak_rss_mib(),
        summary.file_size as f64 / (1024.0 * 1024.0)
    );
}

/// About `fraction` of the tenant's records changed: user renames, removed memberships and
/// new memberships in equal parts.
fn changes(fraction: f64) -> Vec<RecordChange> {
    let total = 1_200_000.0 * fraction;
    let each = (total / 3.0) as u32;
    let mut out = Vec::new();
    let change = |old: Option<Record>, new: Option<Record>| {
        let r = old
            .as_ref()
            .or(new.as_ref())
            .cloned()
            .unwrap_or_else(|| unreachable!());
        RecordChange {
            table: r.table(),
            external_id: r.external_id(),
            old,
            new,
        }
    };
    for i in 0..each {
        let user = testdata::object_id(1, i * 37 % TENANT.users);
        out.push(change(
            Some(testdata::user(
                &user,
                &format!("user{}", i * 37 % TENANT.users),
            )),
            Some(testdata::user(&user, &format!("renamed{i}"))),
        ));
        let group = testdata::object_id(2, i * 7 % TENANT.groups);
        let member =
            testdata::object_id(1, (i * 7 % TENANT.groups).wrapping_mul(7919) % TENANT.users);
        out.push(change(
            Some(testdata::membership(&group, "user", &member)),
            None,
        ));
        let newcomer = testdata::object_id(1, (i * 13 + 5) % TENANT.users);
        let other = testdata::object_id(2, i * 11 % TENANT.groups);
        out.push(change(
            None,
            Some(testdata::membership(&other, "user", &newcomer)),
        ));
    }
    out
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Baseline: what generating and encoding the records alone costs.
    let started = (Instant::now(), cpu_seconds());
    let mut encoded = 0;
    TENANT.for_each_record(&mut |record| {
        encoded += record.encode().len();
        Ok(())
    })?;
    println!(
        "{:<20} records={:>8} wall={:>6.2}s cpu={:>6.2}s encoded={:.1}MiB",
        "generate only",
        "-",
        started.0.elapsed().as_secs_f64(),
        cpu_seconds() - started.1,
        encoded as f64 / (1024.0 * 1024.0)
    );
    for (label, options) in [
        ("full (expanded)", ExportOptions::default()),
        (
            "full (skip-expand)",
            ExportOptions {
                skip_expand_grants: true,
            },
        ),
    ] {
        reset_peak_rss();
        let started = (Instant::now(), cpu_seconds());
        let mut feed = |sink: &mut dyn FnMut(Record) -> Result<()>| TENANT.for_each_record(sink);
        let summary = write_full(&dir.path().join("full.c1z"), &mut feed, options)?;
        let records: u64 = summary.full_rows.iter().sum();
        report(label, records, started, &summary);
        println!(
            "{:<20} resources={} entitlements={} grants={} (expanded {})",
            "",
            summary.full_rows[1],
            summary.full_rows[2],
            summary.full_rows[3],
            summary.expanded_grants
        );
    }
    for (label, fraction) in [("diff 1%", 0.01), ("diff 0.1%", 0.001)] {
        let changes = changes(fraction);
        reset_peak_rss();
        let started = (Instant::now(), cpu_seconds());
        let summary = write_diff(
            &dir.path().join("diff.c1z"),
            "2Ke7Ho2FXY4uH9oNw0Vd1LbkTt6",
            &changes,
            None,
        )?;
        report(label, changes.len() as u64, started, &summary);
    }
    Ok(())
}
