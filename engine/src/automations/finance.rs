//! Finance metrics: reads a ledger (a CSV file, or JSON rows from an HTTP source) and
//! computes per month revenue, expenses, net, MRR, burn, runway and month-over-month
//! growth. Money is kept in integer cents; nothing is rounded until it is shown.
//!
//! Params: `ledger_path` (default `examples/ledger.csv`) or `source_url`; `currency`
//! (default USD); `starting_cash` (default 600000); `recurring_categories` (default
//! `["subscription"]`). A ledger with bad rows fails the run with `line N: reason` for up
//! to 20 of them, and no snapshot is produced.

use crate::kinds::{string_param, JobContext, JobFailure, JobResult};
use crate::model::ValidationError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

pub const KIND: &str = "finance-metrics";
const MAX_REPORTED_ERRORS: usize = 20;

/// One ledger row as read, before validation.
#[derive(Debug, Clone, Deserialize)]
pub struct RawRow {
    pub date: String,
    pub amount: serde_json::Value,
    pub currency: String,
    pub category: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub description: String,
}

/// A validated ledger entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub month: String,
    pub cents: i64,
    pub category: String,
    pub revenue: bool,
}

/// Parses `"1234.5"` / `1234.5` into cents; at most two decimals, positive.
pub fn parse_cents(v: &serde_json::Value) -> Result<i64, String> {
    let text = match v {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        other => return Err(format!("amount {other} is not a number")),
    };
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!(
            "amount {text:?} is not a positive number with at most 2 decimals"
        ));
    }
    let whole: i64 = whole
        .parse()
        .map_err(|_| format!("amount {text:?} is too large"))?;
    let frac: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    whole
        .checked_mul(100)
        .and_then(|c| c.checked_add(frac))
        .ok_or_else(|| format!("amount {text:?} is too large"))
}

/// Validates rows (`(line, row)`), collecting every problem.
pub fn validate(rows: Vec<(usize, RawRow)>, currency: &str) -> Result<Vec<Entry>, Vec<String>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (line, row) in rows {
        let mut problem = |m: String| errors.push(format!("line {line}: {m}"));
        let date = match chrono::NaiveDate::parse_from_str(row.date.trim(), "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => {
                problem(format!("date {:?} is not YYYY-MM-DD", row.date));
                continue;
            }
        };
        let cents = match parse_cents(&row.amount) {
            Ok(c) => c,
            Err(m) => {
                problem(m);
                continue;
            }
        };
        if !row.currency.trim().eq_ignore_ascii_case(currency) {
            problem(format!(
                "currency {:?} differs from the ledger's {currency}",
                row.currency
            ));
            continue;
        }
        let revenue = match row.kind.trim() {
            "revenue" => true,
            "expense" => false,
            other => {
                problem(format!("type {other:?} is neither revenue nor expense"));
                continue;
            }
        };
        if row.category.trim().is_empty() {
            problem("category is empty".into());
            continue;
        }
        entries.push(Entry {
            month: date.format("%Y-%m").to_string(),
            cents,
            category: row.category.trim().to_string(),
            revenue,
        });
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}

/// Per-month figures and the summary, as the run's output.
pub fn compute(
    entries: &[Entry],
    starting_cash_cents: i64,
    recurring: &[String],
) -> serde_json::Value {
    #[derive(Default)]
    struct Month {
        revenue: i64,
        expenses: i64,
        mrr: i64,
    }
    let mut months: BTreeMap<&str, Month> = BTreeMap::new();
    for e in entries {
        let m = months.entry(&e.month).or_default();
        if e.revenue {
            m.revenue += e.cents;
            if recurring.iter().any(|c| c == &e.category) {
                m.mrr += e.cents;
            }
        } else {
            m.expenses += e.cents;
        }
    }
    let dollars = |c: i64| c as f64 / 100.0;
    let mut cash = starting_cash_cents;
    let mut burns: Vec<i64> = Vec::new();
    let mut prev_revenue: Option<i64> = None;
    let mut out = Vec::new();
    for (month, m) in &months {
        let net = m.revenue - m.expenses;
        cash += net;
        let burn = (-net).max(0);
        burns.push(burn);
        let recent = &burns[burns.len().saturating_sub(3)..];
        let avg_burn = recent.iter().sum::<i64>() / recent.len() as i64;
        let runway =
            (avg_burn > 0).then(|| (cash.max(0) as f64 / avg_burn as f64 * 10.0).round() / 10.0);
        let growth = prev_revenue
            .filter(|p| *p > 0)
            .map(|p| ((m.revenue - p) as f64 / p as f64 * 1000.0).round() / 10.0);
        prev_revenue = Some(m.revenue);
        out.push(serde_json::json!({
            "month": month,
            "revenue": dollars(m.revenue),
            "expenses": dollars(m.expenses),
            "net": dollars(net),
            "mrr": dollars(m.mrr),
            "burn": dollars(burn),
            "cash": dollars(cash),
            "runway_months": runway,
            "revenue_growth_pct": growth,
        }));
    }
    let total_revenue: i64 = months.values().map(|m| m.revenue).sum();
    let total_expenses: i64 = months.values().map(|m| m.expenses).sum();
    serde_json::json!({
        "months": out,
        "latest": out.last().cloned(),
        "totals": { "revenue": dollars(total_revenue), "expenses": dollars(total_expenses), "net": dollars(total_revenue - total_expenses) },
        "entries": entries.len(),
    })
}

/// Reads CSV rows, numbering lines as a person would (the header is line 1).
pub fn read_csv(text: &str) -> Result<Vec<(usize, RawRow)>, Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.deserialize::<RawRowCsv>().enumerate() {
        let line = i + 2;
        match record {
            Ok(r) => rows.push((
                line,
                RawRow {
                    date: r.date,
                    amount: serde_json::Value::String(r.amount),
                    currency: r.currency,
                    category: r.category,
                    kind: r.kind,
                    description: r.description,
                },
            )),
            Err(e) => errors.push(format!("line {line}: {}", csv_reason(&e))),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields, expected {expected_len}"),
        csv::ErrorKind::Deserialize { err, .. } => err.to_string(),
        _ => e.to_string(),
    }
}

#[derive(Debug, Deserialize)]
struct RawRowCsv {
    date: String,
    amount: String,
    currency: String,
    category: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    description: String,
}

fn failure(errors: Vec<String>) -> JobFailure {
    let n = errors.len();
    let shown: Vec<_> = errors.into_iter().take(MAX_REPORTED_ERRORS).collect();
    let more = if n > shown.len() {
        format!(" (and {} more)", n - shown.len())
    } else {
        String::new()
    };
    JobFailure::new(format!(
        "the ledger has {n} bad row(s), no snapshot written:\n{}{more}",
        shown.join("\n")
    ))
}

pub fn check_params(params: &serde_json::Value) -> Result<(), ValidationError> {
    string_param(params, "ledger_path")?;
    string_param(params, "currency")?;
    if let Some(url) = string_param(params, "source_url")? {
        crate::outbound::Outbound::parse_url("source_url", url).map_err(|e| ValidationError {
            field: "params.source_url".into(),
            message: e.to_string(),
        })?;
    }
    if let Some(cash) = params.get("starting_cash") {
        parse_cents(cash).map_err(|message| ValidationError {
            field: "params.starting_cash".into(),
            message,
        })?;
    }
    if let Some(c) = params.get("recurring_categories") {
        if !c
            .as_array()
            .is_some_and(|a| a.iter().all(serde_json::Value::is_string))
        {
            return Err(ValidationError {
                field: "params.recurring_categories".into(),
                message: "must be a list of category names".into(),
            });
        }
    }
    Ok(())
}

/// `path` if it lies inside one of `dirs` (after `..` and symbolic links are resolved),
/// else why not. Nothing outside is opened, so an error says nothing of what is there.
pub fn confine(path: &str, dirs: &[PathBuf]) -> Result<PathBuf, String> {
    let refused = || {
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        format!(
            "ledger_path {path} is outside the ledger directories ({}); the server allows more with --ledger-dirs",
            shown.join(", ")
        )
    };
    let absolute = |p: &Path| -> Option<PathBuf> {
        let joined = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().ok()?.join(p)
        };
        // Lexically first: `..` cannot climb out before anything is looked at.
        let mut out = PathBuf::new();
        for c in joined.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::CurDir => {}
                other => out.push(other),
            }
        }
        Some(out)
    };
    let roots: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| absolute(d))
        .map(|d| d.canonicalize().unwrap_or(d))
        .collect();
    let inside = |p: &Path| roots.iter().any(|r| p.starts_with(r));
    let candidate = absolute(Path::new(path)).ok_or_else(refused)?;
    let lexical_root = dirs
        .iter()
        .filter_map(|d| absolute(d))
        .any(|r| candidate.starts_with(&r));
    if !lexical_root && !inside(&candidate) {
        return Err(refused());
    }
    // Then for real: a symbolic link inside may point anywhere.
    match candidate.canonicalize() {
        Ok(real) if inside(&real) => Ok(real),
        Ok(_) => Err(refused()),
        Err(e) => Err(format!("cannot read the ledger {path}: {e}")),
    }
}

pub async fn run(ctx: JobContext) -> JobResult {
    let p = &ctx.job.params;
    let currency = p
        .get("currency")
        .and_then(|v| v.as_str())
        .unwrap_or("USD")
        .to_string();
    let starting_cash = parse_cents(p.get("starting_cash").unwrap_or(&serde_json::json!(600000)))
        .map_err(|e| JobFailure::new(format!("params.starting_cash: {e}")))?;
    let recurring: Vec<String> = p
        .get("recurring_categories")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_else(|| vec!["subscription".to_string()]);
    let (rows, source) = if let Some(url) = p.get("source_url").and_then(|v| v.as_str()) {
        let shown = crate::secrets::mask_url(url);
        let answer = ctx
            .engine
            .outbound()
            .get(url, std::time::Duration::from_secs(30))
            .await
            .map_err(|e| JobFailure::new(format!("cannot fetch the ledger from {shown}: {e}")))?;
        if !answer.is_success() {
            return Err(JobFailure::new(format!(
                "cannot fetch the ledger from {shown}: it answered {}",
                answer.status
            )));
        }
        let body: Vec<RawRow> = answer.json().map_err(|e| {
            JobFailure::new(format!(
                "the ledger at {shown} is not a JSON array of rows: {e}"
            ))
        })?;
        (
            body.into_iter()
                .enumerate()
                .map(|(i, r)| (i + 1, r))
                .collect(),
            shown,
        )
    } else {
        let path = p
            .get("ledger_path")
            .and_then(|v| v.as_str())
            .unwrap_or("examples/ledger.csv");
        let confined = confine(path, &ctx.engine.config().ledger_dirs).map_err(JobFailure::new)?;
        let text = tokio::fs::read_to_string(&confined)
            .await
            .map_err(|e| JobFailure::new(format!("cannot read the ledger {path}: {e}")))?;
        (read_csv(&text).map_err(failure)?, path.to_string())
    };
    let entries = validate(rows, &currency).map_err(failure)?;
    let mut report = compute(&entries, starting_cash, &recurring);
    report["source"] = source.into();
    report["currency"] = currency.into();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_parse_exactly_and_refuse_what_is_not_money() {
        assert_eq!(parse_cents(&serde_json::json!("1234.5")), Ok(123450));
        assert_eq!(parse_cents(&serde_json::json!("0.07")), Ok(7));
        assert_eq!(parse_cents(&serde_json::json!(12)), Ok(1200));
        assert!(parse_cents(&serde_json::json!("-5")).is_err());
        assert!(parse_cents(&serde_json::json!("1.234")).is_err());
        assert!(parse_cents(&serde_json::json!("abc")).is_err());
        assert!(parse_cents(&serde_json::json!("99999999999999999999")).is_err());
    }

    #[test]
    fn bad_rows_are_listed_by_line() {
        let text = "date,amount,currency,category,type,description\n2026-01-01,10.00,USD,subscription,revenue,ok\n2026-13-01,10.00,USD,x,revenue,bad date\n2026-01-02,ten,USD,x,revenue,bad amount\n2026-01-03,1.00,EUR,x,revenue,bad currency\n2026-01-04,1.00,USD,x,gift,bad type\n";
        let rows = read_csv(text).unwrap();
        let errors = validate(rows, "USD").unwrap_err();
        assert_eq!(errors.len(), 4);
        assert!(errors[0].starts_with("line 3: date"), "{errors:?}");
        assert!(errors[1].starts_with("line 4: amount"), "{errors:?}");
        assert!(errors[2].starts_with("line 5: currency"), "{errors:?}");
        assert!(errors[3].starts_with("line 6: type"), "{errors:?}");
        let ragged = read_csv("date,amount,currency,category,type,description\n2026-01-01,1.00\n")
            .unwrap_err();
        assert_eq!(ragged, vec!["line 2: 2 fields, expected 6".to_string()]);
    }

    #[test]
    fn ledger_paths_outside_the_allowed_directories_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let inside = dir.path().join("ledgers");
        std::fs::create_dir(&inside).unwrap();
        std::fs::write(inside.join("l.csv"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", inside.join("link.csv")).unwrap();
        let dirs = vec![inside.clone()];
        assert!(confine(inside.join("l.csv").to_str().unwrap(), &dirs).is_ok());
        for bad in [
            "/etc/shadow".to_string(),
            format!("{}/../../etc/passwd", inside.display()),
            inside.join("link.csv").display().to_string(),
        ] {
            let err = confine(&bad, &dirs).unwrap_err();
            assert!(
                err.contains("outside the ledger directories"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn runway_uses_the_average_burn_of_the_last_three_months() {
        let e = |month: &str, cents: i64, revenue: bool| Entry {
            month: month.into(),
            cents,
            category: "subscription".into(),
            revenue,
        };
        let entries = [
            e("2026-01", 100_000, true),
            e("2026-01", 300_000, false),
            e("2026-02", 100_000, true),
            e("2026-02", 500_000, false),
        ];
        let r = compute(&entries, 10_000_000, &["subscription".into()]);
        let feb = &r["months"][1];
        assert_eq!(feb["burn"], 4000.0);
        assert_eq!(feb["cash"], 94000.0);
        // (2000 + 4000) / 2 = 3000 a month: 94000 / 3000 = 31.3 months.
        assert_eq!(feb["runway_months"], 31.3);
        assert_eq!(feb["mrr"], 1000.0);
        assert_eq!(feb["revenue_growth_pct"], 0.0);
    }
}
