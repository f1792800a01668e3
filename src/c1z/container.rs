//! The classic `.c1z` container: the 5 bytes `C1ZF\0`, then one zstd frame holding an SQLite
//! database file (reference section 1.1); and the atomic replacement of a target file.
//!
//! A [`Target`] owns every scratch file of one export, all in the target's directory (so a full
//! disk shows up while exporting, and the final rename stays on one file system). Dropping it
//! without [`Target::commit`] removes them all: the previous file at the target is never touched.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The v1 magic: `"C1ZF\0"`.
pub const MAGIC: &[u8; 5] = b"C1ZF\0";

/// zstd level: baton's own writer uses a fast level; level 1 keeps windowLog at 19-21, far under
/// the readers' 27 limit, for any database size.
const ZSTD_LEVEL: i32 = 1;

/// The output of one export in the making.
pub struct Target {
    target: PathBuf,
    temp: PathBuf,
    temp_file: Option<File>,
    scratch: Vec<PathBuf>,
}

impl Target {
    /// Reserves a temporary file next to `target`. Fails, naming the path, when the directory
    /// does not exist or is not writable.
    pub fn new(target: &Path) -> Result<Target> {
        let file_name = target
            .file_name()
            .with_context(|| format!("c1z output path {} names no file", target.display()))?
            .to_string_lossy()
            .into_owned();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if target.is_dir() {
            bail!("cannot write {}: it is a directory", target.display());
        }
        if !dir.is_dir() {
            bail!(
                "cannot write {}: directory {} does not exist",
                target.display(),
                dir.display()
            );
        }
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let temp = dir.join(format!(".{file_name}.{nonce}.tmp"));
        let temp_file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .with_context(|| {
                format!(
                    "cannot write {}: creating {}",
                    target.display(),
                    temp.display()
                )
            })?;
        Ok(Target {
            target: target.to_path_buf(),
            temp,
            temp_file: Some(temp_file),
            scratch: Vec::new(),
        })
    }

    /// A scratch path next to the target (e.g. the SQLite database being built), removed with
    /// its SQLite side files when the export ends, committed or not.
    pub fn scratch_path(&mut self, suffix: &str) -> PathBuf {
        let mut name = self.temp.as_os_str().to_owned();
        name.push(format!(".{suffix}"));
        let path = PathBuf::from(name);
        self.scratch.push(path.clone());
        path
    }

    /// Compresses the finished SQLite database at `database` into the temporary file, fsyncs it
    /// and renames it over the target. Returns the size of the `.c1z`.
    pub fn commit(mut self, database: &Path) -> Result<u64> {
        let file = self
            .temp_file
            .take()
            .context("c1z target already committed")?;
        let target = self.target.clone();
        let context = || format!("writing {}", target.display());
        let compressing = std::time::Instant::now();
        compress_into(database, file).with_context(context)?;
        tracing::debug!(elapsed = ?compressing.elapsed(), "c1z compressed and synced");
        fs::rename(&self.temp, &self.target).with_context(|| {
            format!(
                "renaming {} to {}",
                self.temp.display(),
                self.target.display()
            )
        })?;
        // The rename is durable only once the directory entry is.
        if let Some(dir) = self.target.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(dir) = File::open(dir)
        {
            // Some file systems refuse fsync on a directory; the rename itself has succeeded.
            let _ = dir.sync_all();
        }
        let size = fs::metadata(&self.target)
            .with_context(|| format!("reading the size of {}", self.target.display()))?
            .len();
        Ok(size)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // After a commit the temp path no longer exists; removal errors are ignored on purpose,
        // the export's own error (if any) is what the caller must see.
        drop(self.temp_file.take());
        let _ = fs::remove_file(&self.temp);
        for path in &self.scratch {
            for side in ["", "-journal", "-wal", "-shm"] {
                let mut name = path.as_os_str().to_owned();
                name.push(side);
                let _ = fs::remove_file(PathBuf::from(name));
            }
        }
    }
}

/// Writes `MAGIC` + one zstd frame (checksum, exact content size) of `database` into `file`.
fn compress_into(database: &Path, file: File) -> Result<()> {
    let source = File::open(database)
        .with_context(|| format!("opening the built database {}", database.display()))?;
    let size = source.metadata()?.len();
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(MAGIC)?;
    let mut encoder = zstd::stream::Encoder::new(out, ZSTD_LEVEL)?;
    encoder.set_pledged_src_size(Some(size))?;
    encoder.include_checksum(true)?;
    encoder.include_contentsize(true)?;
    // Compression is the last sequential step of an export: spread it over the cores. The
    // output is still one frame.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    if workers > 1 {
        encoder.multithread(workers)?;
    }
    let copied = io::copy(&mut BufReader::with_capacity(1 << 20, source), &mut encoder)?;
    if copied != size {
        bail!("the database changed size while compressing ({size} -> {copied} bytes)");
    }
    let out = encoder.finish()?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(())
}

/// Checks the magic of `c1z` and decompresses its database into `database`.
pub fn decompress(c1z: &Path, database: &Path) -> Result<()> {
    let context = || format!("reading {}", c1z.display());
    let mut input = BufReader::new(File::open(c1z).with_context(context)?);
    let mut magic = [0u8; 5];
    input
        .read_exact(&mut magic)
        .with_context(|| format!("{} is too short to be a .c1z", c1z.display()))?;
    if &magic != MAGIC {
        bail!(
            "{} is not a classic .c1z (magic {:?}, expected \"C1ZF\\0\")",
            c1z.display(),
            String::from_utf8_lossy(&magic)
        );
    }
    let output =
        File::create(database).with_context(|| format!("creating {}", database.display()))?;
    let mut output = BufWriter::with_capacity(1 << 20, output);
    zstd::stream::copy_decode(input, &mut output).with_context(context)?;
    output.flush().with_context(context)?;
    Ok(())
}
