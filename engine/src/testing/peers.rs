//! Real protocol peers on loopback for the alerting tests: an HTTP receiver that records
//! what it is sent (and answers with the statuses it is told to), and an SMTP server that
//! records the mail it accepts (and refuses a wrong password as a real one does).

use base64::Engine as _;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request a [`Receiver`] got: its head (request line and headers) and body.
#[derive(Debug, Clone)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// An HTTP receiver on loopback.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    /// Answers `answers` in turn, then 200 to everything.
    pub async fn start(answers: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let url = format!(
            "http://{}/hook",
            listener.local_addr().expect("its address")
        );
        let got: Arc<Mutex<Vec<Received>>> = Default::default();
        let answers = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<_>>()));
        let (g, a) = (got.clone(), answers.clone());
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (g, a) = (g.clone(), a.clone());
                tokio::spawn(async move {
                    let Some((head, body)) = super::read_request(&mut sock).await else {
                        return;
                    };
                    g.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Received { head, body });
                    let status = a
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .pop_front()
                        .unwrap_or(200);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        Receiver { url, got, answers }
    }

    /// Everything received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Statuses still to answer before the 200s.
    pub fn pending_answers(&self) -> usize {
        self.answers.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One mail an [`SmtpSink`] accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The user it authenticated as.
    pub user: Option<String>,
    /// The message as sent (headers and body), dot-unstuffed.
    pub data: String,
}

impl Mail {
    pub fn subject(&self) -> Option<String> {
        self.data
            .lines()
            .find_map(|l| l.strip_prefix("Subject: ").map(str::to_string))
    }
}

/// An SMTP server on loopback (no TLS) that takes `AUTH PLAIN` / `AUTH LOGIN` with one
/// user and password and records every mail.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    mail: Arc<Mutex<Vec<Mail>>>,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl SmtpSink {
    pub async fn start(user: &str, password: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let mail: Arc<Mutex<Vec<Mail>>> = Default::default();
        let (m, user, password) = (mail.clone(), user.to_string(), password.to_string());
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let (m, user, password) = (m.clone(), user.clone(), password.clone());
                tokio::spawn(async move {
                    let _ = session(sock, &m, &user, &password).await;
                });
            }
        });
        SmtpSink { port, mail }
    }

    pub fn mail(&self) -> Vec<Mail> {
        self.mail.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn session(
    sock: tokio::net::TcpStream,
    mail: &Mutex<Vec<Mail>>,
    user: &str,
    password: &str,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"220 sink ESMTP ready\r\n").await?;
    let (mut from, mut to, mut authed) = (String::new(), Vec::new(), None::<String>);
    let check = |u: &str, p: &str| (u == user && p == password).then(|| u.to_string());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".into()
        } else if upper.starts_with("AUTH PLAIN") {
            let given = match line.split_whitespace().nth(2) {
                Some(b) => b.to_string(),
                None => {
                    w.write_all(b"334 \r\n").await?;
                    lines.next_line().await?.unwrap_or_default()
                }
            };
            let decoded = b64(&given);
            let mut parts = decoded.split('\0').skip(1);
            authed = check(
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            if authed.is_some() {
                "235 2.7.0 authenticated\r\n"
            } else {
                "535 5.7.8 bad credentials\r\n"
            }
            .into()
        } else if upper.starts_with("AUTH LOGIN") {
            w.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            let u = b64(&lines.next_line().await?.unwrap_or_default());
            w.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let p = b64(&lines.next_line().await?.unwrap_or_default());
            authed = check(&u, &p);
            if authed.is_some() {
                "235 2.7.0 authenticated\r\n"
            } else {
                "535 5.7.8 bad credentials\r\n"
            }
            .into()
        } else if upper.starts_with("MAIL FROM:") {
            if authed.is_none() {
                "530 5.7.0 authentication required\r\n".into()
            } else {
                from = line[10..].trim().trim_matches(['<', '>']).to_string();
                "250 ok\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_string());
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            w.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
            }
            mail.lock().unwrap_or_else(|e| e.into_inner()).push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                user: authed.clone(),
                data,
            });
            "250 2.0.0 queued\r\n".into()
        } else if upper == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            "250 ok\r\n".into()
        };
        w.write_all(reply.as_bytes()).await?;
    }
    Ok(())
}
