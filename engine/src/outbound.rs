//! The one door to the network: every request EchoPilot makes — HTTP jobs, the built-ins'
//! own calls (health targets, ledger source, model, webhook), anything later — goes
//! through [`Outbound`], with the server-side request forgery guard of RELIABILITY 26.
//!
//! - Every address a request would reach is checked: the URL's host, each DNS answer,
//!   each redirect hop. Loopback, private, link-local (cloud metadata), CGNAT,
//!   unspecified, multicast and the IPv4-mapped forms of those are refused unless the
//!   operator allowed the host (`--http-allow`).
//! - The connection is pinned to the checked address, so a DNS answer that changes
//!   between the check and the connect cannot slip through; proxies from the
//!   environment are never used (they would connect on our behalf, unchecked).
//! - Redirects are followed here, hop by hop, never by the HTTP client. When a hop
//!   changes scheme, host or port, secret headers and the body are dropped: a credential
//!   meant for one host is never handed to another.
//! - Response bodies are read up to a cap.

use crate::secrets;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use reqwest::{Method, Url};

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;

/// Resolves a host and port to addresses (every answer is checked, then one is pinned).
pub type Resolver = Arc<dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>> + Send + Sync>;

/// Why an address may not be reached, or `None` when it may.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4).map(|_| "IPv4-mapped private or local");
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> Option<&'static str> {
    let o = v4.octets();
    if v4.is_loopback() {
        Some("loopback")
    } else if v4.is_private() {
        Some("private")
    } else if v4.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("CGNAT")
    } else if o[0] == 0 {
        Some("unspecified")
    } else if v4.is_multicast() || v4.is_broadcast() {
        Some("multicast or broadcast")
    } else {
        None
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// For the whole exchange, redirects included.
    pub timeout: Duration,
    /// Most response bytes kept; the rest is dropped and `truncated` says so.
    pub max_body: usize,
}

impl Request {
    pub fn new(method: Method, url: Url, timeout: Duration) -> Self {
        Request {
            method,
            url,
            headers: Vec::new(),
            body: None,
            timeout,
            max_body: 1024 * 1024,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.header("content-type", "application/json")
    }
}

/// What came back, after every redirect.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// The URL that answered (the last hop).
    pub url: Url,
    /// Each hop's target, in order.
    pub redirects: Vec<String>,
    pub body: Vec<u8>,
    pub truncated: bool,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

/// Why a request did not get an answer. Each reads as a sentence; URLs in it have their
/// credentials masked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OutboundError {
    /// The guard refused an address (or a URL that is not http(s)).
    #[error("{0}")]
    Refused(String),
    #[error("timed out after {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
}

/// The guarded client. Cheap to clone; every clone shares the allow list and resolver.
#[derive(Clone)]
pub struct Outbound {
    inner: Arc<Inner>,
}

struct Inner {
    /// Hosts (names or IP addresses) that may be reached although they are loopback,
    /// private or link-local.
    allow: Vec<String>,
    /// Name resolution, when a test replaces the system's.
    resolver: Mutex<Option<Resolver>>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("allow", &self.inner.allow)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    pub fn new(allow: Vec<String>) -> Self {
        Outbound {
            inner: Arc::new(Inner {
                allow,
                resolver: Mutex::new(None),
            }),
        }
    }

    /// Replaces the system resolver (tests use it to change DNS answers).
    pub fn set_resolver(&self, resolver: Resolver) {
        *self
            .inner
            .resolver
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(resolver);
    }

    /// Parses `url` and checks it is http(s); the error names `field`.
    pub fn parse_url(field: &str, url: &str) -> Result<Url, OutboundError> {
        let parsed = Url::parse(url).map_err(|e| {
            OutboundError::Refused(format!("{field}: {}: {e}", secrets::mask_url(url)))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(OutboundError::Refused(format!(
                "{field}: scheme {} is not http or https",
                parsed.scheme()
            )));
        }
        Ok(parsed)
    }

    /// `GET url`.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Response, OutboundError> {
        let url = Self::parse_url("url", url)?;
        self.send(Request::new(Method::GET, url, timeout)).await
    }

    /// Sends `req`, following redirects through the guard.
    pub async fn send(&self, req: Request) -> Result<Response, OutboundError> {
        let timeout = req.timeout;
        match tokio::time::timeout(timeout, self.exchange(req)).await {
            Ok(r) => r,
            Err(_) => Err(OutboundError::Timeout(timeout)),
        }
    }

    async fn exchange(&self, req: Request) -> Result<Response, OutboundError> {
        let Request {
            mut method,
            mut url,
            mut headers,
            mut body,
            timeout,
            max_body,
        } = req;
        let mut redirects = Vec::new();
        let response = loop {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(OutboundError::Refused(format!(
                    "{}: scheme {} is not http or https",
                    secrets::mask_url(url.as_str()),
                    url.scheme()
                )));
            }
            let addr = self.checked_address(&url).await?;
            let host = bare_host(&url);
            // reqwest has no TLS provider of its own (see the workspace Cargo.toml); ring is
            // ours, and a second install is refused, which is just as good.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .resolve(&host, addr)
                .timeout(timeout)
                .build()
                .map_err(|e| OutboundError::Failed(format!("cannot build an HTTP client: {e}")))?;
            let mut r = client.request(method.clone(), url.clone());
            for (k, v) in &headers {
                r = r.header(k.as_str(), v.as_str());
            }
            if let Some(b) = &body {
                r = r.body(b.clone());
            }
            let resp = r.send().await.map_err(|e| {
                OutboundError::Failed(format!(
                    "request to {} failed: {}",
                    secrets::mask_url(url.as_str()),
                    secrets::scrub_urls(&root_cause(&e))
                ))
            })?;
            if !resp.status().is_redirection() {
                break resp;
            }
            let shown = secrets::mask_url(url.as_str());
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| {
                    OutboundError::Failed(format!("{shown} redirected without a Location"))
                })?;
            if redirects.len() == MAX_REDIRECTS {
                return Err(OutboundError::Failed(format!(
                    "more than {MAX_REDIRECTS} redirects"
                )));
            }
            let next = url.join(location).map_err(|e| {
                OutboundError::Failed(format!("{shown} redirected to a bad URL: {e}"))
            })?;
            if !matches!(resp.status().as_u16(), 307 | 308) {
                method = Method::GET;
                body = None;
                headers.retain(|(k, _)| !is_body_header(k));
            }
            if origin(&next) != origin(&url) {
                headers.retain(|(k, _)| !secrets::is_secret_name(k) && !is_body_header(k));
                body = None;
            }
            redirects.push(secrets::mask_url(next.as_str()));
            url = next;
        };
        let status = response.status().as_u16();
        let mut stream = response;
        let mut bytes = Vec::new();
        let mut truncated = false;
        while let Some(chunk) = stream.chunk().await.map_err(|e| {
            OutboundError::Failed(format!("reading the response failed: {}", root_cause(&e)))
        })? {
            let room = max_body - bytes.len();
            if chunk.len() > room {
                bytes.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            url,
            redirects,
            body: bytes,
            truncated,
        })
    }

    /// Resolves `url`'s host and checks every answer; returns the address to pin.
    async fn checked_address(&self, url: &Url) -> Result<SocketAddr, OutboundError> {
        let shown = secrets::mask_url(url.as_str());
        let host = bare_host(url);
        if host.is_empty() {
            return Err(OutboundError::Refused(format!("{shown} has no host")));
        }
        let port = url
            .port_or_known_default()
            .ok_or_else(|| OutboundError::Refused(format!("{shown} has no port")))?;
        self.checked_host(&host, port).await
    }

    /// The address `host` resolves to for a connection that is not HTTP (SMTP), through
    /// the same guard as every request: refused unless every address it resolves to may
    /// be reached.
    pub async fn checked_host(&self, host: &str, port: u16) -> Result<SocketAddr, OutboundError> {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addrs = self
            .resolve(&host, port)
            .await
            .map_err(|e| OutboundError::Failed(format!("cannot resolve {host}: {e}")))?;
        let first = *addrs
            .first()
            .ok_or_else(|| OutboundError::Failed(format!("{host} resolves to no address")))?;
        let allow = &self.inner.allow;
        let allowed = allow.iter().any(|a| a.eq_ignore_ascii_case(&host));
        for a in &addrs {
            let ip = a.ip();
            if !allowed && !allow.iter().any(|x| x.parse::<IpAddr>().ok() == Some(ip)) {
                if let Some(why) = forbidden(ip) {
                    return Err(OutboundError::Refused(format!("{host} resolves to {ip}, a {why} address; EchoPilot may not reach it unless the server allows the host (--http-allow)")));
                }
            }
        }
        Ok(first)
    }

    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let custom = self
            .inner
            .resolver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match custom {
            Some(resolve) => resolve(host, port),
            None => Ok(tokio::net::lookup_host((host, port)).await?.collect()),
        }
    }
}

/// The host without IPv6 brackets.
fn bare_host(url: &Url) -> String {
    url.host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string()
}

fn origin(url: &Url) -> (String, String, Option<u16>) {
    (
        url.scheme().to_string(),
        bare_host(url).to_ascii_lowercase(),
        url.port_or_known_default(),
    )
}

/// Headers that describe a body, dropped with it.
fn is_body_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "content-type" || n == "content-length" || n == "content-encoding"
}

/// The innermost cause of an error ("Connection refused").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_local_and_mapped_addresses_are_refused_public_ones_are_not() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "224.0.0.1",
        ] {
            assert!(
                forbidden(ip.parse().unwrap()).is_some(),
                "{ip} must be refused"
            );
        }
        for ip in [
            "93.184.216.34",
            "1.1.1.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "172.32.0.1",
        ] {
            assert!(forbidden(ip.parse().unwrap()).is_none(), "{ip} is public");
        }
    }

    #[test]
    fn a_redirect_to_another_port_is_another_origin() {
        let a = Url::parse("http://h.example:8080/x").unwrap();
        let b = Url::parse("http://h.example:8081/x").unwrap();
        let c = Url::parse("http://H.example:8080/y").unwrap();
        let d = Url::parse("https://h.example:8080/x").unwrap();
        assert_ne!(origin(&a), origin(&b));
        assert_eq!(origin(&a), origin(&c));
        assert_ne!(origin(&a), origin(&d));
    }
}
