//! The `http` job kind: one HTTP request per run, with the server-side request forgery
//! guard of RELIABILITY 26. Every address a request would reach — the URL's host, each
//! DNS answer, each redirect hop — is checked, and the connection is pinned to the
//! checked address so a DNS answer that changes between check and connect cannot slip
//! through. Loopback, private, link-local, CGNAT, unspecified, multicast and IPv4-mapped
//! forms of those are refused unless the operator allowed the host (`--http-allow`).
//!
//! Params: `url`, `method` (GET), `headers` (object), `body` (string or JSON),
//! `expected_status` (a number; default any 2xx). The response body is kept up to 1 MiB;
//! secret-looking headers are masked in the stored output.

use crate::kinds::{JobContext, JobFailure, JobResult};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub const KIND: &str = "http";
/// Most response bytes kept.
pub const MAX_BODY: usize = 1024 * 1024;
const MAX_REDIRECTS: usize = 5;

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

fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "secret",
        "password",
        "api-key",
        "apikey",
        "x-api-key",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// Headers as stored in the run's output: secret-looking values masked.
pub fn masked(headers: &serde_json::Map<String, Value>) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    if secret_header(k) {
                        json!("***")
                    } else {
                        v.clone()
                    },
                )
            })
            .collect(),
    )
}

/// Resolves `url`'s host and checks every answer; returns the address to pin.
async fn checked_address(engine: &crate::Engine, url: &reqwest::Url) -> Result<SocketAddr, String> {
    let allow = &engine.config().http_allow;
    let host = url.host_str().ok_or_else(|| format!("{url} has no host"))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{url} has no port"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = engine
        .resolve(bare, port)
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?;
    let first = *addrs
        .first()
        .ok_or_else(|| format!("{host} resolves to no address"))?;
    let allowed = allow.iter().any(|a| a.eq_ignore_ascii_case(bare));
    for a in &addrs {
        let ip = a.ip();
        if !allowed && !allow.iter().any(|x| x.parse::<IpAddr>().ok() == Some(ip)) {
            if let Some(why) = forbidden(ip) {
                return Err(format!("{host} resolves to {ip}, a {why} address; HTTP jobs may not reach it unless the server allows the host (--http-allow)"));
            }
        }
    }
    Ok(first)
}

pub async fn run(ctx: JobContext) -> JobResult {
    let p = &ctx.job.params;
    let fail = |m: String| JobFailure::new(m);
    let mut url = reqwest::Url::parse(
        p.get("url")
            .and_then(|v| v.as_str())
            .ok_or_else(|| fail("params.url is required".into()))?,
    )
    .map_err(|e| fail(format!("params.url: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(fail(format!(
            "params.url: scheme {} is not http or https",
            url.scheme()
        )));
    }
    let mut method = reqwest::Method::from_bytes(
        p.get("method")
            .and_then(|v| v.as_str())
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .as_bytes(),
    )
    .map_err(|_| fail("params.method is not an HTTP method".into()))?;
    let headers = p
        .get("headers")
        .and_then(|v| v.as_object())
        .cloned()
        .unwrap_or_default();
    let mut body: Option<String> = match p.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let mut hops = Vec::new();
    let response = loop {
        let addr = checked_address(&ctx.engine, &url).await.map_err(fail)?;
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, addr)
            .timeout(Duration::from_secs(ctx.job.timeout_secs))
            .build()
            .map_err(|e| fail(format!("cannot build an HTTP client: {e}")))?;
        let mut req = client.request(method.clone(), url.clone());
        for (k, v) in &headers {
            req = req.header(
                k.as_str(),
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
        if let Some(b) = &body {
            req = req.body(b.clone());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| fail(format!("request to {url} failed: {e}")))?;
        if resp.status().is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| fail(format!("{url} redirected without a Location")))?;
            if hops.len() == MAX_REDIRECTS {
                return Err(fail(format!("more than {MAX_REDIRECTS} redirects")));
            }
            let next = url
                .join(location)
                .map_err(|e| fail(format!("bad redirect {location:?}: {e}")))?;
            if !matches!(resp.status().as_u16(), 307 | 308) {
                method = reqwest::Method::GET;
                body = None;
            }
            hops.push(next.to_string());
            url = next;
            continue;
        }
        break resp;
    };
    let status = response.status().as_u16();
    let mut stream = response;
    let mut bytes = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = stream
        .chunk()
        .await
        .map_err(|e| fail(format!("reading the response failed: {e}")))?
    {
        let room = MAX_BODY - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        bytes.extend_from_slice(&chunk);
    }
    let out = json!({
        "url": url.as_str(),
        "redirects": hops,
        "status": status,
        "request_headers": masked(&headers),
        "body": String::from_utf8_lossy(&bytes),
        "body_bytes": bytes.len(),
        "truncated": truncated,
    });
    let ok = match p.get("expected_status").and_then(|v| v.as_u64()) {
        Some(want) => u64::from(status) == want,
        None => (200..300).contains(&status),
    };
    if ok {
        Ok(out)
    } else {
        Err(JobFailure {
            message: format!(
                "{url} answered {status}, expected {}",
                p.get("expected_status")
                    .map_or("2xx".to_string(), |v| v.to_string())
            ),
            output: Some(out),
        })
    }
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
    fn secret_headers_are_masked() {
        let h = serde_json::json!({ "Authorization": "Bearer x", "X-Api-Key": "k", "Accept": "text/plain" });
        let m = masked(h.as_object().unwrap());
        assert_eq!(
            m,
            serde_json::json!({ "Authorization": "***", "X-Api-Key": "***", "Accept": "text/plain" })
        );
    }
}
