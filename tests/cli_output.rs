//! What the binary prints for `capabilities`, `config` and `--help`.

mod cli_support;

use cli_support::run;

#[test]
fn capabilities_are_protojson_of_an_any() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["capabilities"], &[]);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    let caps: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        caps["@type"],
        "type.googleapis.com/c1.connector.v2.ConnectorCapabilities"
    );
    assert_eq!(
        caps["connectorCapabilities"],
        serde_json::json!([
            "CAPABILITY_SYNC",
            "CAPABILITY_PROVISION",
            "CAPABILITY_EVENT_FEED"
        ])
    );
    let per_type = caps["resourceTypeCapabilities"].as_array().unwrap();
    let ids: Vec<&str> = per_type
        .iter()
        .map(|t| t["resourceType"]["id"].as_str().unwrap())
        .collect();
    for expected in [
        "tenant",
        "user",
        "group",
        "enterprise_application",
        "managed_identity",
        "directory_role",
        "management_group",
        "subscription",
        "resource_group",
        "role",
        "storage_account",
        "container",
        "azure_resource",
    ] {
        assert!(ids.contains(&expected), "{expected} missing from {ids:?}");
    }
    for t in per_type {
        // Users, managed identities and role definitions hold no entitlement to grant.
        let provisioned = !matches!(
            t["resourceType"]["id"].as_str(),
            Some("user" | "managed_identity" | "role")
        );
        let expected = if provisioned {
            serde_json::json!(["CAPABILITY_SYNC", "CAPABILITY_PROVISION"])
        } else {
            serde_json::json!(["CAPABILITY_SYNC"])
        };
        assert_eq!(t["capabilities"], expected, "{t}");
        let traits = t["resourceType"]["traits"].as_array().unwrap();
        assert!(traits[0].as_str().unwrap().starts_with("TRAIT_"), "{t}");
    }
    let user = per_type
        .iter()
        .find(|t| t["resourceType"]["id"] == "user")
        .unwrap();
    assert_eq!(
        user["resourceType"]["traits"],
        serde_json::json!(["TRAIT_USER"])
    );
}

#[test]
fn config_schema_lists_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["config"], &[]);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["IsDirectory"], true);
    let fields = schema["Fields"].as_array().unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["FieldName"] == name)
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert_eq!(field("azure-client-secret")["Secret"], true);
    assert_eq!(field("azure-tenant-id")["Secret"], false);
    assert_eq!(field("mailboxSettings")["Variant"], "BoolField");
    assert_eq!(field("max-concurrency")["DefaultValue"], 8);
    assert_eq!(field("graph-domain")["DefaultValue"], "graph.microsoft.com");
    assert_eq!(field("file")["SyncerConfig"]["ShortHand"], "f");
    let constraints = schema["Constraints"].as_array().unwrap();
    assert!(
        constraints
            .iter()
            .any(|c| c["Kind"] == "MUTUALLY_EXCLUSIVE")
    );
}

#[test]
fn capabilities_and_config_need_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    // A broken config file does not stop the static answers.
    std::fs::write(dir.path().join("config.toml"), "not toml at all [").unwrap();
    for command in ["capabilities", "config"] {
        let out = run(dir.path(), &[command], &[]);
        assert_eq!(out.code, Some(0), "{command}: {}", out.all_output());
    }
}

#[test]
fn help_lists_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--help"], &[]);
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    for command in [
        "run",
        "sync",
        "export",
        "status",
        "reset",
        "demo",
        "emulator",
        "capabilities",
        "config",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} missing from --help:\n{}",
            out.stdout
        );
    }
    let export = run(dir.path(), &["export", "--help"], &[]);
    assert!(export.stdout.contains("--diff-since"), "{}", export.stdout);
}
