//! Where a request comes from (the peer, or the client a trusted proxy forwarded for).

use crate::server::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where a request comes from, as far as the server can tell: the peer's
/// address, or for a trusted proxy the client it forwarded for; and whether
/// the browser reached the server over HTTPS (told only by a trusted proxy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    pub addr: IpAddr,
    pub https: bool,
}

impl Client {
    /// `peer` is the connection's address (`None` outside the connection loop).
    pub fn of(headers: &HeaderMap, peer: Option<IpAddr>, trusted_proxies: &[IpAddr]) -> Self {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let trusted = |ip: &IpAddr| trusted_proxies.contains(ip);
        if !trusted(&peer) {
            return Self {
                addr: peer,
                https: false,
            };
        }
        // Each proxy appends the address it got the request from: the first
        // from the right that is not a trusted proxy is the client.
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| forwarded_ip(entry.trim()))
            .collect();
        let addr = forwarded
            .iter()
            .rev()
            .find(|ip| !trusted(ip))
            .copied()
            .unwrap_or(peer);
        let https = headers
            .get_all("x-forwarded-proto")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        Self { addr, https }
    }
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1` or `[2001:db8::1]:4711`.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// Tells every request who sent it ([`Client`], as an extension), and marks
/// the session cookie `Secure` for browsers a trusted proxy says came over HTTPS.
pub async fn identify_client(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = Client::of(request.headers(), peer, &state.config.trusted_proxies);
    request.extensions_mut().insert(client);
    let mut response = next.run(request).await;
    if client.https && !state.config.secure_cookies {
        mark_cookies_secure(response.headers_mut());
    }
    response
}

fn mark_cookies_secure(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secure = cookie
            .to_str()
            .map(|c| {
                c.split(';')
                    .skip(1)
                    .any(|a| a.trim().eq_ignore_ascii_case("secure"))
            })
            .unwrap_or(true);
        let cookie = if secure {
            cookie
        } else {
            let mut bytes = cookie.as_bytes().to_vec();
            bytes.extend_from_slice(b"; Secure");
            HeaderValue::from_bytes(&bytes).unwrap_or(cookie)
        };
        headers.append(header::SET_COOKIE, cookie);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::login::tests::ip;

    #[test]
    fn forwarded_headers_count_only_from_a_trusted_proxy() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "198.51.100.1, 203.0.113.7".parse().unwrap(),
        );
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        let proxy = ip("10.0.0.1");
        assert_eq!(
            Client::of(&headers, Some(ip("10.0.0.2")), &[proxy]),
            Client {
                addr: ip("10.0.0.2"),
                https: false
            },
            "an untrusted peer's headers are ignored"
        );
        assert_eq!(
            Client::of(&headers, Some(proxy), &[proxy]),
            Client {
                addr: ip("203.0.113.7"),
                https: true
            },
            "the entry the proxy appended, not what the client claimed before it"
        );
        headers.insert("x-forwarded-for", "203.0.113.7, 10.0.0.3".parse().unwrap());
        headers.insert("x-forwarded-proto", "http".parse().unwrap());
        assert_eq!(
            Client::of(&headers, Some(proxy), &[proxy, ip("10.0.0.3")]),
            Client {
                addr: ip("203.0.113.7"),
                https: false
            },
            "a chain of trusted proxies is walked"
        );
    }

    #[test]
    fn secure_is_added_to_cookies_once() {
        let mut headers = HeaderMap::new();
        headers.append(header::SET_COOKIE, "a=1; HttpOnly".parse().unwrap());
        headers.append(header::SET_COOKIE, "b=2; Secure".parse().unwrap());
        mark_cookies_secure(&mut headers);
        let cookies: Vec<_> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(cookies, ["a=1; HttpOnly; Secure", "b=2; Secure"]);
    }
}
