//! Helpers shared by the c1z tests: the independent verifier, and reading a sync back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use baton_azure_delta::c1z::C1zReader;
use baton_azure_delta::model::{Record, Table};

/// Records of one sync, keyed by table and external id.
pub type Snapshot = BTreeMap<(Table, String), Record>;

pub fn snapshot_of(records: impl IntoIterator<Item = Record>) -> Snapshot {
    records
        .into_iter()
        .map(|r| ((r.table(), r.external_id()), r))
        .collect()
}

pub fn read_sync(reader: &C1zReader, sync_id: &str) -> Snapshot {
    let mut all = Vec::new();
    for table in Table::ALL {
        all.extend(
            reader
                .records(sync_id, table)
                .expect("records of a sync we wrote"),
        );
    }
    snapshot_of(all)
}

fn verifier() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("C1Z_VERIFY") {
        return Some(PathBuf::from(path));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        "../shared/tools/c1z_verify.py",
        "../../shared/tools/c1z_verify.py",
    ]
    .iter()
    .map(|p| manifest.join(p))
    .find(|p| p.is_file())
}

/// Runs ../shared/tools/c1z_verify.py on `path` and fails the test unless it prints OK with no
/// warning.
pub fn verify(path: &Path) {
    verify_allowing(path, &[]);
}

/// Like [`verify`], but tolerates warnings containing one of `allowed`. Skips with a printed notice when python3 or its `zstandard` module is missing (CI installs
/// both, so there the check always runs).
pub fn verify_allowing(path: &Path, allowed: &[&str]) {
    let Some(script) = verifier() else {
        eprintln!("NOTICE: c1z_verify.py not found (set C1Z_VERIFY); skipping verification");
        return;
    };
    let has_zstd = Command::new("python3")
        .args(["-c", "import zstandard"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_zstd {
        eprintln!("NOTICE: python3 with zstandard is missing; skipping c1z_verify.py");
        return;
    }
    let out = Command::new("python3")
        .arg(&script)
        .arg(path)
        .output()
        .expect("run c1z_verify.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "c1z_verify.py failed on {}:\n{stdout}\n{stderr}",
        path.display()
    );
    let unexpected: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains("WARN") && !allowed.iter().any(|a| l.contains(a)))
        .collect();
    assert!(
        unexpected.is_empty(),
        "c1z_verify.py warned on {}:\n{}",
        path.display(),
        unexpected.join("\n")
    );
}
