//! Reading request headers the same way from axum's `HeaderMap` and from the
//! fast path's parsed head (src/server/fast.rs), so a route and the fast path
//! share one reading of each header.

use axum::http::HeaderMap;
use std::net::Ipv6Addr;

/// The headers of a request. Names are lowercase.
pub trait Headers {
    /// Every value of `name`, in the order sent.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;

    /// The first value of `name`.
    fn value<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.values(name).next()
    }

    /// The first value of `name` as text: `Some(Err(()))` when it is not
    /// visible ASCII (as `HeaderValue::to_str` tells).
    fn text<'a>(&'a self, name: &'a str) -> Option<Result<&'a str, ()>> {
        self.value(name).map(|v| visible_ascii(v).ok_or(()))
    }
}

/// `value` as text when it is visible ASCII (tabs allowed), the rule of `HeaderValue::to_str`.
pub fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|&b| (b' '..0x7f).contains(&b) || b == b'\t')
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// Whether `If-None-Match` names `etag` (or `*`); it compares weakly: `W/"x"` matches `"x"`.
pub fn if_none_match(headers: &(impl Headers + ?Sized), etag: &str) -> bool {
    headers
        .values("if-none-match")
        .filter_map(visible_ascii)
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

impl Headers for HeaderMap {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).iter().map(|v| v.as_bytes())
    }
}

impl Headers for [httparse::Header<'_>] {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// The origin (`https://host:port`) a client called, when the request names a valid host
/// ([`valid_host`]). With `forwarded` (the peer is a trusted proxy), the nearest proxy's
/// `X-Forwarded-Host` and `X-Forwarded-Proto` come first; without it they are anyone's words
/// and ignored.
pub fn origin(headers: &(impl Headers + ?Sized), forwarded: bool) -> Option<String> {
    // Each proxy appends its entry: the last is the nearest proxy's.
    let from_proxy = |name| {
        if !forwarded {
            return None;
        }
        let last = headers.values(name).last()?;
        visible_ascii(last)?.rsplit(',').next().map(str::trim)
    };
    let host = from_proxy("x-forwarded-host")
        .filter(|host| valid_host(host))
        .or_else(|| {
            let host = headers.text("host")?.ok()?.trim();
            valid_host(host).then_some(host)
        });
    let https =
        from_proxy("x-forwarded-proto").is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let scheme = if https { "https" } else { "http" };
    Some(format!("{scheme}://{}", host?))
}

/// `host[:port]` as a URL carries it: a DNS name or IPv4 address (labels of
/// letters, digits, `-` and `_`), or an IPv6 address in brackets; a port of
/// digits. Anything else a client puts in `Host` (userinfo, a path, spaces,
/// quotes) never reaches an answer.
pub fn valid_host(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((ip, port)) => (ip.parse::<Ipv6Addr>().is_ok(), port),
            None => return false,
        },
        None => {
            let (name, port) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
            let label = |label: &str| {
                (1..=63).contains(&label.len())
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            };
            (name.len() <= 253 && name.split('.').all(label), port)
        }
    };
    let port = match port.strip_prefix(':') {
        Some(digits) => {
            (1..=5).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok()
        }
        None => port.is_empty(),
    };
    host && port
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn hosts_are_checked_before_they_make_a_url() {
        for good in [
            "graycast.example.com",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:65535",
            "[2001:db8::1]",
            "config_center",
        ] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            ":80",
            "a@b.example",
            "evil.example/phish?",
            "a b",
            "a.example:",
            "a.example:65536",
            "a.example:+80",
            "a..example",
            "[::1",
            "[nope]:80",
            "::1",
            "\"x\"",
            &"a".repeat(64),
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }

    #[test]
    fn both_kinds_read_alike() {
        let mut map = HeaderMap::new();
        map.append("x-labels", HeaderValue::from_static("a=1"));
        map.append("x-labels", HeaderValue::from_static("b=2"));
        map.append("x-bad", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap());
        let parsed = [
            httparse::Header {
                name: "X-Labels",
                value: b"a=1",
            },
            httparse::Header {
                name: "x-bad",
                value: b"caf\xc3\xa9",
            },
            httparse::Header {
                name: "x-labels",
                value: b"b=2",
            },
        ];
        check(&map);
        check(&parsed[..]);
        assert_eq!(
            HeaderValue::from_bytes(b"caf\xc3\xa9")
                .unwrap()
                .to_str()
                .ok(),
            visible_ascii(b"caf\xc3\xa9")
        );
        assert_eq!(visible_ascii(b"a\tb"), Some("a\tb"));
    }

    fn check<H: Headers + ?Sized>(headers: &H) {
        let labels: Vec<&[u8]> = headers.values("x-labels").collect();
        assert_eq!(labels, vec![b"a=1".as_slice(), b"b=2"]);
        assert_eq!(headers.text("x-labels"), Some(Ok("a=1")));
        assert_eq!(headers.text("x-bad"), Some(Err(())));
        assert_eq!(headers.text("x-none"), None);
    }
}
