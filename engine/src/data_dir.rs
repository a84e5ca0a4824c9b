//! The data dir is private: the directory is 0700 and every file EchoPilot writes in it
//! is 0600 (the store, its WAL, the key, the PID file, the event log). A data dir left
//! looser by an older version, or by hand, is tightened at start.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its parents) as 0700 if missing; tightens it to 0700 if not.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    tighten(dir, DIR_MODE)
}

/// Makes `dir` private, and every file in it and in its `logs/`.
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    create_private_dir(dir)?;
    for sub in [dir.to_path_buf(), dir.join("logs")] {
        let entries = match std::fs::read_dir(&sub) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let kind = entry.file_type()?;
            let mode = if kind.is_dir() { DIR_MODE } else { FILE_MODE };
            match tighten(&entry.path(), mode) {
                // Gone meanwhile (another process's write probe): nothing to tighten.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    Ok(())
}

/// Creates `path` empty with mode 0600 unless it exists (SQLite then gives its WAL and
/// shared-memory files the same mode).
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => tighten(path, FILE_MODE),
        Err(e) => Err(e),
    }
}

/// Opens `path` for appending, creating it with mode 0600.
pub fn open_private_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)
}

/// Removes group and other bits from `path`'s mode (never widens it). Symbolic links are
/// left alone (their target is not ours to change).
fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let current = meta.permissions().mode() & 0o777;
    let wanted = current & mode;
    if current != wanted {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
    }
    Ok(())
}

/// Creates and removes a file in `dir`, proving it is writable.
pub fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}
