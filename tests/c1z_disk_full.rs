//! A disk that fills up mid-export: the export fails with an error naming the target, the
//! previous file stays as it was, and no scratch file is left behind.
//!
//! The full disk is simulated with a file-size limit (`ulimit -f`, with SIGXFSZ ignored so the
//! write fails with EFBIG instead of killing the process): the test re-runs itself in a child
//! process under that limit. Needs `sh` (POSIX); CI runs on Linux.

mod c1z_testdata;
use std::path::Path;
use std::process::Command;

use anyhow::Result;
use baton_azure_delta::c1z::{ExportOptions, write_full};
use baton_azure_delta::model::Record;
use c1z_testdata::Tenant;

fn export(path: &Path, tenant: Tenant) -> Result<()> {
    let mut feed = |sink: &mut dyn FnMut(Record) -> Result<()>| tenant.for_each_record(sink);
    write_full(path, &mut feed, ExportOptions::default()).map(|_| ())
}

/// Runs only inside the size-limited child started by `a_full_disk_fails_cleanly`.
#[test]
#[ignore = "run by a_full_disk_fails_cleanly under a file-size limit"]
fn export_under_file_size_limit() {
    let dir = Path::new(&std::env::var("C1Z_DISK_FULL_DIR").unwrap()).to_path_buf();
    let path = dir.join("sync.c1z");
    let before = std::fs::read(&path).unwrap();
    let big = Tenant {
        users: 20_000,
        groups: 2_000,
        members_per_group: 20,
        nested_every: 0,
    };
    let err = export(&path, big).unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "previous file changed"
    );
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("sync.c1z")],
        "scratch files left"
    );
    println!("export failed as expected: {message}");
}

#[test]
fn a_full_disk_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let small = Tenant {
        users: 10,
        groups: 2,
        members_per_group: 3,
        nested_every: 0,
    };
    export(&dir.path().join("sync.c1z"), small).unwrap();

    let me = std::env::current_exe().unwrap();
    // 2 MiB limit (ulimit -f counts 512-byte blocks): the small file fits, the big export not.
    let out = Command::new("sh")
        .args(["-c", "trap '' XFSZ; ulimit -f 4096; exec \"$0\" \"$@\""])
        .arg(&me)
        .args([
            "--ignored",
            "--exact",
            "export_under_file_size_limit",
            "--nocapture",
        ])
        .env("C1Z_DISK_FULL_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("export failed as expected"),
        "{stdout}\n{stderr}"
    );
}
