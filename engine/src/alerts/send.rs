//! Delivering one notice through one channel: the webhook signed with the channel's
//! secret, Slack, Discord and ntfy as each expects it, email over SMTP. Every address
//! goes through the outbound guard first (no SSRF through a channel).

use crate::model::alert::{Channel, ChannelKind, Smtp, SmtpTls};
use crate::outbound::{Outbound, Request};
use hmac::{Hmac, Mac};
use reqwest::Method;
use std::time::Duration;

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);

/// How an attempt came out: the status code the far end answered (HTTP, or the SMTP
/// reply), and the error when it was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub code: Option<u16>,
    pub error: Option<String>,
}

impl Attempt {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
    fn failed(code: Option<u16>, error: impl Into<String>) -> Self {
        Attempt {
            code,
            error: Some(error.into()),
        }
    }
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`: the webhook's signature.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // An HMAC key may have any length: `new_from_slice` cannot fail.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The one line a chat message says.
fn line(event: &serde_json::Value) -> String {
    let what = event["event"].as_str().unwrap_or("alert");
    let icon = match what {
        "recovered" => "✅",
        "test" => "🔔",
        _ => "🚨",
    };
    format!(
        "{icon} EchoPilot {what}: {}",
        event["message"].as_str().unwrap_or_default()
    )
}

/// Sends `event` (the delivery's JSON) through `channel`.
pub async fn deliver(
    outbound: &Outbound,
    channel: &Channel,
    event: &serde_json::Value,
    at: chrono::DateTime<chrono::Utc>,
) -> Attempt {
    if channel.kind == ChannelKind::Email {
        return match &channel.smtp {
            Some(smtp) => email(outbound, smtp, event).await,
            None => Attempt::failed(None, "the channel has no SMTP settings"),
        };
    }
    let Some(url) = &channel.url else {
        return Attempt::failed(None, "the channel has no url");
    };
    let url = match Outbound::parse_url("url", url) {
        Ok(u) => u,
        Err(e) => return Attempt::failed(None, e.to_string()),
    };
    let req = Request::new(Method::POST, url, ATTEMPT_TIMEOUT);
    let req = match channel.kind {
        ChannelKind::Webhook => {
            let body = event.to_string().into_bytes();
            let mut req = req
                .header("content-type", "application/json")
                .header("x-echopilot-timestamp", at.timestamp().to_string());
            if let Some(secret) = &channel.secret {
                req = req.header("x-echopilot-signature", signature(secret, &body));
            }
            Request {
                body: Some(body),
                ..req
            }
        }
        ChannelKind::Slack => req.json(&serde_json::json!({ "text": line(event) })),
        ChannelKind::Discord => req.json(&serde_json::json!({ "content": line(event) })),
        ChannelKind::Ntfy => {
            let urgent = matches!(event["event"].as_str(), Some("opened" | "reminder"));
            Request {
                body: Some(
                    event["message"]
                        .as_str()
                        .unwrap_or_default()
                        .as_bytes()
                        .to_vec(),
                ),
                ..req
                    .header(
                        "title",
                        format!("EchoPilot {}", event["event"].as_str().unwrap_or("alert")),
                    )
                    .header("priority", if urgent { "high" } else { "default" })
                    .header(
                        "tags",
                        if urgent {
                            "rotating_light"
                        } else {
                            "white_check_mark"
                        },
                    )
            }
        }
        ChannelKind::Email => unreachable!("handled above"),
    };
    match outbound
        .send(Request {
            max_body: 4096,
            ..req
        })
        .await
    {
        Ok(r) if r.is_success() => Attempt {
            code: Some(r.status),
            error: None,
        },
        Ok(r) => {
            let text = r.text();
            let text: String = text.chars().take(200).collect();
            Attempt::failed(
                Some(r.status),
                format!("answered {}: {}", r.status, text.trim()),
            )
        }
        Err(e) => Attempt::failed(None, e.to_string()),
    }
}

/// The subject and text of the mail for `event`.
pub fn mail_text(event: &serde_json::Value) -> (String, String) {
    let what = event["event"].as_str().unwrap_or("alert");
    let message = event["message"].as_str().unwrap_or_default();
    let subject = format!("[EchoPilot] {what}: {message}");
    let subject: String = subject.chars().take(160).collect();
    let mut text = format!("{message}\n\n");
    for key in ["event", "rule", "job", "check", "run", "incident", "at"] {
        match &event[key] {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) => text.push_str(&format!("{key}: {s}\n")),
            v => text.push_str(&format!("{key}: {v}\n")),
        }
    }
    if let Some(e) = event["error"].as_str() {
        text.push_str(&format!("\nerror:\n{e}\n"));
    }
    text.push_str("\n-- \nEchoPilot\n");
    (subject, text)
}

async fn email(outbound: &Outbound, smtp: &Smtp, event: &serde_json::Value) -> Attempt {
    use lettre::message::{header::ContentType, Mailbox, Message};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

    let addr = match outbound.checked_host(&smtp.host, smtp.port).await {
        Ok(a) => a,
        Err(e) => return Attempt::failed(None, e.to_string()),
    };
    let (subject, text) = mail_text(event);
    let mut builder = Message::builder().subject(subject);
    match smtp.from.parse::<Mailbox>() {
        Ok(m) => builder = builder.from(m),
        Err(e) => return Attempt::failed(None, format!("from: {e}")),
    }
    for to in &smtp.to {
        match to.parse::<Mailbox>() {
            Ok(m) => builder = builder.to(m),
            Err(e) => return Attempt::failed(None, format!("to {to:?}: {e}")),
        }
    }
    let message = match builder.header(ContentType::TEXT_PLAIN).body(text) {
        Ok(m) => m,
        Err(e) => return Attempt::failed(None, format!("cannot build the mail: {e}")),
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = |host: &str| TlsParameters::new(host.to_string());
    let tls = match smtp.tls {
        SmtpTls::None => Ok(Tls::None),
        SmtpTls::Starttls => tls(&smtp.host).map(Tls::Required),
        SmtpTls::Tls => tls(&smtp.host).map(Tls::Wrapper),
    };
    let tls = match tls {
        Ok(t) => t,
        Err(e) => return Attempt::failed(None, format!("TLS for {}: {e}", smtp.host)),
    };
    // Connect to the address the guard checked; TLS still verifies the host's name.
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(addr.port())
            .tls(tls)
            .timeout(Some(ATTEMPT_TIMEOUT));
    if let (Some(user), Some(password)) = (&smtp.user, &smtp.password) {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    match transport.build().send(message).await {
        Ok(r) => Attempt {
            code: Some(u16::from(r.code())),
            error: None,
        },
        Err(e) => {
            let code = e.status().map(u16::from);
            let why = if e.is_permanent() && code == Some(535) {
                format!("the SMTP server refused the login ({e})")
            } else {
                format!("SMTP to {}:{}: {e}", smtp.host, smtp.port)
            };
            Attempt::failed(code, why)
        }
    }
}
