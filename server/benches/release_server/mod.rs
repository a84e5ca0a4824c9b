//! The real release server as a process, for the benchmarks that measure through HTTP.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

/// The dashboard key the benchmark servers run with.
pub const KEY: &str = "bench-key-0123456789";

/// Starts `target/release/echopilot serve` on a free loopback port with `args` and `env`
/// on top; answers the process and the URL it announces.
pub fn start(args: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/echopilot");
    let mut child = Command::new(&bin)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .env("DASHBOARD_KEY", KEY)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} (run `make build` first): {e}",
                bin.display()
            )
        });
    let url = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"))
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("EchoPilot is running on ")
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string)
        })
        .expect("server announces its URL");
    (child, url)
}
