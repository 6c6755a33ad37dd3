//! Local mode's second lock: the local-only routes (`POST /dev/token`, `POST /dev/pusher/reconnect`)
//! answer only a request that came from this machine, so a deployed worker whose `LOCAL_MODE` was
//! switched on by mistake still mints no tokens for the internet.
//!
//! Both must be loopback: the host the request was sent to (the URL's; in production it is the
//! worker's public hostname, which Cloudflare routes by, never `127.0.0.1`), and the client's
//! address in `CF-Connecting-IP` when present (Cloudflare always sets it to the real client's
//! address, which a client cannot choose; Miniflare and `wrangler dev` set it to the local peer).

use std::net::IpAddr;

/// Whether a request is from this machine: its URL host is a loopback name or address, and its
/// `CF-Connecting-IP` (if any) is a loopback address.
pub fn is_loopback_request(url_host: &str, connecting_ip: Option<&str>) -> bool {
    let ip_ok = match connecting_ip.map(str::trim) {
        None => true,
        Some(ip) => is_loopback_address(ip),
    };
    ip_ok && is_loopback_host(url_host)
}

/// `localhost`, `*.localhost`, `127.0.0.0/8`, `::1` (with or without brackets).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost") || is_loopback_address(&host)
}

fn is_loopback_address(ip: &str) -> bool {
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<IpAddr>().map(|a| a.is_loopback()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_requests_pass() {
        assert!(is_loopback_request("127.0.0.1", Some("127.0.0.1")));
        assert!(is_loopback_request("localhost", None));
        assert!(is_loopback_request("[::1]", Some("::1")));
        assert!(is_loopback_request("127.0.0.2", Some("127.0.0.1")));
    }

    #[test]
    fn anything_else_is_refused() {
        // A deployed worker: its own hostname, a real client address.
        assert!(!is_loopback_request("switchboard.example.workers.dev", Some("203.0.113.9")));
        // A client cannot name a loopback address in production: Cloudflare sets the header.
        assert!(!is_loopback_request("switchboard.example.workers.dev", Some("127.0.0.1")));
        // wrangler dev on 0.0.0.0, reached from the network.
        assert!(!is_loopback_request("127.0.0.1", Some("192.168.1.20")));
        assert!(!is_loopback_request("192.168.1.10", None));
        assert!(!is_loopback_request("localhost.example.com", None));
        assert!(!is_loopback_request("127.0.0.1", Some("not an ip")));
    }
}
