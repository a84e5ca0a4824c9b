//! Settings in layers, weakest first: each flag's default, the TOML file (`--config`,
//! `ECHOPILOT_CONFIG`), the environment (`ECHOPILOT_*`), the flags. The file names each
//! setting as its flag (`heartbeat_secs = 30`, `http_allow = ["10.0.0.5"]`); an unknown
//! one, or a value its flag would refuse, is an error naming the setting, the file and
//! the line. File values reach clap as the flags they stand for, so every setting is
//! parsed and checked in one place whatever its layer.

use crate::config::Cli;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Flag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Flag => write!(f, "flag"),
        }
    }
}

/// A bad settings file, as one line: the file, the line, the setting, the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct FileError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The settings that may not be in a file: where the file is, and the tests' own.
const NOT_IN_FILE: [&str; 2] = ["config", "clock_skew_ms"];

/// The serve settings (clap's ids, which are the flags' names in snake case).
fn settings() -> clap::Command {
    Cli::command()
        .find_subcommand("serve")
        .cloned()
        .unwrap_or_else(|| unreachable!("serve is a subcommand"))
}

/// Parses the command line with the settings file (if `serve` or `config check` names
/// one) layered under the environment and the flags, and says where each setting came
/// from. `Err` for a bad file; clap itself reports bad flags and exits.
pub fn parse(argv: Vec<OsString>) -> Result<(Cli, BTreeMap<String, Source>), FileError> {
    let first = Cli::command().get_matches_from(argv.clone());
    let Some((name, sub)) = first
        .subcommand()
        .filter(|(n, _)| *n == "serve" || *n == "config")
    else {
        return Ok((from(&first), BTreeMap::new()));
    };
    let (sub, position) = match name {
        "config" => match sub.subcommand() {
            Some((_, check)) => (check, 2),
            None => return Ok((from(&first), BTreeMap::new())),
        },
        _ => (sub, 1),
    };
    let mut sources: BTreeMap<String, Source> = BTreeMap::new();
    for arg in settings().get_arguments() {
        let id = arg.get_id().as_str().to_string();
        let source = match sub.value_source(&id) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => Source::Env(
                arg.get_env()
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
            _ => Source::Default,
        };
        sources.insert(id, source);
    }
    let Some(path) = sub.get_one::<PathBuf>("config").cloned() else {
        return Ok((from(&first), sources));
    };
    let file = read(&path)?;
    // The file's settings that neither the environment nor a flag gave, as flags.
    let mut tokens: Vec<(String, usize, Vec<OsString>)> = Vec::new();
    for (key, (line, value)) in &file {
        if sources.get(key) != Some(&Source::Default) {
            continue;
        }
        tokens.push((key.clone(), *line, flag(key, value, &path, *line)?));
    }
    // argv with the file's flags right after the subcommand(s).
    let at = |extra: &[OsString]| -> Vec<OsString> {
        let mut v = argv.clone();
        let cut = subcommand_end(&v, position);
        v.splice(cut..cut, extra.iter().cloned());
        v
    };
    let all: Vec<OsString> = tokens.iter().flat_map(|(_, _, t)| t.clone()).collect();
    match Cli::command().try_get_matches_from(at(&all)) {
        Ok(m) => {
            for (key, _, _) in &tokens {
                sources.insert(key.clone(), Source::File(path.clone()));
            }
            Ok((from(&m), sources))
        }
        Err(_) => {
            // Which one: each alone, in file order.
            for (key, line, t) in &tokens {
                if let Err(e) = Cli::command().try_get_matches_from(at(t)) {
                    let why = e.to_string();
                    let why = why
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("error: ");
                    return Err(FileError {
                        file: path.display().to_string(),
                        line: *line,
                        message: format!("setting {key}: {why}"),
                    });
                }
            }
            Err(FileError {
                file: path.display().to_string(),
                line: 1,
                message: "the settings do not go together".into(),
            })
        }
    }
}

fn from(m: &clap::ArgMatches) -> Cli {
    Cli::from_arg_matches(m).unwrap_or_else(|e| e.exit())
}

/// Where, in `argv`, the `depth`-th subcommand's name ends (serve = 1, config check = 2).
fn subcommand_end(argv: &[OsString], depth: usize) -> usize {
    let mut seen = 0;
    for (i, a) in argv.iter().enumerate().skip(1) {
        if !a.to_string_lossy().starts_with('-') {
            seen += 1;
            if seen == depth {
                return i + 1;
            }
        }
    }
    argv.len()
}

/// The file's settings by name, each with its line.
fn read(path: &Path) -> Result<BTreeMap<String, (usize, toml::Value)>, FileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        file: shown.clone(),
        line: 0,
        message: format!("cannot read it: {e}"),
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(1, |s| {
            text[..s.start.min(text.len())].lines().count().max(1)
        });
        FileError {
            file: shown.clone(),
            line,
            message: e.message().trim().to_string(),
        }
    })?;
    let known: Vec<String> = settings()
        .get_arguments()
        .map(|a| a.get_id().as_str().to_string())
        .collect();
    let line_of = |key: &str| {
        text.lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or(1, |i| i + 1)
    };
    let mut out = BTreeMap::new();
    for (key, value) in table {
        let line = line_of(&key);
        if !known.contains(&key) || NOT_IN_FILE.contains(&key.as_str()) {
            return Err(FileError { file: shown, line, message: format!("unknown setting {key:?} (settings are named as their flags: data_dir, heartbeat_secs, …; see examples/echopilot.toml)") });
        }
        out.insert(key, (line, value));
    }
    Ok(out)
}

/// A file setting as the flag it stands for.
fn flag(
    key: &str,
    value: &toml::Value,
    path: &Path,
    line: usize,
) -> Result<Vec<OsString>, FileError> {
    let name = format!("--{}", key.replace('_', "-"));
    let bad = |what: &str| FileError {
        file: path.display().to_string(),
        line,
        message: format!("setting {key}: {what}"),
    };
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        _ => Err(bad("expected a string or a number")),
    };
    let is_switch = settings()
        .get_arguments()
        .find(|a| a.get_id() == key)
        .is_some_and(|a| matches!(a.get_action(), clap::ArgAction::SetTrue));
    Ok(match value {
        toml::Value::Boolean(b) if is_switch => {
            if *b {
                vec![name.into()]
            } else {
                Vec::new()
            }
        }
        _ if is_switch => return Err(bad("expected true or false")),
        toml::Value::Array(items) => {
            let items: Result<Vec<String>, FileError> = items.iter().map(scalar).collect();
            vec![name.into(), items?.join(",").into()]
        }
        v => vec![name.into(), scalar(v)?.into()],
    })
}

/// The settings that are secrets: shown masked.
const SECRETS: [&str; 3] = ["database_url", "llm_api_key", "heartbeat_url"];

/// `echopilot config check`: every setting, its value (secrets masked) and its source.
pub fn report(args: &crate::config::ServeArgs, sources: &BTreeMap<String, Source>) -> String {
    let values = serde_json::to_value(args).unwrap_or_default();
    let width = sources.keys().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, source) in sources {
        if NOT_IN_FILE.contains(&key.as_str()) && key != "config" {
            continue;
        }
        let value = &values[key];
        let shown = match value {
            serde_json::Value::Null => "-".to_string(),
            // A key is all secret; a URL keeps its host.
            serde_json::Value::String(_) if key == "llm_api_key" => "********".to_string(),
            serde_json::Value::String(s) if SECRETS.contains(&key.as_str()) => {
                engine::secrets::mask_url(s)
            }
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!("{key:<width$} = {shown}  ({source})\n"));
    }
    out
}
