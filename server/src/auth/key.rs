//! The dashboard key: the root secret. Kept only as its SHA-256, compared in constant
//! time (both sides hashed first, so even the length leaks nothing), never logged; at
//! least [`MIN_KEY_LEN`] characters; generated on first start when none is given.

use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

/// The dashboard key, kept only as its SHA-256.
pub struct DashKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for DashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DashKey(..)")
    }
}

/// Shorter keys are refused at start-up: a key is the only thing between the network and
/// shell access, and short ones fall to guessing even through the throttle.
pub const MIN_KEY_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("DASHBOARD_KEY is set but empty; set a real key, or unset it to use the generated one in {0}")]
    EmptyEnv(String),
    #[error("the dashboard key file {0} is empty; delete it to generate a new key, or write a key into it")]
    EmptyFile(String),
    #[error("the dashboard key from {0} is {1} characters; use at least {MIN_KEY_LEN} (for example `openssl rand -hex 32`)")]
    TooShort(String, usize),
    #[error("cannot read or create the dashboard key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl DashKey {
    pub fn new(key: &str) -> Self {
        Self {
            digest: Sha256::digest(key.as_bytes()).into(),
        }
    }

    /// Constant-time comparison of `candidate` with the key.
    pub fn matches(&self, candidate: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        self.digest.ct_eq(&other).into()
    }

    /// The key from `DASHBOARD_KEY` (`env_key`), else `<dir>/dashboard.key`, else a new
    /// random key written there with mode 0600 and printed once.
    pub fn load_or_create(env_key: Option<&str>, dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join("dashboard.key");
        let shown = path.display().to_string();
        let checked = |from: &str, key: &str| {
            let n = key.chars().count();
            if n < MIN_KEY_LEN {
                Err(KeyError::TooShort(from.to_string(), n))
            } else {
                Ok(Self::new(key))
            }
        };
        if let Some(key) = env_key {
            if key.trim().is_empty() {
                return Err(KeyError::EmptyEnv(shown));
            }
            return checked("DASHBOARD_KEY", key.trim());
        }
        let io = |source| KeyError::Io {
            path: shown.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(key) if key.trim().is_empty() => Err(KeyError::EmptyFile(shown)),
            Ok(key) => checked(&shown, key.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let key = random_hex(32);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .map_err(io)?;
                file.write_all(format!("{key}\n").as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
                // Printed once, on the terminal of the operator who started the server;
                // never sent to the log.
                println!("Generated a dashboard key (saved in {shown}, mode 0600):\n  {key}");
                Ok(Self::new(&key))
            }
            Err(e) => Err(io(e)),
        }
    }
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // The OS random source failing is not something a server can carry on without.
    getrandom::fill(&mut bytes).expect("the OS random number generator is unavailable");
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_matches_only_itself() {
        let key = DashKey::new("correct horse");
        assert!(key.matches("correct horse"));
        assert!(!key.matches("correct hors"));
        assert!(!key.matches(""));
    }

    #[test]
    fn empty_env_key_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let err = DashKey::load_or_create(Some("  "), dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("DASHBOARD_KEY is set but empty"),
            "{err}"
        );
    }

    #[test]
    fn generated_key_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        DashKey::load_or_create(None, dir.path()).unwrap();
        let path = dir.path().join("dashboard.key");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let written = std::fs::read_to_string(&path).unwrap();
        let again = DashKey::load_or_create(None, dir.path()).unwrap();
        assert!(again.matches(written.trim()));
    }
}
