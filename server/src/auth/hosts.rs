//! The Host names the server answers to (DNS rebinding).

use std::net::IpAddr;

/// The Host names requests may carry. A page on a DNS name that rebinds to 127.0.0.1 is
/// same-origin with itself, not with us: its requests carry its own name as Host, and
/// are refused here before any credential is looked at.
pub struct AllowedHosts {
    names: Vec<String>,
}

impl AllowedHosts {
    pub fn new(names: &[String]) -> Self {
        AllowedHosts {
            names: names
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Loopback names, IP addresses (no DNS is involved, so nothing can rebind) and the
    /// configured names are allowed, with any port.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim();
        let name = if let Some(rest) = host.strip_prefix('[') {
            rest.split(']').next().unwrap_or_default()
        } else {
            host.rsplit_once(':')
                .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
                .map_or(host, |(name, _)| name)
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        name.parse::<IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.names.contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_loopback_names_ip_addresses_or_configured_names() {
        let h = AllowedHosts::new(&["dash.example.com".into()]);
        for ok in [
            "localhost:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "192.0.2.5",
            "app.localhost",
            "dash.example.com",
            "Dash.Example.Com.:443",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "localhost.evil.example:3000",
            "dash.example.com.evil",
            "",
        ] {
            assert!(!h.allows(bad), "{bad}");
        }
    }
}
