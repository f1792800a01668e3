//! Injected faults as a client sees them: 5xx in each API's error shape, cut connections,
//! truncated bodies and slow answers; and the HTTP control surface that switches them.

mod emulator_http_support;

use std::time::{Duration, Instant};

use emulator::{FaultConfig, TenantSpec};
use emulator_http_support::{ARM_SCOPE, GRAPH_SCOPE, Harness};
use serde_json::json;

#[tokio::test]
async fn server_errors_come_in_each_apis_shape() {
    let h = Harness::start(TenantSpec::small()).await;
    let graph_token = h.token(GRAPH_SCOPE).await;
    let arm_token = h.token(ARM_SCOPE).await;
    h.emulator.control().set_faults(FaultConfig {
        server_error_rate: 1.0,
        ..FaultConfig::default()
    });
    let graph = h
        .send(
            reqwest::Method::GET,
            &h.graph_url("/v1.0/users"),
            &graph_token,
            &[],
            None,
        )
        .await;
    assert!((500..=504).contains(&graph.status), "{}", graph.status);
    assert!(graph.body["error"]["innerError"]["request-id"].is_string());
    assert!(graph.header("retry-after").is_some());
    let arm = h
        .send(
            reqwest::Method::GET,
            &h.arm_url("/subscriptions?api-version=2022-12-01"),
            &arm_token,
            &[],
            None,
        )
        .await;
    assert!((500..=504).contains(&arm.status));
    assert!(arm.body["error"]["code"].is_string() && arm.body["error"].get("innerError").is_none());
    let counts = h.emulator.control().request_counts();
    assert_eq!(
        counts
            .by_status
            .iter()
            .filter(|(s, _)| (500..=504).contains(*s))
            .map(|(_, n)| n)
            .sum::<u64>(),
        2
    );
}

#[tokio::test]
async fn dropped_connections_and_truncated_bodies_fail_on_the_client() {
    let h = Harness::start(TenantSpec::small()).await;
    let token = h.token(GRAPH_SCOPE).await;
    let url = h.graph_url("/v1.0/users?$top=50");

    h.emulator.control().set_faults(FaultConfig {
        drop_connection_rate: 1.0,
        ..FaultConfig::default()
    });
    let dropped = async {
        let response = h.http.get(&url).bearer_auth(&token).send().await?;
        response.bytes().await
    }
    .await;
    assert!(
        dropped.is_err(),
        "a dropped connection is an error, not a body"
    );

    h.emulator.control().set_faults(FaultConfig {
        truncate_body_rate: 1.0,
        ..FaultConfig::default()
    });
    let truncated = async {
        let response = h.http.get(&url).bearer_auth(&token).send().await?;
        response.bytes().await
    }
    .await;
    assert!(
        truncated.is_err(),
        "a body shorter than its Content-Length is an error"
    );

    h.emulator.control().set_faults(FaultConfig::default());
    let fine = h
        .http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect("answered");
    let body: serde_json::Value = fine.json().await.expect("whole JSON body");
    assert!(body["value"].is_array());
}

#[tokio::test]
async fn slow_answers_wait_and_the_http_control_surface_switches_faults() {
    let h = Harness::start(TenantSpec::small()).await;
    let token = h.token(GRAPH_SCOPE).await;
    let control_url = format!("{}/faults", h.emulator.control_url());
    let slow = json!({"slow_rate": 1.0, "slow_delay": {"secs": 1, "nanos": 0}});
    let set = h
        .http
        .put(&control_url)
        .json(&slow)
        .send()
        .await
        .expect("answered");
    assert_eq!(set.status().as_u16(), 204);
    let started = Instant::now();
    let answer = h
        .send(
            reqwest::Method::GET,
            &h.graph_url("/v1.0/organization"),
            &token,
            &[],
            None,
        )
        .await;
    assert_eq!(answer.status, 200);
    assert!(started.elapsed() >= Duration::from_secs(1));

    let bad = h
        .http
        .put(&control_url)
        .json(&json!({"server_error_rate": 2.0}))
        .send()
        .await
        .expect("answered");
    assert_eq!(bad.status().as_u16(), 400);
    let message: serde_json::Value = bad.json().await.expect("json");
    assert!(
        message["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("server_error_rate"))
    );
}

#[tokio::test]
async fn http_control_surface_changes_the_tenant_and_reads_counters() {
    let h = Harness::start(TenantSpec::small()).await;
    let base = h.emulator.control_url();
    let (group, user) = h.emulator.control().with_tenant(|t| {
        let g = t.live_groups().next().expect("group");
        let u = t
            .live_users()
            .find(|u| !g.members.contains(&u.id))
            .expect("non-member");
        (g.id, u.id)
    });
    let change = json!({"change": "add_member", "group": group, "member": user});
    let applied = h
        .http
        .post(format!("{base}/changes"))
        .json(&change)
        .send()
        .await
        .expect("answered");
    assert_eq!(applied.status().as_u16(), 204);
    assert!(
        h.emulator
            .control()
            .with_tenant(|t| t.groups[&group].members.contains(&user))
    );
    let again = h
        .http
        .post(format!("{base}/changes"))
        .json(&change)
        .send()
        .await
        .expect("answered");
    assert_eq!(
        again.status().as_u16(),
        400,
        "adding twice is refused with the reason"
    );
    let unknown = h
        .http
        .post(format!("{base}/changes"))
        .json(&json!({"change": "teleport"}))
        .send()
        .await
        .expect("answered");
    assert_eq!(unknown.status().as_u16(), 400);

    h.graph_get("/v1.0/organization", &[]).await;
    let counts: serde_json::Value = h
        .http
        .get(format!("{base}/counts"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    assert!(
        counts["by_endpoint"]["GET /v1.0/organization"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{counts}"
    );
    assert!(
        counts["graph_resource_units"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );

    let expected: serde_json::Value = h
        .http
        .get(format!("{base}/expected?skip_p2=true"))
        .send()
        .await
        .expect("answered")
        .json()
        .await
        .expect("json");
    let grant = format!("group:{group}:members:user:{user}");
    assert!(
        expected["grants"].get(&grant).is_some(),
        "the expected graph has the new membership"
    );

    let new_user = uuid::Uuid::new_v4();
    let create = json!({"change": "create_user", "id": new_user, "user_principal_name": "new.person@example.test", "display_name": "New Person"});
    let created = h
        .http
        .post(format!("{base}/changes"))
        .json(&create)
        .send()
        .await
        .expect("answered");
    assert_eq!(created.status().as_u16(), 204);
    let fetched = h.graph_get(&format!("/v1.0/users/{new_user}"), &[]).await;
    assert_eq!(fetched.body["displayName"], "New Person");

    let advance = h
        .http
        .post(format!("{base}/clock/advance"))
        .json(&json!({"seconds": 3600}))
        .send()
        .await
        .expect("answered");
    assert_eq!(advance.status().as_u16(), 204);
}
