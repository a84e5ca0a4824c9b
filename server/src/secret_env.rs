//! Secrets given in the environment (`DASHBOARD_KEY`, `ECHOPILOT_LLM_API_KEY`, the
//! database URL with its password) do not
//! stay there: any process of the same user can read a process's environment through
//! `/proc/<pid>/environ`, shell jobs included (`/proc/$PPID/environ`).
//!
//! Removing a variable with `remove_var` is not enough: `/proc/<pid>/environ` shows the
//! environment the process was *started* with. So `serve` re-executes itself once,
//! without the secrets in its environment, and hands them over through a pipe that the
//! new image reads and closes before anything else starts.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};

/// The variables that hold secrets.
pub const SECRET_VARS: &[&str] = &[
    "DASHBOARD_KEY",
    "ECHOPILOT_LLM_API_KEY",
    "ECHOPILOT_DATABASE_URL",
];
/// Names the pipe's file descriptor in the re-executed process.
const FD_VAR: &str = "ECHOPILOT_SECRETS_FD";

/// The secrets, out of the environment. Call first thing in `serve`, before any thread
/// starts. Either returns the secrets (read back from the pipe, or found in an environment
/// that could not be replaced), or does not return at all: the program restarts without
/// them in its environment and comes back here.
pub fn take() -> HashMap<String, String> {
    if let Some(fd) = std::env::var_os(FD_VAR) {
        std::env::remove_var(FD_VAR);
        return match read_handover(&fd) {
            Ok(secrets) => secrets,
            Err(e) => {
                eprintln!("error: cannot read the secrets handed over at start-up: {e}");
                std::process::exit(1);
            }
        };
    }
    let found: HashMap<String, String> = SECRET_VARS
        .iter()
        .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
        .collect();
    if found.is_empty() {
        return found;
    }
    let err = reexec_without(&found);
    // Only reached when the restart failed: carry on, with the secrets where they were.
    eprintln!(
        "warning: cannot restart without the secrets in the environment ({err}); shell jobs may read them from /proc"
    );
    for name in found.keys() {
        std::env::remove_var(name);
    }
    found
}

/// Re-executes this program with `secrets` removed from its environment and written to
/// an inherited pipe instead. Returns only on failure.
fn reexec_without(secrets: &HashMap<String, String>) -> std::io::Error {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let (reader, mut writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut payload = Vec::new();
    for (k, v) in secrets {
        payload.extend_from_slice(k.as_bytes());
        payload.push(0);
        payload.extend_from_slice(v.as_bytes());
        payload.push(0);
    }
    // A pipe holds 64 KiB; a few keys fit many times over, so this never blocks.
    if let Err(e) = writer.write_all(&payload) {
        return e;
    }
    drop(writer);
    // std opens pipes close-on-exec; this end must survive the exec.
    if let Err(e) = nix::fcntl::fcntl(
        &reader,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    ) {
        return std::io::Error::from(e);
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from("echopilot"));
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.arg0(arg0)
        .args(args)
        .env(FD_VAR, reader.as_raw_fd().to_string());
    for name in secrets.keys() {
        cmd.env_remove(name);
    }
    cmd.exec()
}

/// Reads `NAME\0VALUE\0...` from the inherited pipe, then closes it.
fn read_handover(fd: &std::ffi::OsStr) -> std::io::Result<HashMap<String, String>> {
    let n: i32 = fd
        .to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("{FD_VAR} is not a file descriptor")))?;
    let mut bytes = Vec::new();
    std::fs::File::open(format!("/proc/self/fd/{n}"))?.read_to_end(&mut bytes)?;
    // The pipe is drained; closing it keeps it from shell jobs too.
    nix::unistd::close(n).map_err(std::io::Error::from)?;
    let text = String::from_utf8(bytes).map_err(std::io::Error::other)?;
    let mut parts = text.split('\0');
    let mut out = HashMap::new();
    while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
        if !k.is_empty() {
            out.insert(k.to_string(), v.to_string());
        }
    }
    Ok(out)
}
