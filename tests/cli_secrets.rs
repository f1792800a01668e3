//! A secret given by flag, environment or file never appears in stdout or stderr, at any log
//! level, on success paths, in validation errors or in `--help`.

mod cli_support;

use cli_support::run;

const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "5b3f6c1e-2f4d-4a8e-9c3b-1d2e3f4a5b6c";

const SECRET: &str = "Zq8~s3cr3t-VALUE-must-not-leak";

fn assert_no_secret(out: &cli_support::Run, what: &str) {
    assert!(
        !out.all_output().contains(SECRET),
        "{what}: the secret leaked:\n{}",
        out.all_output()
    );
}

/// One way of passing the client secret: arguments, environment and config file text.
struct SecretSource {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
    file: String,
}

fn secret_sources() -> Vec<SecretSource> {
    let ids = vec![
        format!("--azure-tenant-id={TENANT}"),
        format!("--azure-client-id={CLIENT}"),
    ];
    let mut flag = ids.clone();
    flag.push(format!("--azure-client-secret={SECRET}"));
    vec![
        SecretSource {
            name: "flag",
            args: flag,
            env: vec![],
            file: String::new(),
        },
        SecretSource {
            name: "env",
            args: ids.clone(),
            env: vec![("BATON_AZURE_CLIENT_SECRET", SECRET)],
            file: String::new(),
        },
        SecretSource {
            name: "file",
            args: ids,
            env: vec![],
            file: format!("azure-client-secret = \"{SECRET}\"\n"),
        },
    ]
}

#[test]
fn secret_never_logged_at_any_level() {
    // A real sign-in attempt against the emulator on loopback, which refuses these credentials:
    // the secret travels to the token endpoint and back through the error path.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let emulator_dir = tempfile::tempdir().unwrap();
    let emulator = runtime
        .block_on(emulator::Emulator::start(emulator::EmulatorConfig::new(
            emulator::TenantSpec::with_users(10),
            emulator_dir.path().to_path_buf(),
        )))
        .unwrap();
    let endpoints = [
        format!("--authority-host={}", emulator.authority_host()),
        format!("--graph-domain={}", emulator.graph_url()),
        format!("--arm-endpoint={}", emulator.arm_url()),
        format!("--ca-cert={}", emulator.ca_cert_path().display()),
    ];
    for SecretSource {
        name: source,
        args,
        env,
        file,
    } in secret_sources()
    {
        for level in ["trace", "debug", "info", "error"] {
            for format in ["json", "console"] {
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(dir.path().join("config.toml"), &file).unwrap();
                let mut all: Vec<&str> = vec!["sync", "--log-level", level, "--log-format", format];
                all.extend(args.iter().map(String::as_str));
                all.extend(endpoints.iter().map(String::as_str));
                let out = run(dir.path(), &all, &env);
                // Validation passed and sign-in was refused: the secret was used, and failed.
                assert_eq!(out.code, Some(1), "{source}/{level}: {}", out.all_output());
                assert!(
                    out.all_output().contains("AADSTS"),
                    "{source}/{level}: the sign-in error is told: {}",
                    out.all_output()
                );
                assert_no_secret(&out, &format!("{source} at {level} ({format})"));
                if level == "debug" || level == "trace" {
                    // The configuration was logged, with the secret masked.
                    assert!(
                        out.stderr.contains("client_secret: ***"),
                        "{source}/{level}: configuration not logged: {}",
                        out.stderr
                    );
                }
            }
        }
    }
}

#[test]
fn secret_never_in_validation_errors() {
    for SecretSource {
        name: source,
        args,
        env,
        file,
    } in secret_sources()
    {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.toml"), &file).unwrap();
        // Each run fails validation on something else while the secret is configured.
        for extra in [
            vec!["--azure-tenant-id", "common"],
            vec!["--use-cli-credentials"],
            vec!["--delta-schedule", "nonsense"],
            vec!["--client-id", "x@y/z"],
        ] {
            let mut all: Vec<&str> = vec!["sync", "--log-level", "trace"];
            all.extend(args.iter().map(String::as_str));
            all.extend(extra.iter().copied());
            let out = run(dir.path(), &all, &env);
            assert_eq!(
                out.code,
                Some(2),
                "{source} {extra:?}: {}",
                out.all_output()
            );
            assert_no_secret(&out, &format!("{source} with {extra:?}"));
        }
    }
}

#[test]
fn secret_never_in_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    // An unterminated string on the secret's own line: TOML's rendered error would quote it.
    let broken = format!("azure-client-secret = \"{SECRET}\nstate-dir = \"x\"\n");
    std::fs::write(dir.path().join("config.toml"), broken).unwrap();
    let out = run(dir.path(), &["sync"], &[]);
    assert_eq!(out.code, Some(2), "{}", out.all_output());
    assert!(
        out.stderr.contains("not valid TOML at line 1"),
        "{}",
        out.stderr
    );
    assert_no_secret(&out, "broken TOML");

    let wrong_type = format!("azure-client-secret = [\"{SECRET}\"]\n");
    std::fs::write(dir.path().join("config.toml"), wrong_type).unwrap();
    let out = run(dir.path(), &["sync"], &[]);
    assert_eq!(out.code, Some(2), "{}", out.all_output());
    assert!(
        out.stderr.contains("azure-client-secret (in config.toml)"),
        "{}",
        out.stderr
    );
    assert_no_secret(&out, "secret of the wrong type");
}

#[test]
fn secret_never_in_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [vec!["--help"], vec!["sync", "--help"]] {
        let out = run(
            dir.path(),
            &args,
            &[
                ("BATON_AZURE_CLIENT_SECRET", SECRET),
                ("BATON_CLIENT_SECRET", SECRET),
            ],
        );
        assert_eq!(out.code, Some(0), "{}", out.all_output());
        assert!(
            out.stdout.contains("BATON_AZURE_CLIENT_SECRET"),
            "{}",
            out.stdout
        );
        assert_no_secret(&out, "--help");
    }
}
