//! Opening the sled database safely: a store that sled cannot read, or whose contents fail
//! the integrity check, is moved aside as `<dir>.corrupt-<time>` with a warning and a fresh one
//! is created. The store is a cache of what Microsoft holds, so starting over costs a baseline,
//! whereas refusing to start would be a crash loop. Errors that say nothing about the data (the
//! directory is locked by another process, permission denied) are returned, never "repaired".

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use time::OffsetDateTime;

use super::StoreUse;
use super::keys;
use super::log::LogEntry;
use super::meta::{self, Counts, ExportRecord, SCHEMA_VERSION};
use crate::model::projection::ProjectionOptions;

pub const ITEMS: &str = "items";
pub const REFS: &str = "refs";
pub const LOG: &str = "log";
pub const META: &str = "meta";

/// Another process holds the store's file lock: only one may use a state dir at a time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the state dir {} is in use by another baton-azure-delta process (only one may use a state dir at a time)",
    dir.display()
)]
pub struct StoreInUse {
    pub dir: PathBuf,
}

pub struct Opened {
    pub db: sled::Db,
    /// No store existed: the caller initialises `meta`.
    pub fresh: bool,
}

pub fn open(dir: &Path, usage: StoreUse) -> anyhow::Result<Opened> {
    let problem = match open_and_check(dir, usage)? {
        Ok(opened) => return Ok(opened),
        Err(problem) => problem,
    };
    let aside = aside_path(dir);
    tracing::warn!(
        store = %dir.display(),
        moved_to = %aside.display(),
        %problem,
        "the store failed its integrity check; moving it aside and starting fresh (the next round is a full baseline)"
    );
    std::fs::rename(dir, &aside).with_context(|| {
        format!(
            "moving the damaged store {} aside to {}",
            dir.display(),
            aside.display()
        )
    })?;
    match open_and_check(dir, usage)? {
        Ok(opened) => Ok(opened),
        Err(problem) => bail!(
            "a freshly created store at {} fails its integrity check: {problem}",
            dir.display()
        ),
    }
}

/// Ok(Err(problem)) when the data is unreadable; Err when the directory cannot be opened at all.
fn open_and_check(dir: &Path, usage: StoreUse) -> anyhow::Result<Result<Opened, String>> {
    let db = match open_sled(dir, usage) {
        Ok(db) => db,
        Err(sled::Error::Io(error)) if is_lock_held(&error) => {
            return Err(StoreInUse {
                dir: dir.to_path_buf(),
            }
            .into());
        }
        Err(sled::Error::Io(error))
            if !matches!(
                error.kind(),
                ErrorKind::UnexpectedEof | ErrorKind::InvalidData
            ) =>
        {
            return Err(error).with_context(|| format!("opening the store at {}", dir.display()));
        }
        Err(error) => return Ok(Err(format!("sled cannot read it: {error}"))),
    };
    match check(&db) {
        Ok(fresh) => Ok(Ok(Opened { db, fresh })),
        Err(problem) => Ok(Err(format!("{problem:#}"))),
    }
}

/// Opens the sled database. sled lets go of its file lock a moment after the last handle is
/// dropped (its flusher thread finishes first), so a store closed and reopened at once, in this
/// process or just after another one exited, may find the lock still held: wait up to five
/// seconds (a loaded machine delays those threads) before reporting that another process
/// holds it.
pub fn open_waiting_for_lock(dir: &Path) -> sled::Result<sled::Db> {
    open_sled(dir, StoreUse::Rounds)
}

fn open_sled(dir: &Path, usage: StoreUse) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .cache_capacity(usage.cache_bytes())
            .open();
        match opened {
            Err(sled::Error::Io(error))
                if is_lock_held(&error) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// sled reports a held file lock as an `Other` I/O error whose text starts with this phrase (sled
/// 0.34, `Config::open_file`); this is the one place that reads that text.
fn is_lock_held(error: &std::io::Error) -> bool {
    error.kind() == ErrorKind::Other && error.to_string().starts_with("could not acquire lock")
}

/// Ok(true) for an empty database, Ok(false) for a sound store.
fn check(db: &sled::Db) -> anyhow::Result<bool> {
    let items = db.open_tree(ITEMS)?;
    let refs = db.open_tree(REFS)?;
    let log = db.open_tree(LOG)?;
    let meta_tree = db.open_tree(META)?;
    let Some(version) = meta::read_u64(&meta_tree, meta::SCHEMA)? else {
        if items.is_empty() && refs.is_empty() && log.is_empty() && meta_tree.is_empty() {
            return Ok(true);
        }
        bail!("data without a schema version");
    };
    if version != SCHEMA_VERSION {
        bail!("schema version {version}; this build reads version {SCHEMA_VERSION}");
    }
    meta::read_json::<ProjectionOptions>(&meta_tree, meta::OPTIONS)?
        .context("no projection options")?;
    meta::read_json::<Counts>(&meta_tree, meta::COUNTS)?.context("no counts")?;
    meta::read_json::<Vec<ExportRecord>>(&meta_tree, meta::EXPORTS)?;
    meta::read_u64(&meta_tree, meta::GENERATION)?.context("no generation counter")?;
    let head = meta::read_u64(&meta_tree, meta::HEAD)?.context("no log head")?;
    let floor = meta::read_u64(&meta_tree, meta::FLOOR)?.context("no log floor")?;
    if floor > head {
        bail!("log floor {floor} is above the log head {head}");
    }
    // A sample of each tree: the first and last entries decode.
    for entry in [items.first()?, items.last()?].into_iter().flatten() {
        keys::parse_item_key(&entry.0)?;
        keys::decode_item(&entry.1)?;
    }
    for entry in [refs.first()?, refs.last()?].into_iter().flatten() {
        keys::parse_ref_key(&entry.0)?;
    }
    for (key, value) in [log.first()?, log.last()?].into_iter().flatten() {
        let seq = keys::parse_log_key(&key)?;
        if seq <= floor || seq > head {
            bail!("log entry {seq} outside the log's range ({floor}, {head}]");
        }
        LogEntry::decode(&value).with_context(|| format!("log entry {seq}"))?;
    }
    Ok(false)
}

fn aside_path(dir: &Path) -> PathBuf {
    let now = OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{stamp}"));
    let mut aside = dir.with_file_name(&name);
    // Two failures within one second must not collide.
    let mut n = 1;
    while aside.exists() {
        aside = dir.with_file_name(format!("{}-{n}", name.to_string_lossy()));
        n += 1;
    }
    aside
}
