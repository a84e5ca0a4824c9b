//! Settings in layers: the file under the environment under the flags, reported with
//! their sources and secrets masked by `config check`; a bad file is one line naming the
//! file, the line, the setting and the problem, exit 2; and every setting of `serve` is
//! documented in the README and in examples/echopilot.toml (this test keeps them in step).

use crate::support::bin;
use clap::CommandFactory;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn run(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(bin());
    c.args(args)
        .env_remove("ECHOPILOT_HEARTBEAT_SECS")
        .env_remove("ECHOPILOT_BIND");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn flags_beat_the_environment_which_beats_the_file_and_check_says_which_is_which() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("echopilot.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:4000\"\nheartbeat_secs = 30\nnode = \"from-file\"\nhttp_allow = [\"10.0.0.5\", \"intranet\"]\nallow_shell = true\ndatabase_url = \"postgres://ep:hunter2@db:5432/ep\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = run(
        &["config", "check", "--config", f, "--node", "from-flag"],
        &[("ECHOPILOT_HEARTBEAT_SECS", "45")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("{key} in {text}"))
            .to_string()
    };
    assert!(
        line("bind").contains("127.0.0.1:4000") && line("bind").contains("(file "),
        "{text}"
    );
    assert!(
        line("heartbeat_secs").contains("45")
            && line("heartbeat_secs").contains("(env ECHOPILOT_HEARTBEAT_SECS)"),
        "{text}"
    );
    assert!(
        line("node").contains("from-flag") && line("node").ends_with("(flag)"),
        "{text}"
    );
    assert!(line("http_allow").contains("intranet"), "{text}");
    assert!(line("allow_shell").contains("true"), "{text}");
    assert!(
        line("max_connections").contains("1024 ") && line("max_connections").ends_with("(default)"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "secrets masked: {text}");
    assert!(line("database_url").contains("postgres://ep:"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_its_settings_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("echopilot.toml");
    std::fs::write(&file, "node = \"from-file\"\nheartbeat_secs = 7\n").unwrap();
    let server = crate::support::spawn(crate::support::Opts {
        args: vec!["--config".into(), file.to_str().unwrap().into()],
        ..Default::default()
    })
    .expect("it starts");
    let status = server.json("GET", "/api/automations/status").await;
    assert_eq!(status["node"], "from-file", "{status}");
    // The harness passes --heartbeat-secs itself: the flag beats the file.
    assert_eq!(status["heartbeat_interval_secs"], 60, "{status}");
}

#[test]
fn a_bad_file_is_one_line_naming_the_file_the_line_the_setting_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    let f = file.to_str().unwrap();
    for (text, line, says) in [
        (
            "bind = \"127.0.0.1:4000\"\n\nheartbeat_sec = 30\n",
            3,
            "unknown setting \"heartbeat_sec\"",
        ),
        (
            "heartbeat_secs = 0\n",
            1,
            "setting heartbeat_secs: invalid value '0'",
        ),
        (
            "bind = \"nowhere\"\n",
            1,
            "setting bind: invalid value 'nowhere'",
        ),
        (
            "allow_shell = \"yes\"\n",
            1,
            "setting allow_shell: expected true or false",
        ),
        ("bind = \n", 1, ""),
        ("config = \"other.toml\"\n", 1, "unknown setting \"config\""),
    ] {
        std::fs::write(&file, text).unwrap();
        for cmd in [
            &["config", "check", "--config", f][..],
            &["serve", "--config", f][..],
        ] {
            let out = run(cmd, &[]);
            assert_eq!(out.status.code(), Some(2), "{text:?} {cmd:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.starts_with(&format!("error: {f}:{line}: ")),
                "{text:?}: {err}"
            );
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }
}

#[test]
fn every_setting_is_in_the_readme_the_example_file_and_config_check() {
    let readme = std::fs::read_to_string(format!("{ROOT}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{ROOT}/examples/echopilot.toml")).unwrap();
    let report = String::from_utf8_lossy(&run(&["config", "check"], &[]).stdout).to_string();
    let cli = echopilot::config::Cli::command();
    let serve = cli.find_subcommand("serve").unwrap();
    for arg in serve.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set() || ["config", "help"].contains(&id) {
            continue;
        }
        let flag = format!("`--{}`", arg.get_long().unwrap());
        assert!(
            readme.contains(&format!("| `{id}` | {flag} |")),
            "README's settings table lacks {id}"
        );
        if let Some(env) = arg.get_env() {
            assert!(
                readme.contains(&format!("`{}`", env.to_string_lossy())),
                "README lacks {env:?}"
            );
        }
        assert!(
            example
                .lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{id} ="))),
            "examples/echopilot.toml lacks {id}"
        );
        assert!(
            report
                .lines()
                .any(|l| l.split_whitespace().next() == Some(id)),
            "config check lacks {id}"
        );
    }
    // And the example itself is a valid file (uncommented, every line parses).
    let dir = tempfile::tempdir().unwrap();
    let all: String = example
        .lines()
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| {
            l.contains(" = ")
                && !l.starts_with("llm_api_key")
                && !l.starts_with("database_url")
                && !l.starts_with("heartbeat_url =")
        })
        .map(|l| l.split("   #").next().unwrap().to_string() + "\n")
        .collect();
    let file = dir.path().join("all.toml");
    std::fs::write(&file, all).unwrap();
    let out = run(
        &["config", "check", "--config", file.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
