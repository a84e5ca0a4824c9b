//! Secrets in job params: which values are secret, how they are shown (never in clear),
//! how a masked value sent back is kept, and how they are scrubbed from anything a run
//! prints (output, error, log).
//!
//! A value is secret when its key names a secret (`password`, `token`, `api_key`,
//! `Authorization`, `X-Signature`, ...), when its key names a webhook (the URL is the
//! credential), or when it is the password or a secret-named query parameter of a URL.
//! Reads answer [`MASK`] in their place; an update that sends [`MASK`] back keeps the
//! stored value, so a job read from the API can be sent back as it is.

use reqwest::Url;
use serde_json::{Map, Value};

/// What a secret is shown as.
pub const MASK: &str = "••••";

/// Shorter values are not scrubbed from free text: masking every "1" in a log helps
/// nobody, and such a value is no secret anyway.
const MIN_SCRUBBED: usize = 4;

/// Whether a key (a param, a header, a query parameter) names a secret.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    let words: Vec<&str> = lower.split('_').filter(|w| !w.is_empty()).collect();
    const SECRET_WORDS: &[&str] = &[
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "auth",
        "authorization",
        "bearer",
        "cookie",
        "signature",
        "sig",
        "credential",
        "credentials",
        "apikey",
        "session",
        "jwt",
    ];
    // Run together ("accesstoken", "xapikey", "dbpassword"): judged by the ending, so
    // counts such as "total_tokens" stay readable.
    let compact: String = words.concat();
    words.iter().any(|w| SECRET_WORDS.contains(w))
        || words.last() == Some(&"key")
        || lower.contains("password")
        || ["token", "secret", "passwd", "apikey", "signature"]
            .iter()
            .any(|end| compact.ends_with(end))
}

/// Whether a key names a webhook: the whole URL is the credential (Slack, Discord, ...).
fn is_webhook_name(name: &str) -> bool {
    name.to_ascii_lowercase().contains("webhook")
}

/// `url` with its password and secret-named query values masked; any other text as it is.
pub fn mask_url(text: &str) -> String {
    let Ok(mut url) = Url::parse(text) else {
        return text.to_string();
    };
    if !url.has_host() {
        return text.to_string();
    }
    let mut changed = false;
    if url.password().is_some() {
        changed |= url.set_password(Some(MASK)).is_ok();
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        if pairs.iter().any(|(k, _)| is_secret_name(k)) {
            changed = true;
            let mut q = url.query_pairs_mut();
            q.clear();
            for (k, v) in &pairs {
                q.append_pair(k, if is_secret_name(k) { MASK } else { v });
            }
        }
    }
    if changed {
        // The mask is percent-encoded in the URL; shown to people, it reads as itself.
        url.to_string().replace("%E2%80%A2", "•")
    } else {
        text.to_string()
    }
}

/// Params as reads show them: every secret masked.
pub fn mask_params(params: &Value) -> Value {
    mask_value(None, params)
}

fn mask_value(key: Option<&str>, v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), mask_value(Some(k), v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|i| mask_value(key, i)).collect()),
        Value::Null => Value::Null,
        _ if key.is_some_and(|k| is_secret_name(k) || is_webhook_name(k)) => MASK.into(),
        Value::String(s) => Value::String(mask_url(s)),
        other => other.clone(),
    }
}

/// `new` params with every masked value put back from `old` (the stored params): a value
/// equal to the mask of the stored one at the same place, a URL whose password or query
/// values are the mask, or the mask itself under a secret key.
pub fn restore_params(new: Value, old: &Value) -> Value {
    restore(new, Some(old))
}

fn restore(new: Value, old: Option<&Value>) -> Value {
    match (new, old) {
        (Value::Object(map), Some(Value::Object(old_map))) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let o = old_map.get(&k);
                    (k, restore(v, o))
                })
                .collect::<Map<_, _>>(),
        ),
        (Value::Array(items), Some(Value::Array(old_items))) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| restore(v, old_items.get(i)))
                .collect(),
        ),
        (Value::String(s), Some(old)) if s == MASK => old.clone(),
        (Value::String(s), Some(Value::String(o))) if s.contains(MASK) => {
            Value::String(restore_url(&s, o).unwrap_or(s))
        }
        (new, _) => new,
    }
}

/// A URL sent back with masked parts, completed from the stored one.
fn restore_url(new: &str, old: &str) -> Option<String> {
    let mut url = Url::parse(&new.replace('•', "%E2%80%A2")).ok()?;
    let old = Url::parse(old).ok()?;
    let masked = |s: &str| s.replace("%E2%80%A2", "•") == MASK;
    if url.password().is_some_and(masked) {
        url.set_password(old.password()).ok()?;
    }
    if url.query().is_some() {
        let stored: Vec<(String, String)> = old.query_pairs().into_owned().collect();
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .into_owned()
            .map(|(k, v)| {
                let v = if v == MASK {
                    stored
                        .iter()
                        .find(|(sk, _)| *sk == k)
                        .map_or(v, |(_, sv)| sv.clone())
                } else {
                    v
                };
                (k, v)
            })
            .collect();
        let mut q = url.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
    }
    Some(url.to_string())
}

/// Scrubs a job's secrets from what its runs print. Built once per run from the job's
/// params; URLs with credentials are masked wherever they appear, known or not.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Secret values, longest first so a value containing another is replaced whole.
    values: Vec<String>,
}

impl Redactor {
    pub fn for_params(params: &Value) -> Self {
        let mut values = Vec::new();
        collect(None, params, &mut values);
        values.retain(|v| v.chars().count() >= MIN_SCRUBBED && v != MASK);
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// `text` with every known secret and every URL credential masked.
    pub fn text(&self, text: &str) -> String {
        let mut out = scrub_urls(text);
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }

    /// Every string inside `value` scrubbed; secret-named keys masked whatever they hold.
    pub fn value(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if is_secret_name(k) && !v.is_null() && !v.is_object() {
                            MASK.into()
                        } else {
                            self.value(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

fn collect(key: Option<&str>, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                collect(Some(k), v, out);
            }
        }
        Value::Array(items) => {
            for i in items {
                collect(key, i, out);
            }
        }
        Value::Null => {}
        _ if key.is_some_and(|k| is_secret_name(k) || is_webhook_name(k)) => {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            // "Bearer abc": the credential alone may be printed too.
            if let Some((_, cred)) = text.split_once(' ') {
                out.push(cred.trim().to_string());
            }
            if let Some(url) = Url::parse(&text).ok().filter(Url::has_host) {
                url_secrets(&url, out);
            }
            out.push(text);
        }
        Value::String(s) => {
            if let Some(url) = Url::parse(s).ok().filter(Url::has_host) {
                url_secrets(&url, out);
            }
        }
        _ => {}
    }
}

fn url_secrets(url: &Url, out: &mut Vec<String>) {
    if let Some(p) = url.password() {
        out.push(p.to_string());
        if let Ok(decoded) = percent_decode(p) {
            out.push(decoded);
        }
    }
    for (k, v) in url.query_pairs() {
        if is_secret_name(&k) {
            out.push(v.into_owned());
        }
    }
}

fn percent_decode(s: &str) -> Result<String, ()> {
    let mut bytes = Vec::with_capacity(s.len());
    let raw = s.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            let hex = std::str::from_utf8(&raw[i + 1..i + 3]).map_err(|_| ())?;
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
            i += 3;
        } else {
            bytes.push(raw[i]);
            i += 1;
        }
    }
    String::from_utf8(bytes).map_err(|_| ())
}

/// Masks the credentials of every URL in free text ("request to https://u:p@h/ failed").
pub fn scrub_urls(text: &str) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let stop = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        // Back up over the scheme.
        let start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let end = rest[at..].find(stop).map_or(rest.len(), |i| at + i);
        out.push_str(&rest[..start]);
        let token = &rest[start..end];
        // A URL at the end of a sentence keeps its punctuation outside.
        let trimmed = token.trim_end_matches(['.', ',', ';', ')', ']']);
        out.push_str(&mask_url(trimmed));
        out.push_str(&token[trimmed.len()..]);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Control characters encoded (`\n`, `\r`, `\t`, `\u{1b}`), so a value always stays on
/// its own line in a log or an audit entry.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_names_are_recognised_in_any_spelling() {
        for name in [
            "password",
            "db_password",
            "token",
            "access_token",
            "api_key",
            "x_api_key",
            "X-Api-Key",
            "X-Access-Key",
            "X-Signature",
            "Authorization",
            "Cookie",
            "client_secret",
            "apikey",
            "private_key",
            "accesstoken",
            "XApiKey",
        ] {
            assert!(is_secret_name(name), "{name} is a secret");
        }
        for name in [
            "url",
            "method",
            "keep_last",
            "expected_status",
            "Accept",
            "author",
            "llm_model",
            "retention_days",
            "monkey",
            "total_tokens",
            "max_tokens",
        ] {
            assert!(!is_secret_name(name), "{name} is not a secret");
        }
    }

    #[test]
    fn reads_mask_secrets_and_masked_values_sent_back_keep_the_stored_ones() {
        let stored = json!({
            "url": "https://user:hunter2@api.example.com/v1?token=abc123&page=2",
            "headers": { "Authorization": "Bearer sekrit-token", "Accept": "text/plain", "x_api_key": "k-123456" },
            "password": "pa55word",
            "webhook_url": "https://hooks.example.com/T000/B000/XXXX",
            "env": { "DB_PASSWORD": "dbpass99", "MODE": "prod" },
        });
        let shown = mask_params(&stored);
        let text = shown.to_string();
        for secret in [
            "hunter2",
            "abc123",
            "sekrit-token",
            "k-123456",
            "pa55word",
            "XXXX",
            "dbpass99",
        ] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert_eq!(shown["headers"]["Accept"], "text/plain");
        assert_eq!(shown["env"]["MODE"], "prod");
        assert_eq!(
            shown["url"],
            "https://user:••••@api.example.com/v1?token=••••&page=2"
        );
        // Sent back unchanged: everything is as stored.
        assert_eq!(restore_params(shown.clone(), &stored), stored);
        // One field changed by hand: the rest is kept, the change taken.
        let mut edited = shown;
        edited["password"] = "new-pass".into();
        edited["url"] = "https://user:••••@api.example.com/v2?token=••••&page=3".into();
        let kept = restore_params(edited, &stored);
        assert_eq!(kept["password"], "new-pass");
        assert_eq!(
            kept["url"],
            "https://user:hunter2@api.example.com/v2?token=abc123&page=3"
        );
        assert_eq!(kept["headers"]["Authorization"], "Bearer sekrit-token");
    }

    #[test]
    fn the_redactor_scrubs_known_secrets_and_any_url_credentials_from_text() {
        let params = json!({
            "url": "https://api.example.com/?api_key=abc123",
            "headers": { "Authorization": "Bearer sekrit-token" },
        });
        let r = Redactor::for_params(&params);
        let line = "request to https://api.example.com/?api_key=abc123 failed; sent sekrit-token; saw http://bob:pw1234@other.example/x.";
        let clean = r.text(line);
        assert!(!clean.contains("abc123"), "{clean}");
        assert!(!clean.contains("sekrit-token"), "{clean}");
        assert!(!clean.contains("pw1234"), "{clean}");
        assert!(
            clean.contains("http://bob:••••@other.example/x."),
            "{clean}"
        );
        let out = r.value(&json!({ "body": "echo sekrit-token", "x_signature": "s", "n": 1 }));
        assert_eq!(
            out,
            json!({ "body": "echo ••••", "x_signature": "••••", "n": 1 })
        );
    }

    #[test]
    fn control_characters_are_encoded() {
        assert_eq!(escape_controls("a\nb\r\u{1b}[31m"), "a\\nb\\r\\u{1b}[31m");
        assert_eq!(escape_controls("plain"), "plain");
    }
}
