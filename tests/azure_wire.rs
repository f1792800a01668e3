//! The azure client against wire shapes Microsoft documents (or is observed sending) that differ
//! from what our own emulator sends: error codes in another casing, links on another spelling
//! of the host, `$batch` items with numeric headers. Each test scripts the exact answer on the
//! scripted TLS server of `azure_support`.

mod azure_support;

use azure_support::*;

/// Graph spells the expired-token code `syncStateNotFound` in the delta documentation and
/// `SyncStateNotFound` in real answers (microsoft-graph-docs issues #2350 and #2877, both with
/// a 400 or a 410); `resyncRequired` is the errors page's spelling. Any casing, top-level or in
/// `innerError`, means "re-baseline", never a hard failure.
#[tokio::test]
async fn expired_delta_codes_are_recognised_in_any_casing() {
    let server = TestServer::start().await;
    let client = server.client().await;
    let answers = [
        json!({"error": {"code": "SyncStateNotFound", "message": "The sync state generation is not found; generation=149;[highest=157]."}}),
        json!({"error": {"code": "ResyncRequired", "message": "Resync required."}}),
        json!({"error": {"code": "BadRequest", "message": "m", "innerError": {"code": "SYNCSTATENOTFOUND"}}}),
    ];
    for (n, body) in answers.into_iter().enumerate() {
        let stale = format!("/v1.0/users/delta?$deltatoken=old{n}");
        server.script(&stale, vec![json_answer(400, body)]);
        let err = client.graph_get(&stale, &[]).await.unwrap_err();
        assert_eq!(err, ApiError::DeltaTokenExpired { location: None }, "{n}");
    }

    server.script(
        "/v1.0/roleManagement/directory/roleEligibilitySchedules",
        vec![json_answer(
            400,
            graph_error("aadPremiumLicenseRequired", "needs P2"),
        )],
    );
    let err = client
        .graph_get(
            "/v1.0/roleManagement/directory/roleEligibilitySchedules",
            &[],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApiError::LicenseRequired { .. }), "{err:?}");
}
