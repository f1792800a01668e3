//! Sync benchmarks (issues #5, #6 and #7): baseline, idle round, churn rounds and a full
//! re-read against the in-process emulator with its quota model on, at several tenant sizes,
//! beside the existing connector's call pattern replayed against the same tenant.
//!
//! `cargo bench --bench sync -- [--users 1000,10000,100000] [--out FILE]`; prints Markdown
//! (numbers, never assertions). Peak memory is the process's own high-water mark (VmHWM),
//! reset before each scenario through /proc/self/clear_refs; it includes the emulator's tenant,
//! whose resident size after generation is shown separately.

/// The program's allocator (src/main.rs), so the numbers are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_azure_delta::cli;
use baton_azure_delta::config::{Config, Needs, Settings};
use baton_azure_delta::store::StoreUse;
use baton_azure_delta::sync::engine::{RoundKind, RoundReport};
use baton_azure_delta::sync::{export, setup};
use emulator::{Control, Emulator, EmulatorConfig, RequestCounts, TenantSpec};

type Result<T> = anyhow::Result<T>;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let sizes: Vec<usize> = value("--users")
        .unwrap_or_else(|| "1000,10000,100000".to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut report = String::new();
    writeln!(report, "## Sync: baseline, idle, churn and full re-read\n")?;
    writeln!(
        report,
        "Emulator with its quota model on (Graph resource units per 10 s, ARM token buckets); \
         worker with production options. Calls are HTTP requests the emulator served (token \
         requests excluded). Peak memory is the bench process's high-water mark, emulator included.\n"
    )?;
    let mut scaling = vec![];
    for users in sizes {
        let result = bench_tenant(users, &mut report).await?;
        scaling.push(result);
        print!("{report}");
        report.clear();
    }
    let mut table = String::new();
    writeln!(table, "### Scaling\n")?;
    writeln!(
        table,
        "| users | baseline calls | baseline s | baseline peak MB | 1% churn calls (changes + poll) | 1% churn s | store MB | .c1z MB |"
    )?;
    writeln!(table, "|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for s in &scaling {
        writeln!(
            table,
            "| {} | {} | {:.1} | {} | {} | {:.2} | {:.1} | {:.1} |",
            s.users,
            s.baseline_calls,
            s.baseline_secs,
            s.baseline_peak_mb,
            s.churn_calls,
            s.churn_secs,
            s.store_mb,
            s.c1z_mb
        )?;
    }
    print!("{table}");
    if let Some(out) = value("--out") {
        let mut all = std::fs::read_to_string(&out).unwrap_or_default();
        all.push_str(&table);
        std::fs::write(&out, all)?;
    }
    Ok(())
}

struct Scale {
    users: usize,
    baseline_calls: u64,
    baseline_secs: f64,
    baseline_peak_mb: u64,
    churn_calls: u64,
    churn_secs: f64,
    store_mb: f64,
    c1z_mb: f64,
}

async fn bench_tenant(users: usize, out: &mut String) -> Result<Scale> {
    let dir = tempfile::tempdir()?;
    let spec = TenantSpec::with_users(users);
    let generated = Instant::now();
    let mut emulator_config = EmulatorConfig::new(spec.clone(), dir.path().join("emulator"));
    emulator_config.quotas = true;
    let emulator = Emulator::start(emulator_config).await?;
    let emulator_mb = rss_mb();
    let control = emulator.control();
    let shape = control.with_tenant(|t| {
        let memberships: usize = t.groups.values().map(|g| g.members.len()).sum();
        let assignments: usize = t
            .service_principals
            .values()
            .map(|s| s.app_role_assigned_to.len())
            .sum();
        format!(
            "{} users, {} groups, {} memberships, {} service principals, {} app role assignments, {} subscriptions",
            t.users.len(),
            t.groups.len(),
            memberships,
            t.service_principals.len(),
            assignments,
            t.subscriptions.len()
        )
    });
    writeln!(
        out,
        "### {users} users\n\nTenant: {shape}. Generated and served in {:.1} s; emulator resident {emulator_mb} MB.\n",
        generated.elapsed().as_secs_f64()
    )?;

    let config = config_for(&emulator, &dir.path().join("state"))?;
    let client = setup::connect(&config).await?;
    let store = Arc::new(setup::open_store(
        &config.state_dir,
        setup::projection_options(&config),
        StoreUse::Rounds,
    )?);
    let clock_control = control.clone();
    let engine = setup::engine_with_clock(
        store.clone(),
        client.clone(),
        setup::feed_options(&config),
        Arc::new(move || clock_control.now()),
    );

    writeln!(
        out,
        "| scenario | calls | Graph RU | 429s | records changed | wall s | peak MB |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
    let baseline = scenario(out, "baseline", &control, || engine.round(RoundKind::Poll)).await?;
    let baseline_by_endpoint = baseline.counts.by_endpoint.clone();
    let export_started = Instant::now();
    reset_peak();
    let file = dir.path().join("sync.c1z");
    let summary = export::full(&store, &file, Default::default())?;
    let export_secs = export_started.elapsed().as_secs_f64();
    let export_peak = peak_mb();
    scenario(out, "idle round (changes), at once", &control, || {
        engine.round(RoundKind::Changes)
    })
    .await?;
    // The delta schedule's default cadence is a round a minute; subscriptions read their
    // Activity Log in turns, each every five minutes: the steady state starts five minutes
    // after the baseline.
    for minute in 1..=6 {
        control.advance_clock(Duration::from_secs(60));
        let label = format!("idle round (changes), minute {minute} after the baseline");
        scenario(out, &label, &control, || engine.round(RoundKind::Changes)).await?;
    }
    scenario(out, "idle round (poll)", &control, || {
        engine.round(RoundKind::Poll)
    })
    .await?;
    let mut churn_calls = 0;
    let mut churn_secs = 0.0;
    for (i, fraction) in [0.001, 0.01, 0.1].into_iter().enumerate() {
        let applied = control.random_churn(500 + i as u64, fraction);
        // A minute later: the default delta schedule.
        control.advance_clock(Duration::from_secs(60));
        let total = applied.total();
        let label = format!(
            "{:.1}% churn ({total} changes): changes round",
            fraction * 100.0
        );
        let changes = scenario(out, &label, &control, || engine.round(RoundKind::Changes)).await?;
        let label = format!("{:.1}% churn: then a poll round", fraction * 100.0);
        let poll = scenario(out, &label, &control, || engine.round(RoundKind::Poll)).await?;
        if fraction == 0.01 {
            churn_calls = changes.calls + poll.calls;
            churn_secs = changes.secs + poll.secs;
        }
    }
    // Freshness: from a change in the tenant to a diff file that carries it.
    let base = export::last_export_sync_id(&store)?.unwrap_or_default();
    control.random_churn(900, 0.0005);
    control.advance_clock(Duration::from_secs(10 * 60));
    let latency = Instant::now();
    engine.round(RoundKind::Changes).await?;
    let diff = export::diff(
        &store,
        &dir.path().join("diff.c1z"),
        &base,
        false,
        Default::default(),
    )?;
    let latency_secs = latency.elapsed().as_secs_f64();

    store.reset()?;
    let full = scenario(out, "full re-read (reset + round)", &control, || {
        engine.round(RoundKind::Poll)
    })
    .await?;
    let store_mb = dir_mb(&config.state_dir);
    let c1z_mb = summary.file_size as f64 / 1e6;
    writeln!(
        out,
        "\nFull export: {:.2} s, peak {export_peak} MB, {c1z_mb:.1} MB file ({} grants incl. expanded). Store on disk: {store_mb:.1} MB.",
        export_secs, summary.full_rows[3]
    )?;
    writeln!(
        out,
        "Change to diff: a round plus a diff export took {latency_secs:.2} s after the change ({} upserts, {} deletions); with the default one-minute delta schedule a change reaches a diff within about a minute plus that.",
        diff.diff.as_ref().map(|d| d.upserts).unwrap_or(0),
        diff.diff.as_ref().map(|d| d.deletions).unwrap_or(0)
    )?;
    writeln!(
        out,
        "Ratios to the baseline's {} calls: full re-read {:.0}%, 1% churn {:.1}%.\n",
        baseline.calls,
        100.0 * full.calls as f64 / baseline.calls.max(1) as f64,
        100.0 * churn_calls as f64 / baseline.calls.max(1) as f64
    )?;

    // The existing connector's pattern on the same tenant.
    control.reset_counts();
    let anchor_started = Instant::now();
    let anchor = replay_anchor(&emulator).await?;
    let anchor_counts = control.request_counts();
    writeln!(
        out,
        "Existing connector's call pattern replayed (its per-group members and owners calls, per-app assignment and owner calls, per-user mailbox calls with the mailbox option): {} calls without the mailbox option, {} with it ({} failed), {:.1} s; ours: {} calls for the baseline.\n",
        anchor.calls - anchor.mailbox_calls,
        anchor.calls,
        anchor.failures,
        anchor_started.elapsed().as_secs_f64(),
        baseline.calls
    )?;
    writeln!(
        out,
        "<details><summary>Calls per endpoint: our baseline vs the existing connector's pattern</summary>\n"
    )?;
    writeln!(out, "| endpoint | ours | existing |\n|---|---:|---:|")?;
    let mut endpoints: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (e, n) in &baseline_by_endpoint {
        endpoints.entry(e).or_default().0 = *n;
    }
    for (e, n) in &anchor_counts.by_endpoint {
        endpoints.entry(e).or_default().1 = *n;
    }
    for (e, (ours, theirs)) in endpoints {
        writeln!(out, "| `{e}` | {ours} | {theirs} |")?;
    }
    writeln!(out, "\n</details>\n")?;
    emulator.shutdown().await;
    Ok(Scale {
        users,
        baseline_calls: baseline.calls,
        baseline_secs: baseline.secs,
        baseline_peak_mb: baseline.peak_mb,
        churn_calls,
        churn_secs,
        store_mb,
        c1z_mb,
    })
}

struct Measured {
    calls: u64,
    secs: f64,
    peak_mb: u64,
    counts: RequestCounts,
}

async fn scenario<'a, F, Fut>(
    out: &mut String,
    label: &str,
    control: &Control,
    run: F,
) -> Result<Measured>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<RoundReport>> + 'a,
{
    control.reset_counts();
    reset_peak();
    let started = Instant::now();
    let report = run().await?;
    let secs = started.elapsed().as_secs_f64();
    let counts = control.request_counts();
    let calls: u64 = counts
        .by_api
        .iter()
        .filter(|(api, _)| api.as_str() != "token")
        .map(|(_, n)| n)
        .sum();
    let peak_mb = peak_mb();
    let failed = if report.failed.is_empty() {
        String::new()
    } else {
        format!(" ({} feeds failed)", report.failed.len())
    };
    writeln!(
        out,
        "| {label}{failed} | {calls} | {} | {} | {} | {secs:.2} | {peak_mb} |",
        counts.graph_resource_units,
        counts.throttled,
        report
            .records_changed
            .map(|n| n.to_string())
            .unwrap_or_else(|| "untracked".into())
    )?;
    Ok(Measured {
        calls,
        secs,
        peak_mb,
        counts,
    })
}

fn config_for(emulator: &Emulator, state: &Path) -> Result<Config> {
    let mut argv = vec!["baton-azure-delta".to_string()];
    argv.extend(emulator.worker_args());
    argv.extend([
        format!("--state-dir={}", state.display()),
        "--listen=off".to_string(),
        "sync".to_string(),
    ]);
    let matches = cli::command().try_get_matches_from(argv)?;
    let settings = Settings::load(&matches, None)?;
    Ok(Config::from_settings(
        &settings,
        Needs { credential: true },
    )?)
}

struct Anchor {
    calls: u64,
    mailbox_calls: u64,
    failures: u64,
}

/// The existing connector's requests (anchor-connector.md section 4), sequential as it makes
/// them, following every nextLink (its truncation bugs aside).
async fn replay_anchor(emulator: &Emulator) -> Result<Anchor> {
    let ca = reqwest::Certificate::from_pem(emulator.ca_cert_pem().as_bytes())?;
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()?;
    let token = |scope: String| {
        let http = http.clone();
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            emulator.authority_host(),
            emulator.tenant_id()
        );
        let form = [
            ("grant_type", "client_credentials".to_string()),
            ("client_id", emulator.client_id()),
            ("client_secret", emulator.client_secret()),
            ("scope", scope),
        ];
        async move {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish();
            let body: serde_json::Value = http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encoded)
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(
                body["access_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    };
    let graph_origin = url::Url::parse(&emulator.graph_url())?
        .origin()
        .ascii_serialization();
    let arm_origin = url::Url::parse(&emulator.arm_url())?
        .origin()
        .ascii_serialization();
    let graph_token = token(format!("{graph_origin}/.default")).await?;
    let arm_token = token(format!("{arm_origin}/.default")).await?;
    let mut anchor = Anchor {
        calls: 0,
        mailbox_calls: 0,
        failures: 0,
    };
    // Every page of a collection; returns its items.
    async fn all(
        http: &reqwest::Client,
        token: &str,
        first: String,
        next_key: &str,
        anchor: &mut Anchor,
    ) -> Vec<serde_json::Value> {
        let mut items = vec![];
        let mut url = Some(first);
        while let Some(u) = url.take() {
            anchor.calls += 1;
            let response = http
                .get(&u)
                .bearer_auth(token)
                .header("ConsistencyLevel", "eventual")
                .send()
                .await;
            let Ok(response) = response else {
                anchor.failures += 1;
                break;
            };
            if response.status().as_u16() == 429 {
                // Honour Retry-After as the SDK does, then repeat the same page.
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                tokio::time::sleep(Duration::from_secs(wait.min(10))).await;
                url = Some(u);
                continue;
            }
            if !response.status().is_success() {
                anchor.failures += 1;
                break;
            }
            let Ok(body) = response.json::<serde_json::Value>().await else {
                anchor.failures += 1;
                break;
            };
            items.extend(body["value"].as_array().cloned().unwrap_or_default());
            url = body[next_key].as_str().map(str::to_string);
        }
        items
    }
    let g = |path: &str| format!("{graph_origin}{path}");
    let a = |path: &str| format!("{arm_origin}{path}");
    all(
        &http,
        &graph_token,
        g("/v1.0/organization"),
        "@odata.nextLink",
        &mut anchor,
    )
    .await;
    let users = all(&http, &graph_token, g("/beta/users?$select=id,displayName,mail,userPrincipalName,jobTitle,accountEnabled,employeeId,department&$expand=manager($select=id,employeeId,mail,displayName)&$top=999"), "@odata.nextLink", &mut anchor).await;
    for user in &users {
        let id = user["id"].as_str().unwrap_or_default();
        let before = anchor.calls;
        all(
            &http,
            &graph_token,
            g(&format!(
                "/beta/users/{id}/mailboxSettings?$select=userPurpose"
            )),
            "@odata.nextLink",
            &mut anchor,
        )
        .await;
        anchor.mailbox_calls += anchor.calls - before;
    }
    let groups = all(&http, &graph_token, g("/beta/groups?$select=id,displayName,groupTypes,mailEnabled,securityEnabled,onPremisesSyncEnabled&$top=999"), "@odata.nextLink", &mut anchor).await;
    for group in &groups {
        let id = group["id"].as_str().unwrap_or_default();
        all(
            &http,
            &graph_token,
            g(&format!("/beta/groups/{id}/owners?$select=id")),
            "@odata.nextLink",
            &mut anchor,
        )
        .await;
        all(&http, &graph_token, g(&format!("/beta/groups/{id}/members?$select=id,servicePrincipalType,onPremisesSyncEnabled&$top=999")), "@odata.nextLink", &mut anchor).await;
    }
    let apps = all(
        &http,
        &graph_token,
        g("/v1.0/servicePrincipals?$filter=servicePrincipalType eq 'Application'&$top=999"),
        "@odata.nextLink",
        &mut anchor,
    )
    .await;
    all(
        &http,
        &graph_token,
        g("/v1.0/servicePrincipals?$filter=servicePrincipalType eq 'ManagedIdentity'&$top=999"),
        "@odata.nextLink",
        &mut anchor,
    )
    .await;
    for app in &apps {
        let id = app["id"].as_str().unwrap_or_default();
        all(
            &http,
            &graph_token,
            g(&format!(
                "/beta/servicePrincipals/{id}/appRoleAssignedTo?$top=999"
            )),
            "@odata.nextLink",
            &mut anchor,
        )
        .await;
        all(
            &http,
            &graph_token,
            g(&format!("/beta/servicePrincipals/{id}/owners?$select=id")),
            "@odata.nextLink",
            &mut anchor,
        )
        .await;
    }
    let subscriptions = all(
        &http,
        &arm_token,
        a("/subscriptions?api-version=2016-06-01"),
        "nextLink",
        &mut anchor,
    )
    .await;
    all(
        &http,
        &arm_token,
        a("/tenants?api-version=2016-06-01"),
        "nextLink",
        &mut anchor,
    )
    .await;
    all(
        &http,
        &arm_token,
        a("/providers/Microsoft.Management/managementGroups?api-version=2021-04-01"),
        "nextLink",
        &mut anchor,
    )
    .await;
    let mut principals = std::collections::BTreeSet::new();
    for sub in &subscriptions {
        let id = sub["subscriptionId"].as_str().unwrap_or_default();
        all(
            &http,
            &arm_token,
            a(&format!(
                "/subscriptions/{id}/resourcegroups?api-version=2021-04-01"
            )),
            "nextLink",
            &mut anchor,
        )
        .await;
        all(&http, &arm_token, a(&format!("/subscriptions/{id}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01")), "nextLink", &mut anchor).await;
        let assignments = all(&http, &arm_token, a(&format!("/subscriptions/{id}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01")), "nextLink", &mut anchor).await;
        for assignment in &assignments {
            if let Some(p) = assignment["properties"]["principalId"].as_str() {
                principals.insert(p.to_string());
            }
        }
        let accounts = all(&http, &arm_token, a(&format!("/subscriptions/{id}/providers/Microsoft.Storage/storageAccounts?api-version=2023-05-01")), "nextLink", &mut anchor).await;
        for account in &accounts {
            let account_id = account["id"].as_str().unwrap_or_default();
            all(
                &http,
                &arm_token,
                a(&format!(
                    "{account_id}/blobServices/default/containers?api-version=2023-05-01"
                )),
                "nextLink",
                &mut anchor,
            )
            .await;
        }
    }
    // Principal types resolved through Graph, once per principal (its session-store cache).
    for principal in principals {
        all(
            &http,
            &graph_token,
            g(&format!("/v1.0/directoryObjects/{principal}")),
            "@odata.nextLink",
            &mut anchor,
        )
        .await;
    }
    Ok(anchor)
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn rss_mb() -> u64 {
    status_kb("VmRSS:") / 1024
}

fn peak_mb() -> u64 {
    status_kb("VmHWM:") / 1024
}

/// Resets the peak resident size (VmHWM) to the current one (Linux 4.0+).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn dir_mb(dir: &Path) -> f64 {
    fn size(p: &Path) -> u64 {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p)
                .map(|entries| entries.flatten().map(|e| size(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    size(dir) as f64 / 1e6
}
