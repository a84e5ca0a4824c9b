//! The `shell` job kind: runs a program from an argv list — never a string handed to a
//! shell — with the given env and working directory, in a process group of its own. Off
//! unless the server runs with `--allow-shell`.
//!
//! Params: `argv` (`["program", "arg", ...]`, required), `env` (object), `cwd`. Stdout and
//! stderr stream into the run's live log as the program writes them, and are kept in the
//! output up to 1 MiB each; the exit code is recorded and non-zero fails the run.
//! When the run is abandoned (timeout, shutdown), the whole process group gets SIGKILL,
//! which no child can ignore. The program also gets SIGKILL when the server dies without
//! a chance to clean up (`kill -9`): its run is rescued elsewhere, so it must not go on.
//!
//! The environment is clean (PATH, HOME, LANG, TZ pass), plus the job's `env`, plus who
//! this execution is: `ECHOPILOT_RUN_ID`, `ECHOPILOT_JOB_ID`, `ECHOPILOT_ATTEMPT`,
//! `ECHOPILOT_SCHEDULED_AT` (the slot, RFC 3339; empty for a manual run) and
//! `ECHOPILOT_IDEMPOTENCY_KEY` (`<job>:<slot or first run id>`, the same for every retry).

use crate::kinds::{JobContext, JobFailure, JobResult};
use crate::live_log::RunLog;
use serde_json::json;
use tokio::io::AsyncReadExt;

pub const KIND: &str = "shell";
const MAX_OUTPUT: usize = 1024 * 1024;

/// Kills the process group when dropped: the runner drops the run's future when it
/// times out or shuts down, and every descendant must go with it.
struct GroupKiller(Option<i32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // ESRCH (the group already exited) is the normal case.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Reads a pipe to its end, keeping up to [`MAX_OUTPUT`] and passing the text to the
/// run's live log as it arrives (a character split across reads waits for its rest).
async fn read_capped(mut from: impl tokio::io::AsyncRead + Unpin, log: RunLog) -> (String, bool) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut pending = Vec::new();
    let mut truncated = false;
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                // Keep draining past the cap so the child never blocks on a full pipe.
                truncated |= n > room;
                pending.extend_from_slice(&buf[..n]);
                let whole = match std::str::from_utf8(&pending) {
                    Ok(_) => pending.len(),
                    Err(e) if e.error_len().is_none() => e.valid_up_to(),
                    Err(_) => pending.len(),
                };
                log.append(&String::from_utf8_lossy(&pending[..whole]));
                pending.drain(..whole);
            }
        }
    }
    log.append(&String::from_utf8_lossy(&pending));
    (String::from_utf8_lossy(&kept).into_owned(), truncated)
}

/// Checks a shell job's params when it is saved: the argv (the field is `params`).
/// Asks the kernel to SIGKILL the child when the thread that started it goes away — the
/// server killed, or its jobs runtime ended — so a program never outlives a dead server.
fn die_with_server(cmd: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed: prctl(2) and getppid(2) are both raw system
    // calls that neither allocate nor take locks.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)?;
            // The server died between fork and prctl: the signal will never come.
            if nix::unistd::getppid().as_raw() as u32 != parent {
                return Err(std::io::Error::other("the server exited"));
            }
            // The server's own files are private (umask 077); a job's are as usual.
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
            Ok(())
        });
    }
}

pub fn check(params: &serde_json::Value) -> Result<(), crate::model::ValidationError> {
    argv(params)
        .map(|_| ())
        .map_err(|message| crate::model::ValidationError {
            field: "params".into(),
            message,
        })
}

/// The argv of a shell job's params, checked.
pub fn argv(params: &serde_json::Value) -> Result<Vec<String>, String> {
    let list = params
        .get("argv")
        .and_then(|v| v.as_array())
        .ok_or("params.argv is required: [\"program\", \"arg\", ...]")?;
    let argv: Option<Vec<String>> = list
        .iter()
        .map(|v| v.as_str().map(str::to_string))
        .collect();
    let argv = argv.ok_or("params.argv must hold only strings")?;
    if argv.first().is_none_or(|p| p.is_empty()) {
        return Err("params.argv needs a program as its first item".into());
    }
    Ok(argv)
}

pub async fn run(ctx: JobContext) -> JobResult {
    if !ctx.engine.config().allow_shell {
        return Err(JobFailure::new(
            "shell jobs are off; start the server with --allow-shell to run them",
        ));
    }
    let p = &ctx.job.params;
    let argv = argv(p).map_err(JobFailure::new)?;
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .process_group(0)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // A clean environment: the server's own (which may hold DASHBOARD_KEY or LLM keys)
    // is not the job's business. Only the basics pass through.
    cmd.env_clear();
    for var in ["PATH", "HOME", "LANG", "TZ"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    if let Some(env) = p.get("env").and_then(|v| v.as_object()) {
        for (k, v) in env {
            cmd.env(
                k,
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
    }
    // Which execution this is, for the program to deduplicate by; set last, so a job's
    // own `env` cannot make them lie.
    cmd.env("ECHOPILOT_RUN_ID", ctx.run_id.to_string())
        .env("ECHOPILOT_JOB_ID", &ctx.job.id)
        .env("ECHOPILOT_ATTEMPT", ctx.attempt.to_string())
        .env("ECHOPILOT_IDEMPOTENCY_KEY", ctx.idempotency_key())
        .env(
            "ECHOPILOT_SCHEDULED_AT",
            ctx.scheduled_at_text().unwrap_or_default(),
        );
    if let Some(cwd) = p.get("cwd").and_then(|v| v.as_str()) {
        cmd.current_dir(cwd);
    }
    die_with_server(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| JobFailure::new(format!("cannot start {:?}: {e}", argv[0])))?;
    let _group = GroupKiller(child.id().and_then(|id| i32::try_from(id).ok()));
    let stdout = child.stdout.take().map(|o| read_capped(o, ctx.log.clone()));
    let stderr = child.stderr.take().map(|e| read_capped(e, ctx.log.clone()));
    let (status, out, err) = tokio::join!(
        child.wait(),
        async {
            match stdout {
                Some(f) => f.await,
                None => Default::default(),
            }
        },
        async {
            match stderr {
                Some(f) => f.await,
                None => Default::default(),
            }
        }
    );
    let status =
        status.map_err(|e| JobFailure::new(format!("waiting for {:?} failed: {e}", argv[0])))?;
    let output = json!({
        "argv": argv,
        "exit_code": status.code(),
        "stdout": out.0,
        "stdout_truncated": out.1,
        "stderr": err.0,
        "stderr_truncated": err.1,
    });
    if status.success() {
        Ok(output)
    } else {
        let how = status.code().map_or_else(
            || "was killed by a signal".to_string(),
            |c| format!("exited with {c}"),
        );
        Err(JobFailure {
            message: format!("{:?} {how}", argv[0]),
            output: Some(output),
        })
    }
}
