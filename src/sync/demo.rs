//! The `demo` command: the whole product on a simulated tenant, in under a minute.
//!
//! It starts the tenant emulator on loopback, runs the baseline with a progress bar, writes
//! `demo.c1z`, then applies rounds of realistic changes (joiners, leavers, membership and role
//! changes, an expired delta token), runs a round after each and writes a diff, printing what
//! each round cost. At the end it reads the same tenant again from scratch into a second store
//! and checks, record for record, that the incremental state equals that fresh baseline, and that
//! both match the emulator's own expected access graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use super::engine::{Engine, RoundKind, RoundReport};
use super::{export, setup};
use crate::azure::{Credential, Endpoints, Secret};
use crate::c1z::writer::ExportOptions;
use crate::config::{CaCertificates, Config};
use crate::feeds::FeedOptions;
use crate::model::{Record, Table};
use crate::store::{Store, StoreUse};
use emulator::{Control, Emulator, EmulatorConfig, ExpectedOptions, TenantSpec};

/// The simulated tenant `demo` and `emulator` run: its users (the rest of the tenant scales with
/// them; None gives the demo's tenant) and the generator's seed (same seed, same tenant).
#[derive(Clone, Copy, Debug)]
pub struct SimulatedTenant {
    pub users: Option<usize>,
    pub seed: u64,
}

impl SimulatedTenant {
    pub fn spec(self) -> TenantSpec {
        let spec = match self.users {
            Some(users) => TenantSpec::with_users(users),
            None => TenantSpec::demo(),
        };
        TenantSpec {
            seed: self.seed,
            ..spec
        }
    }
}

/// One scripted round of the demo.
struct Step {
    title: &'static str,
    kind: RoundKind,
    apply: fn(&Control, u64) -> anyhow::Result<String>,
}

const STEPS: [Step; 5] = [
    Step {
        title: "joiners, leavers, profile edits",
        kind: RoundKind::Changes,
        apply: |control, seed| Ok(churn(control, seed, 0.01)),
    },
    Step {
        title: "membership and role changes",
        kind: RoundKind::Changes,
        apply: |control, seed| Ok(churn(control, seed, 0.02)),
    },
    Step {
        title: "delta token expired (8 days offline)",
        kind: RoundKind::Changes,
        apply: |control, seed| {
            control.advance_clock(Duration::from_secs(8 * 24 * 3600));
            Ok(churn(control, seed, 0.005))
        },
    },
    Step {
        title: "scheduled poll of lists without delta",
        kind: RoundKind::Poll,
        apply: |control, seed| Ok(churn(control, seed, 0.002)),
    },
    Step {
        title: "nothing changed",
        kind: RoundKind::Changes,
        apply: |_, _| Ok("none".to_string()),
    },
];

fn churn(control: &Control, seed: u64, fraction: f64) -> String {
    let c = control.random_churn(seed, fraction);
    let total = c.total();
    format!(
        "{total} (+{} -{} users, {} edits, {} memberships, {} role/app assignments)",
        c.users_created,
        c.users_soft_deleted + c.users_hard_deleted,
        c.users_updated + c.users_restored,
        c.members_added + c.members_removed + c.owners_changed,
        c.app_role_assignments_changed
            + c.directory_role_assignments_changed
            + c.role_assignments_changed
    )
}

pub async fn run(config: &Config, tenant: SimulatedTenant) -> anyhow::Result<()> {
    let started = Instant::now();
    let workdir =
        std::env::temp_dir().join(format!("baton-azure-delta-demo-{}", std::process::id()));
    let result = run_in(config, tenant, &workdir).await;
    let _ = std::fs::remove_dir_all(&workdir);
    result?;
    println!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

async fn run_in(config: &Config, tenant: SimulatedTenant, workdir: &Path) -> anyhow::Result<()> {
    let spec = tenant.spec();
    println!(
        "Starting the tenant emulator on loopback: {} users (seed {})",
        spec.users, spec.seed
    );
    let emulator = Emulator::start(EmulatorConfig::new(spec, workdir.join("emulator")))
        .await
        .context("starting the tenant emulator")?;
    let demo = demo_config(config, &emulator, workdir)?;
    let control = emulator.control();
    let options = setup::feed_options(&demo);
    let export_options = ExportOptions {
        skip_expand_grants: demo.options.skip_expand_grants,
    };

    let client = setup::connect(&demo).await?;
    let store = Arc::new(setup::open_store(
        &demo.state_dir,
        setup::projection_options(&demo),
        StoreUse::Rounds,
    )?);
    let engine = demo_engine(store.clone(), client, options.clone(), &control);

    let mut table = vec![];
    let bar = progress_bar();
    let watched = bar.clone();
    engine.observe_pages(Box::new(move |page| {
        watched.inc(1);
        watched.set_message(format!("{} (+{} items)", page.feed, page.changes));
    }));
    let report = engine.round(RoundKind::Poll).await?;
    bar.finish_and_clear();
    fail_on_failed_feeds(&report)?;
    let summary = export::full(&store, &demo.file, export_options)?;
    table.push(row("baseline", "-", &report, &summary.path));

    for (number, step) in STEPS.iter().enumerate() {
        let applied = (step.apply)(&control, 1000 + number as u64)?;
        // Activity Log events become queryable minutes after they happen, as in Azure.
        control.advance_clock(Duration::from_secs(10 * 60));
        let report = engine.round(step.kind).await?;
        fail_on_failed_feeds(&report)?;
        let base =
            export::last_export_sync_id(&store)?.context("the baseline export was not recorded")?;
        let path = demo
            .file
            .with_file_name(format!("demo.diff-{}.c1z", number + 1));
        let summary = export::diff(&store, &path, &base, false, export_options)?;
        table.push(row(step.title, &applied, &report, &summary.path));
    }
    let summary = export::full(&store, &demo.file, export_options)?;
    print_table(&table);
    println!("{}", export::describe(&summary));

    // The proof: a fresh baseline of the same tenant gives the same records.
    println!("Checking: a fresh baseline of the same tenant into a new store...");
    let fresh_store = Arc::new(setup::open_store(
        &workdir.join("fresh-state"),
        setup::projection_options(&demo),
        StoreUse::Rounds,
    )?);
    let fresh_client = setup::connect(&demo).await?;
    let fresh = demo_engine(fresh_store.clone(), fresh_client, options, &control);
    let report = fresh.round(RoundKind::Poll).await?;
    fail_on_failed_feeds(&report)?;
    let incremental = records(&store)?;
    let baseline = records(&fresh_store)?;
    let differences = compare(&incremental, &baseline);
    if !differences.is_empty() {
        anyhow::bail!(
            "the incremental state differs from a fresh baseline in {} records, e.g.:\n  {}",
            differences.len(),
            differences
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
    println!(
        "OK: the incremental state equals a fresh baseline, record for record ({} records)",
        incremental.len()
    );
    let expected = control.expected_graph(&ExpectedOptions {
        mailbox_settings: demo.options.mailbox_settings,
        skip_ad_groups: demo.options.skip_ad_groups,
        skip_unused_roles: demo.options.skip_unused_roles,
        skip_storage_containers: demo.options.skip_storage_containers,
        skip_p2: demo.options.skip_p2,
    });
    let ours: BTreeSet<(Table, String)> = incremental.keys().cloned().collect();
    let theirs: BTreeSet<(Table, String)> = expected
        .resource_types
        .iter()
        .map(|id| (Table::ResourceTypes, id.clone()))
        .chain(
            expected
                .resources
                .keys()
                .map(|id| (Table::Resources, id.clone())),
        )
        .chain(
            expected
                .entitlements
                .keys()
                .map(|id| (Table::Entitlements, id.clone())),
        )
        .chain(expected.grants.keys().map(|id| (Table::Grants, id.clone())))
        .collect();
    let missing: Vec<_> = theirs.difference(&ours).take(10).collect();
    let extra: Vec<_> = ours.difference(&theirs).take(10).collect();
    if missing.is_empty() && extra.is_empty() {
        println!(
            "OK: it matches the emulator's expected access graph ({} ids)",
            theirs.len()
        );
    } else {
        anyhow::bail!(
            "the exported ids differ from the emulator's expected access graph: {} missing (e.g. {:?}), {} unexpected (e.g. {:?})",
            theirs.difference(&ours).count(),
            missing,
            ours.difference(&theirs).count(),
            extra
        );
    }
    emulator.shutdown().await;
    Ok(())
}

/// The user's configuration (options, log settings), pointed at the emulator.
fn demo_config(config: &Config, emulator: &Emulator, workdir: &Path) -> anyhow::Result<Config> {
    let url = |s: String| url::Url::parse(&s).with_context(|| format!("emulator URL {s}"));
    let ca_path = emulator.ca_cert_path();
    let pem = emulator.ca_cert_pem().into_bytes();
    Ok(Config {
        credential: Some(Credential::ClientSecret {
            tenant_id: emulator.tenant_id(),
            client_id: emulator.client_id(),
            client_secret: Secret::new(emulator.client_secret()),
        }),
        endpoints: Endpoints {
            authority_host: url(emulator.authority_host())?,
            graph: url(emulator.graph_url())?,
            arm: url(emulator.arm_url())?,
        },
        ca_cert: Some(CaCertificates {
            path: ca_path,
            pem,
            count: 1,
        }),
        state_dir: workdir.join("state"),
        file: PathBuf::from("demo.c1z"),
        reset: false,
        listen: None,
        ..config.clone()
    })
}

fn demo_engine(
    store: Arc<Store>,
    client: crate::azure::AzureClient,
    options: FeedOptions,
    control: &Control,
) -> Engine {
    let clock_control = control.clone();
    setup::engine_with_clock(
        store,
        client,
        options,
        Arc::new(move || clock_control.now()),
    )
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} baseline: {pos} pages, {elapsed} - {msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

fn fail_on_failed_feeds(report: &RoundReport) -> anyhow::Result<()> {
    if report.failed.is_empty() {
        return Ok(());
    }
    anyhow::bail!("feeds failed: {:?}", report.failed)
}

struct Row {
    round: String,
    applied: String,
    calls: String,
    records: String,
    seconds: f64,
    file: String,
}

fn row(round: &str, applied: &str, report: &RoundReport, file: &Path) -> Row {
    let mut calls = format!(
        "{} ({} Graph, {} ARM)",
        report.api_requests, report.graph_requests, report.arm_requests
    );
    if !report.expired.is_empty() {
        calls.push_str(&format!(", {} re-baselined", report.expired.len()));
    }
    Row {
        round: round.to_string(),
        applied: applied.to_string(),
        calls,
        records: report
            .records_changed
            .map(|n| n.to_string())
            .unwrap_or_else(|| "-".to_string()),
        seconds: report.elapsed.as_secs_f64(),
        file: file.display().to_string(),
    }
}

fn print_table(rows: &[Row]) {
    let width = |f: &dyn Fn(&Row) -> usize, title: &str| {
        rows.iter().map(f).max().unwrap_or(0).max(title.len())
    };
    let w = [
        width(&|r| r.round.len(), "round"),
        width(&|r| r.applied.len(), "changes applied"),
        width(&|r| r.calls.len(), "API calls"),
        width(&|r| r.records.len(), "records changed"),
        width(&|r| r.file.len(), "written"),
    ];
    println!(
        "{:<a$}  {:<b$}  {:<c$}  {:>d$}  {:>7}  {:<e$}",
        "round",
        "changes applied",
        "API calls",
        "records changed",
        "time",
        "written",
        a = w[0],
        b = w[1],
        c = w[2],
        d = w[3],
        e = w[4]
    );
    for r in rows {
        println!(
            "{:<a$}  {:<b$}  {:<c$}  {:>d$}  {:>6.2}s  {:<e$}",
            r.round,
            r.applied,
            r.calls,
            r.records,
            r.seconds,
            r.file,
            a = w[0],
            b = w[1],
            c = w[2],
            d = w[3],
            e = w[4]
        );
    }
}

/// Every record of a store, by table and external id, as its encoded bytes.
pub fn records(store: &Store) -> anyhow::Result<BTreeMap<(Table, String), Vec<u8>>> {
    let mut all = BTreeMap::new();
    store.for_each_record(&mut |record: Record| {
        all.insert((record.table(), record.external_id()), record.encode());
        Ok(())
    })?;
    Ok(all)
}

/// The records that differ between two stores, described.
pub fn compare(
    left: &BTreeMap<(Table, String), Vec<u8>>,
    right: &BTreeMap<(Table, String), Vec<u8>>,
) -> Vec<String> {
    let mut differences = vec![];
    for (key, bytes) in left {
        match right.get(key) {
            None => differences.push(format!("only incremental: {:?} {}", key.0, key.1)),
            Some(other) if other != bytes => {
                differences.push(format!("different: {:?} {}", key.0, key.1))
            }
            Some(_) => {}
        }
    }
    for key in right.keys() {
        if !left.contains_key(key) {
            differences.push(format!("only fresh baseline: {:?} {}", key.0, key.1));
        }
    }
    differences
}
