//! One server per data dir. The PID file is also the lock: the server holds an exclusive
//! OS lock on it for its whole life. The kernel drops the lock when the process dies, so a
//! file left behind by `kill -9` never blocks the next start — only a live holder does.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Holds the lock; removes the file when dropped (normal exit).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    /// Kept open: closing it would release the lock.
    file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("another EchoPilot (pid {pid}) is already running with data dir {dir}; stop it or use another --data-dir")]
    Held { pid: String, dir: PathBuf },
    #[error("cannot use the PID file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl PidFile {
    /// Takes the lock on `<dir>/echopilot.pid` and writes our PID into it, fsynced.
    pub fn acquire(dir: &Path) -> Result<Self, PidFileError> {
        // A server exiting removes the file while holding the lock; one racing with it
        // may have opened the old, now unlinked file and lock that. Check the locked file
        // is still the one at the path, and try again if not.
        for _ in 0..8 {
            if let Some(pidfile) = Self::try_acquire(dir)? {
                return Ok(pidfile);
            }
        }
        Err(PidFileError::Io {
            path: dir.join("echopilot.pid"),
            source: std::io::Error::other("the PID file kept being replaced while we locked it"),
        })
    }

    fn try_acquire(dir: &Path) -> Result<Option<Self>, PidFileError> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let path = dir.join("echopilot.pid");
        let io = |source| PidFileError::Io {
            path: path.clone(),
            source,
        };
        // Not truncated on open: if another server holds the lock, its PID must survive
        // our attempt so we can name it.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(PidFileError::Held {
                    pid: pid.trim().to_string(),
                    dir: dir.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let locked = file.metadata().map_err(io)?;
        match std::fs::metadata(&path) {
            Ok(at_path) if at_path.ino() == locked.ino() && at_path.dev() == locked.dev() => {}
            _ => return Ok(None),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(Some(Self { path, file }))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Remove while still holding the lock, so a server starting right now cannot
        // lock the old file and then lose it to our removal.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}
