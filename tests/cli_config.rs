//! Configuration through the binary: every validation failure exits 2 with one message naming
//! the key as the user wrote it, and the file < environment < flag precedence holds.

mod cli_support;

use cli_support::run;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "5b3f6c1e-2f4d-4a8e-9c3b-1d2e3f4a5b6c";

/// Runs `args` and expects exit code 2 and exactly one line on stderr containing every
/// fragment of `expected`.
fn expect_config_error(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    expected: &[&str],
) {
    let out = run(dir, args, env);
    assert_eq!(
        out.code,
        Some(2),
        "exit code for {args:?}: {}",
        out.all_output()
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one message expected, got: {}", out.stderr);
    for fragment in expected {
        assert!(
            lines[0].contains(fragment),
            "'{fragment}' missing from: {}",
            lines[0]
        );
    }
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", out.stdout);
}

fn secret_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BATON_AZURE_TENANT_ID", TENANT),
        ("BATON_AZURE_CLIENT_ID", CLIENT),
        ("BATON_AZURE_CLIENT_SECRET", "not-a-real-secret"),
    ]
}

#[test]
fn missing_credential() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["sync"],
        &[],
        &["--azure-client-secret", "no credential"],
    );
    // The default command (no subcommand) is a sync, so it needs one too.
    expect_config_error(dir.path(), &[], &[], &["no credential"]);
}

#[test]
fn client_secret_needs_tenant_and_client() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["sync", "--azure-client-id", CLIENT],
        &[("BATON_AZURE_CLIENT_SECRET", "x")],
        &["--azure-tenant-id", "required with a client secret"],
    );
    expect_config_error(
        dir.path(),
        &["sync", "--azure-tenant-id", TENANT],
        &[("BATON_AZURE_CLIENT_SECRET", "x")],
        &["--azure-client-id", "required with a client secret"],
    );
}

#[test]
fn unknown_file_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "skip-ad-group = true\n").unwrap();
    expect_config_error(
        dir.path(),
        &["status"],
        &[],
        &["skip-ad-group (in config.toml)", "unknown key"],
    );
}

#[test]
fn explicit_config_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["status", "--config", "missing.toml"],
        &[],
        &["--config", "cannot read 'missing.toml'"],
    );
    expect_config_error(
        dir.path(),
        &["status"],
        &[("BATON_CONFIG", "also-missing.toml")],
        &["BATON_CONFIG", "cannot read 'also-missing.toml'"],
    );
}

#[test]
fn malformed_toml() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.toml"), "state-dir = \"a\"\nfile = \n").unwrap();
    expect_config_error(
        dir.path(),
        &["status", "--config", "c.toml"],
        &[],
        &["--config", "not valid TOML at line 2"],
    );
    std::fs::write(dir.path().join("config.toml"), "[broken\n").unwrap();
    expect_config_error(
        dir.path(),
        &["status"],
        &[],
        &["./config.toml", "not valid TOML at line 1"],
    );
}

#[test]
fn malformed_cron() {
    let dir = tempfile::tempdir().unwrap();
    // Five fields: classic cron, but the scheduler wants seconds first.
    expect_config_error(
        dir.path(),
        &["status"],
        &[("BATON_DELTA_SCHEDULE", "*/5 * * * *")],
        &["BATON_DELTA_SCHEDULE", "'*/5 * * * *'", "seconds first"],
    );
    expect_config_error(
        dir.path(),
        &["status", "--reconcile-schedule", "0 0 25 * * *"],
        &[],
        &["--reconcile-schedule", "not a cron expression"],
    );
}

#[test]
fn tenant_id_must_be_guid_or_domain() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["status", "--azure-tenant-id", "common"],
        &[],
        &[
            "--azure-tenant-id",
            "'common' is neither a GUID nor a domain",
        ],
    );
    expect_config_error(
        dir.path(),
        &["status"],
        &[("BATON_AZURE_TENANT_ID", "not a tenant")],
        &["BATON_AZURE_TENANT_ID", "neither a GUID nor a domain"],
    );
}

#[test]
fn plain_http_only_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["status", "--arm-endpoint", "http://management.azure.com"],
        &[],
        &["--arm-endpoint", "plain http", "loopback"],
    );
    expect_config_error(
        dir.path(),
        &["status"],
        &[("BATON_GRAPH_DOMAIN", "http://graph.microsoft.com")],
        &["BATON_GRAPH_DOMAIN", "plain http"],
    );
    // Loopback is fine (the emulator), so this one gets past validation to the command.
    let out = run(
        dir.path(),
        &[
            "status",
            "--graph-domain",
            "http://127.0.0.1:8080",
            "--log-format",
            "json",
        ],
        &[],
    );
    // Validation passed: `status` ran and described the (empty) store.
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    assert!(out.stdout.contains("state dir:"), "{}", out.all_output());
}

#[test]
fn unknown_graph_host_needs_explicit_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["status", "--graph-domain", "graph.example.com"],
        &[],
        &["--graph-domain", "not a known cloud", "--authority-host"],
    );
}

#[test]
fn conflicting_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = secret_env();
    env.push(("BATON_USE_CLI_CREDENTIALS", "true"));
    expect_config_error(
        dir.path(),
        &["sync"],
        &env,
        &[
            "BATON_AZURE_CLIENT_SECRET",
            "only used with --credential client-secret",
        ],
    );
    expect_config_error(
        dir.path(),
        &[
            "sync",
            "--use-cli-credentials",
            "--credential",
            "managed-identity",
        ],
        &[],
        &["--use-cli-credentials", "conflicts with --credential"],
    );
}

#[test]
fn external_resources_need_their_c1z() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["status", "--enable-sync-external-resources-via-baton-id"],
        &[],
        &[
            "--enable-sync-external-resources-via-baton-id",
            "needs --external-resource-c1z",
        ],
    );
    expect_config_error(
        dir.path(),
        &["status", "--external-resource-c1z", "nowhere.c1z"],
        &[],
        &[
            "--external-resource-c1z",
            "'nowhere.c1z' is not a readable file",
        ],
    );
}

#[test]
fn service_mode_needs_both_client_id_and_secret() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["status"],
        &[("BATON_CLIENT_ID", "worker@example.conductor.one/abc")],
        &["client-secret", "service mode needs both"],
    );
    expect_config_error(
        dir.path(),
        &["status", "--client-secret", "a:b:v1:xyz"],
        &[],
        &["client-id", "service mode needs both"],
    );
}

#[test]
fn event_feed_options_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["--event-feed", "--event-feed-start-at", "yesterday"],
        &[],
        &["--event-feed-start-at", "not an RFC 3339 time"],
    );
    expect_config_error(
        dir.path(),
        &["--event-feed=true", "--event-feed-id", "other"],
        &[],
        &["--event-feed-id", "baton_feed_event"],
    );
}

#[test]
fn ca_cert_is_read_and_parsed() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["status", "--ca-cert", "absent.pem"],
        &[],
        &["--ca-cert", "cannot read 'absent.pem'"],
    );
    std::fs::write(dir.path().join("junk.pem"), "not a certificate\n").unwrap();
    expect_config_error(
        dir.path(),
        &["status"],
        &[("BATON_CA_CERT", "junk.pem")],
        &["BATON_CA_CERT", "holds no PEM certificate"],
    );
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    std::fs::write(dir.path().join("garbage.pem"), garbage).unwrap();
    expect_config_error(
        dir.path(),
        &["status", "--ca-cert", "garbage.pem"],
        &[],
        &["--ca-cert", "does not parse"],
    );
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("good.pem"), cert.cert.pem()).unwrap();
    let out = run(dir.path(), &["status", "--ca-cert", "good.pem"], &[]);
    assert_eq!(
        out.code,
        Some(0),
        "a good PEM passes validation: {}",
        out.all_output()
    );
}

#[test]
fn malformed_values_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    expect_config_error(
        dir.path(),
        &["status"],
        &[("BATON_SKIP_AD_GROUPS", "maybe")],
        &["BATON_SKIP_AD_GROUPS", "'maybe' is not a boolean"],
    );
    expect_config_error(
        dir.path(),
        &["status", "--listen", "everywhere"],
        &[],
        &["--listen", "'everywhere'"],
    );
    std::fs::write(
        dir.path().join("config.toml"),
        "graph-requests-per-minute = 0\n",
    )
    .unwrap();
    expect_config_error(
        dir.path(),
        &["status"],
        &[],
        &["graph-requests-per-minute (in config.toml)", "at least 1"],
    );
    std::fs::write(
        dir.path().join("config.toml"),
        "export-mode = \"sometimes\"\n",
    )
    .unwrap();
    expect_config_error(
        dir.path(),
        &["status"],
        &[],
        &["export-mode (in config.toml)", "full, diff, both"],
    );
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["sync", "--no-such-flag"], &[]);
    assert_eq!(out.code, Some(2), "{}", out.all_output());
    assert!(out.stderr.contains("--no-such-flag"), "{}", out.stderr);
}

/// Precedence, observed through which layer's bad value the error names.
#[test]
fn file_then_env_then_flag() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "azure-tenant-id = \"from file\"\n",
    )
    .unwrap();
    expect_config_error(
        dir.path(),
        &["status"],
        &[],
        &["azure-tenant-id (in config.toml)", "'from file'"],
    );
    let env = [("BATON_AZURE_TENANT_ID", "from env")];
    expect_config_error(
        dir.path(),
        &["status"],
        &env,
        &["BATON_AZURE_TENANT_ID", "'from env'"],
    );
    expect_config_error(
        dir.path(),
        &["status", "--azure-tenant-id", "from flag"],
        &env,
        &["--azure-tenant-id", "'from flag'"],
    );
    // A flag before the subcommand counts as well (the keys are global).
    expect_config_error(
        dir.path(),
        &["--azure-tenant-id=from flag", "status"],
        &env,
        &["--azure-tenant-id", "'from flag'"],
    );
}

/// Precedence of valid values, observed in the effective configuration logged at debug.
#[test]
fn effective_values_follow_precedence() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("settings.toml"),
        "state-dir = \"state-from-file\"\nfile = \"file-from-file.c1z\"\nskip-ad-groups = true\n\
         log-level = \"debug\"\nlog-format = \"json\"\n",
    )
    .unwrap();
    let out = run(
        dir.path(),
        &[
            "status",
            "--file",
            "file-from-flag.c1z",
            "--skip-ad-groups=false",
        ],
        &[
            ("BATON_CONFIG", "settings.toml"),
            ("BATON_FILE", "file-from-env.c1z"),
            ("BATON_SKIP_UNUSED_ROLES", "1"),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.all_output());
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("\"configuration\""))
        .unwrap_or_else(|| panic!("no configuration logged at debug: {}", out.stderr));
    let logged: serde_json::Value = serde_json::from_str(line).unwrap();
    let config = logged["config"].as_str().unwrap();
    assert!(
        config.contains("state_dir: \"state-from-file\""),
        "{config}"
    );
    assert!(config.contains("file: \"file-from-flag.c1z\""), "{config}");
    assert!(config.contains("skip_ad_groups: false"), "{config}");
    assert!(config.contains("skip_unused_roles: true"), "{config}");
    assert!(
        config.contains("graph_scope: \"https://graph.microsoft.com/.default\""),
        "{config}"
    );
}

#[test]
fn national_cloud_defaults_follow_the_graph_domain() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "status",
            "--graph-domain",
            "graph.microsoft.us",
            "--log-level",
            "debug",
            "--log-format",
            "json",
        ],
        &[],
    );
    let config = out
        .stderr
        .lines()
        .find(|l| l.contains("\"configuration\""))
        .unwrap_or_default();
    assert!(
        config.contains("https://login.microsoftonline.us/"),
        "{}",
        out.stderr
    );
    assert!(
        config.contains("https://management.usgovcloudapi.net/"),
        "{config}"
    );
    assert!(
        config.contains("https://graph.microsoft.us/.default"),
        "{config}"
    );
    assert!(
        config.contains("https://management.usgovcloudapi.net/.default"),
        "{config}"
    );
    // An explicit endpoint wins over the derived one.
    let out = run(
        dir.path(),
        &[
            "status",
            "--graph-domain",
            "microsoftgraph.chinacloudapi.cn",
            "--authority-host",
            "https://login.chinacloudapi.cn",
            "--log-level",
            "debug",
            "--log-format",
            "json",
        ],
        &[],
    );
    let config = out
        .stderr
        .lines()
        .find(|l| l.contains("\"configuration\""))
        .unwrap_or_default();
    assert!(
        config.contains("https://login.chinacloudapi.cn/"),
        "{}",
        out.stderr
    );
    assert!(
        config.contains("https://management.chinacloudapi.cn/"),
        "{config}"
    );
}
