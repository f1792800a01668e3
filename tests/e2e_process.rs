//! End to end through the real binary: `kill -9` at random points of a sync and a restart
//! lose nothing (DESIGN.md invariant 2); one process per state dir; the worker's health and
//! metrics endpoints; a graceful stop on SIGTERM.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use emulator::faults::FaultConfig;
use emulator::{Control, TenantChange, TenantSpec};
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_baton-azure-delta");
const SIGKILL: i32 = 9;

/// Directory changes that every feed sees at once (no Activity Log delay), drawn from a seed.
fn entra_churn(control: &Control, seed: u64, count: usize) {
    let (users, groups): (Vec<_>, Vec<_>) = control.with_tenant(|t| {
        (
            t.users
                .values()
                .filter(|u| u.deleted.is_none())
                .map(|u| u.id)
                .collect(),
            t.groups
                .values()
                .filter(|g| g.deleted.is_none())
                .map(|g| (g.id, g.members.clone()))
                .collect(),
        )
    });
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n.max(1)
    };
    for _ in 0..count {
        let user = users[next(users.len())];
        let (group, members) = &groups[next(groups.len())];
        let change = match next(4) {
            0 if !members.contains(&user) => TenantChange::AddMember {
                group: *group,
                member: user,
            },
            1 if !members.is_empty() => TenantChange::RemoveMember {
                group: *group,
                member: members[next(members.len())],
            },
            2 => TenantChange::UpdateUser {
                id: user,
                patch: emulator::changes::UserPatch {
                    display_name: Some(format!("Renamed {seed} {}", next(1000))),
                    ..Default::default()
                },
            },
            _ => TenantChange::SoftDeleteUser(user),
        };
        // A draw the tenant refuses (already deleted, already a member) is simply skipped.
        let _ = control.apply(change);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_then_restart_still_equals_a_fresh_baseline() {
    let h = Harness::start(TenantSpec::with_users(400)).await;
    let state = state_path(&h, "crash");
    let args = h.args(&state, &[]);
    // Every request answers 40 ms late, so that a sync lasts longer than the latest kill below
    // whatever the machine's speed: the kills land mid-round, and the count below can tell.
    h.control().set_faults(FaultConfig {
        slow_rate: 1.0,
        slow_delay: Duration::from_millis(40),
        ..FaultConfig::default()
    });
    let mut killed_mid_round = 0;
    for attempt in 0..8_u64 {
        if attempt >= 3 {
            entra_churn(&h.control(), attempt, 25);
        }
        let mut child = Command::new(BIN)
            .args(&args)
            .arg("sync")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the worker starts");
        let delay = 40 + (attempt * 7919 % 600);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        // SIGKILL: no chance to clean up. `Child::kill` succeeds on a process that already
        // exited (until it is reaped), so what counts is how the process ended.
        let _ = child.kill();
        let ended = child.wait().expect("the worker is reaped");
        if ended.signal() == Some(SIGKILL) {
            killed_mid_round += 1;
        }
    }
    assert!(killed_mid_round >= 4, "most runs were killed mid-sync");
    h.control().set_faults(FaultConfig::default());
    entra_churn(&h.control(), 99, 25);
    let status = Command::new(BIN)
        .args(&args)
        .arg("sync")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the worker runs");
    assert!(status.success(), "a sync after the crashes succeeds");

    let worker = h.worker(&state, &[]).await;
    let fresh = h.fresh_records("fresh", &[]).await;
    assert_no_differences(
        "after kill -9 and restart",
        &baton_azure_delta::sync::demo::compare(&worker.records(), &fresh),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_state_dir_is_refused() {
    let h = Harness::start(TenantSpec::with_users(20)).await;
    let state = state_path(&h, "locked");
    let _worker = h.worker(&state, &[]).await;
    let output = Command::new(BIN)
        .args(h.args(&state, &[]))
        .arg("status")
        .output()
        .expect("status runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        format!("{stdout}{stderr}").contains("in use by another baton-azure-delta process"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_serves_health_and_metrics_and_stops_on_sigterm() {
    let h = Harness::start(TenantSpec::with_users(60)).await;
    let state = state_path(&h, "worker");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("address").port()
    };
    let mut args = h.args(&state, &[]);
    let listen = args
        .iter()
        .position(|a| a.starts_with("--listen="))
        .expect("the harness sets --listen");
    args[listen] = format!("--listen=127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .args(&args)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the worker starts");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status().is_success()
        {
            ready = true;
            break;
        }
    }
    assert!(ready, "/readyz turns 200 after the first round");
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert!(health.status().is_success());
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    for name in [
        "baton_azure_delta_rounds_total",
        "baton_azure_delta_api_requests",
        "baton_azure_delta_last_export_timestamp_seconds",
        "baton_azure_delta_cursor_age_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    assert!(
        state.with_extension("c1z").exists(),
        "the first round exported"
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            exited = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let status = exited.expect("the worker stops within 10 s of SIGTERM");
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
}
