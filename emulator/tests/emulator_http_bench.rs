//! A benchmark, not a check: how fast the emulator serves full and incremental delta rounds and
//! plain listings over HTTPS for a large tenant. It prints numbers and asserts only that the
//! rounds completed. Run it with
//! `BENCH_USERS=100000 cargo test --release --test emulator_http_bench -- --ignored --nocapture`.

mod emulator_http_support;

use std::time::Instant;

use emulator::TenantSpec;
use emulator_http_support::{GRAPH_SCOPE, Harness};
use serde_json::Value;

fn resident_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// Follows a round to its deltaLink: (pages, objects, links, deltaLink).
async fn delta_round(h: &Harness, token: &str, start: &str) -> (usize, usize, usize, String) {
    let (mut pages, mut objects, mut links) = (0, 0, 0);
    let mut url = h.graph_url(start);
    loop {
        let page = h.send(reqwest::Method::GET, &url, token, &[], None).await;
        assert_eq!(page.status, 200, "{}", page.body);
        pages += 1;
        let value = page.body["value"].as_array().cloned().unwrap_or_default();
        objects += value.len();
        links += value
            .iter()
            .map(|o: &Value| {
                o["members@delta"].as_array().map_or(0, Vec::len)
                    + o["owners@delta"].as_array().map_or(0, Vec::len)
            })
            .sum::<usize>();
        if let Some(next) = page.body["@odata.nextLink"].as_str() {
            url = next.to_string();
        } else {
            let delta = page.body["@odata.deltaLink"]
                .as_str()
                .expect("a round ends with a deltaLink");
            return (pages, objects, links, delta.to_string());
        }
    }
}

fn report(what: &str, started: Instant, pages: usize, objects: usize, links: usize) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what:<34} {secs:>8.2} s  {pages:>6} pages  {objects:>8} objects ({:>9.0}/s)  {links:>9} links ({:>9.0}/s)",
        objects as f64 / secs,
        links as f64 / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture, preferably --release"]
async fn delta_rounds_and_listings_throughput() {
    let users: usize = std::env::var("BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let started = Instant::now();
    let h = Harness::start(TenantSpec::with_users(users)).await;
    let (groups, links) = h.emulator.control().with_tenant(|t| {
        (
            t.groups.len(),
            t.groups
                .values()
                .map(|g| g.members.len() + g.owners.len())
                .sum::<usize>(),
        )
    });
    println!(
        "tenant: {users} users, {groups} groups, {links} member/owner links; started in {:.2} s; resident {} MiB",
        started.elapsed().as_secs_f64(),
        resident_mib().map_or("?".to_string(), |m| m.to_string())
    );
    let token = h.token(GRAPH_SCOPE).await;

    let t = Instant::now();
    let (pages, objects, _, users_link) = delta_round(
        &h,
        &token,
        "/v1.0/users/delta?$select=id,displayName,userPrincipalName,accountEnabled",
    )
    .await;
    report("users delta, initial round", t, pages, objects, 0);

    let t = Instant::now();
    let (pages, objects, links, groups_link) = delta_round(
        &h,
        &token,
        "/v1.0/groups/delta?$select=id,displayName,members,owners",
    )
    .await;
    report("groups delta, initial round", t, pages, objects, links);

    let t = Instant::now();
    let (mut pages, mut objects) = (0, 0);
    let mut url = h.graph_url("/v1.0/users?$top=999&$select=id,displayName");
    loop {
        let page = h.send(reqwest::Method::GET, &url, &token, &[], None).await;
        pages += 1;
        objects += page.body["value"].as_array().map_or(0, Vec::len);
        match page.body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    report("users list, $top=999", t, pages, objects, 0);

    let t = Instant::now();
    let summary = h.emulator.control().random_churn(7, 0.01);
    println!(
        "churn of 1% applied in {:.2} s: {summary:?}",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let (pages, objects, _, _) = delta_round(&h, &token, &users_link).await;
    report("users delta, after 1% churn", t, pages, objects, 0);
    let t = Instant::now();
    let (pages, objects, links, _) = delta_round(&h, &token, &groups_link).await;
    report("groups delta, after 1% churn", t, pages, objects, links);

    let counts = h.emulator.control().request_counts();
    println!(
        "requests: {}  Graph RU: {}  resident {} MiB",
        counts.total(),
        counts.graph_resource_units,
        resident_mib().map_or("?".to_string(), |m| m.to_string())
    );
}
