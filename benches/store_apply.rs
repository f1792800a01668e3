//! Store benchmark: a synthetic tenant (by default 200k directory objects and ~1M membership
//! and assignment edges) committed as a baseline, a full snapshot exported, then a run of
//! delta pages (projected and logged) and the diff since the export. The `export` command is also
//! timed in a new process, as a user runs it. Prints throughput, peak RSS per phase (VmHWM, reset between
//! phases through /proc/self/clear_refs) and disk size. Numbers only, no assertions.
//!
//! `cargo bench --bench store_apply [-- --scale 0.1]` (scale multiplies every count).

/// The program's allocator (src/main.rs), so the numbers are the program's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use baton_azure_delta::c1z::ExportOptions;
use baton_azure_delta::item::{Change, Collection, ItemKey};
use baton_azure_delta::model::projection::ProjectionOptions;
use baton_azure_delta::store::{ExportKind, Store};
use serde_json::json;

const PAGE: usize = 1_000;
const DELTA_PAGE: usize = 100;

/// Deterministic pseudo-random numbers (xorshift64*), so every run commits the same tenant.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn guid(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

struct Tenant {
    users: usize,
    groups: usize,
    apps: usize,
    members_per_group: usize,
}

impl Tenant {
    fn user(&self, n: usize) -> Change {
        let id = guid(1, n);
        let upn = format!("user{n}@contoso.com");
        Change::Upsert {
            key: ItemKey::new(Collection::User, id.as_str()),
            value: json!({
                "id": id,
                "displayName": format!("User {n}"),
                "givenName": "User",
                "surname": format!("{n}"),
                "userPrincipalName": upn,
                "mail": upn,
                "accountEnabled": true,
                "userType": "Member",
                "employeeId": format!("E{n:06}"),
                "department": "Engineering",
                "jobTitle": "Engineer",
                "createdDateTime": "2024-01-15T09:30:00Z",
                "manager": {"@odata.type": "#microsoft.graph.user", "id": guid(1, n / 10), "mail": format!("user{}@contoso.com", n / 10)},
            }),
        }
    }

    fn group(&self, n: usize) -> Change {
        let id = guid(2, n);
        Change::Upsert {
            key: ItemKey::new(Collection::Group, id.as_str()),
            value: json!({
                "id": id,
                "displayName": format!("Group {n}"),
                "description": "A security group",
                "mailEnabled": false,
                "securityEnabled": true,
                "groupTypes": [],
                "createdDateTime": "2023-05-01T08:00:00Z",
            }),
        }
    }

    fn member(&self, group: usize, user: usize) -> Change {
        Change::Upsert {
            key: ItemKey::new(
                Collection::GroupMember,
                format!("{}/{}", guid(2, group), guid(1, user)),
            ),
            value: json!({"@odata.type": "#microsoft.graph.user"}),
        }
    }

    fn app(&self, n: usize) -> Change {
        let id = guid(3, n);
        let kind = if n.is_multiple_of(4) {
            "ManagedIdentity"
        } else {
            "Application"
        };
        Change::Upsert {
            key: ItemKey::new(Collection::ServicePrincipal, id.as_str()),
            value: json!({
                "id": id,
                "appId": guid(4, n),
                "displayName": format!("App {n}"),
                "servicePrincipalType": kind,
                "accountEnabled": true,
                "appRoles": [
                    {"id": guid(5, 2 * n), "displayName": "Reader", "value": "Read", "isEnabled": true, "allowedMemberTypes": ["User"]},
                    {"id": guid(5, 2 * n + 1), "displayName": "Writer", "value": "Write", "isEnabled": true, "allowedMemberTypes": ["User"]},
                ],
            }),
        }
    }

    fn app_role_assignment(&self, app: usize, user: usize, k: usize) -> Change {
        let resource = guid(3, app);
        let assignment = guid(6, app * 8 + k);
        Change::Upsert {
            key: ItemKey::new(
                Collection::AppRoleAssignment,
                format!("{resource}/{assignment}"),
            ),
            value: json!({
                "id": assignment,
                "appRoleId": guid(5, 2 * app + k % 2),
                "principalId": guid(1, user),
                "principalType": "User",
                "principalDisplayName": format!("User {user}"),
                "resourceId": resource,
                "createdDateTime": "2024-02-01T00:00:00Z",
            }),
        }
    }

    /// The baseline in the order the feeds would deliver it: users, groups each followed by
    /// its members, service principals each followed by its assignments.
    fn baseline(&self, rng: &mut Rng) -> impl Iterator<Item = Change> {
        let users = (0..self.users).map(|n| self.user(n));
        let groups = (0..self.groups).flat_map(move |g| {
            let members: Vec<Change> = (0..self.members_per_group)
                .map(|_| self.member(g, rng.below(self.users)))
                .collect();
            std::iter::once(self.group(g)).chain(members)
        });
        let apps = (0..self.apps).flat_map(move |a| {
            std::iter::once(self.app(a)).chain(
                (0..8).map(move |k| self.app_role_assignment(a, (a * 37 + k) % self.users, k)),
            )
        });
        let org = std::iter::once(Change::Upsert {
            key: ItemKey::new(Collection::Organization, guid(9, 1)),
            value: json!({"id": guid(9, 1), "displayName": "Contoso"}),
        });
        org.chain(users).chain(groups).chain(apps)
    }

    fn delta_change(&self, rng: &mut Rng, n: usize) -> Change {
        match rng.below(4) {
            0 => {
                let u = rng.below(self.users);
                Change::Merge {
                    key: ItemKey::new(Collection::User, guid(1, u)),
                    value: json!({"displayName": format!("User {u} renamed {n}")}),
                }
            }
            1 => self.member(rng.below(self.groups), rng.below(self.users)),
            2 => Change::Remove {
                key: ItemKey::new(
                    Collection::GroupMember,
                    format!(
                        "{}/{}",
                        guid(2, rng.below(self.groups)),
                        guid(1, rng.below(self.users))
                    ),
                ),
            },
            _ => {
                let g = rng.below(self.groups);
                Change::Merge {
                    key: ItemKey::new(Collection::Group, guid(2, g)),
                    value: json!({"description": format!("changed {n}")}),
                }
            }
        }
    }
}

fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l[field.len()..].trim().to_string())
        })
        .unwrap_or_else(|| "n/a".to_string())
}

/// Starts a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn report(phase: &str, count: usize, what: &str, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{phase:<26} {count:>9} {what:<8} {secs:>8.2} s {:>10.0} {what}/s   peak RSS {}   RSS {}",
        count as f64 / secs,
        proc_status("VmHWM:"),
        proc_status("VmRSS:"),
    );
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let scale: f64 = match args.iter().position(|a| a == "--scale") {
        Some(i) => args
            .get(i + 1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("--scale needs a number"))?,
        None => 1.0,
    };
    let scaled = |n: f64| ((n * scale) as usize).max(1);
    let tenant = Tenant {
        users: scaled(150_000.0),
        groups: scaled(40_000.0),
        apps: scaled(10_000.0),
        members_per_group: 23,
    };
    let edges = tenant.groups * tenant.members_per_group + tenant.apps * 8;
    println!(
        "tenant: {} users, {} groups, {} service principals = {} objects; {} edges (scale {scale})",
        tenant.users,
        tenant.groups,
        tenant.apps,
        tenant.users + tenant.groups + tenant.apps,
        edges
    );

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state");
    let store = Store::open(&path, ProjectionOptions::default())?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    reset_peak();
    let started = Instant::now();
    let round = store.begin_round("bench")?;
    let mut page: Vec<Change> = Vec::with_capacity(PAGE);
    let mut items = 0;
    for change in tenant.baseline(&mut Rng(42)) {
        page.push(change);
        if page.len() == PAGE {
            items += page.len();
            store.commit_page("bench", &page, round, &[], Some(&json!({"page": items})))?;
            page.clear();
        }
    }
    items += page.len();
    store.commit_page("bench", &page, round, &[], Some(&json!({"page": items})))?;
    store.flush()?;
    report("baseline commit", items, "items", started);

    println!(
        "  disk after baseline: {} MB (sled says {} MB)",
        dir_size(&path) / 1_000_000,
        store.status()?.disk_bytes / 1_000_000
    );

    // The `export` command, as a user runs it: a fresh process that opens the store, writes
    // the full snapshot (grants expanded) and exits. Its wall time and peak RSS include
    // opening the store. Twice, to show the spread.
    drop(store);
    let cli_c1z = dir.path().join("cli.c1z");
    for run in 1..=2 {
        let started = Instant::now();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_baton-azure-delta"))
            .arg("export")
            .arg(format!("--state-dir={}", path.display()))
            .arg(format!("--file={}", cli_c1z.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        // getrusage's children maxrss starts from this process's own RSS at the fork, so read
        // the child's high-water mark while it runs instead (it only grows).
        let status_path = format!("/proc/{}/status", child.id());
        let mut peak = String::from("n/a");
        let status = loop {
            if let Some(hwm) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .map(str::to_string)
            }) {
                peak = hwm["VmHWM:".len()..].trim().to_string();
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let secs = started.elapsed().as_secs_f64();
        if !status.success() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                std::io::Read::read_to_string(&mut pipe, &mut stderr)?;
            }
            anyhow::bail!("the export command failed: {stderr}");
        }
        println!(
            "export command, run {run}      {:>9.2} s   peak RSS {peak}   file {:.1} MB",
            secs,
            std::fs::metadata(&cli_c1z)?.len() as f64 / 1e6
        );
    }
    let store = Store::open(&path, ProjectionOptions::default())?;

    // The first export is a full snapshot; diffs are asked against it from then on.
    reset_peak();
    let started = Instant::now();
    let mut records = 0;
    let export = store.snapshot(&mut |_record| {
        records += 1;
        Ok(())
    })?;
    report("full snapshot", records, "records", started);
    println!("  records per table: {:?}", store.status()?.records);
    store.record_export("bench-full", export, ExportKind::Full)?;

    // The same snapshot through the real export path: the store's records streamed into the
    // .c1z writer (grants expanded), as `export` and the worker write it (issue #4).
    for (label, skip_expand_grants) in [
        ("c1z export (expanded)", false),
        ("c1z export (skip-expand)", true),
    ] {
        reset_peak();
        let started = Instant::now();
        let c1z = dir.path().join("full.c1z");
        let summary = baton_azure_delta::sync::export::full(
            &store,
            &c1z,
            ExportOptions { skip_expand_grants },
        )?;
        report(
            label,
            summary.full_rows.iter().sum::<u64>() as usize,
            "records",
            started,
        );
        println!(
            "  grants {} (expanded {}), file {:.1} MB",
            summary.full_rows[3],
            summary.expanded_grants,
            summary.file_size as f64 / 1e6
        );
    }

    reset_peak();
    let started = Instant::now();
    let deltas = scaled(20_000.0);
    let round = store.begin_round("bench")?;
    let mut changes = 0;
    let mut records_changed = 0;
    while changes < deltas {
        let page: Vec<Change> = (0..DELTA_PAGE)
            .map(|i| tenant.delta_change(&mut rng, changes + i))
            .collect();
        changes += page.len();
        records_changed += store
            .commit_page("bench", &page, round, &[], None)?
            .records_changed
            .unwrap_or_default();
    }
    store.flush()?;
    report("delta commits", changes, "changes", started);
    println!(
        "  {records_changed} records changed, {} log entries",
        store.status()?.log_entries
    );

    reset_peak();
    let started = Instant::now();
    let diff = store
        .changes_since(export)?
        .ok_or_else(|| anyhow::anyhow!("the log does not reach the export"))?;
    report("changes_since(export)", diff.len(), "records", started);

    // The same changes as a .c1z diff pair, through the real export path.
    reset_peak();
    let started = Instant::now();
    let diff_c1z = dir.path().join("diff.c1z");
    let summary = baton_azure_delta::sync::export::diff(
        &store,
        &diff_c1z,
        "bench-full",
        false,
        ExportOptions::default(),
    )?;
    let pair = summary
        .diff
        .ok_or_else(|| anyhow::anyhow!("the export fell back to a full snapshot"))?;
    report(
        "c1z diff export",
        (pair.upserts + pair.deletions) as usize,
        "records",
        started,
    );
    println!(
        "  {} upserts, {} deletions, file {:.2} MB",
        pair.upserts,
        pair.deletions,
        summary.file_size as f64 / 1e6
    );

    drop(store);
    reset_peak();
    let started = Instant::now();
    let store = Store::open(&path, ProjectionOptions::default())?;
    report("reopen + integrity check", 1, "opens", started);
    let status = store.status()?;
    println!(
        "final: {} items, disk {} MB, log {} entries",
        status.items.values().sum::<u64>(),
        dir_size(&path) / 1_000_000,
        status.log_entries
    );
    Ok(())
}
