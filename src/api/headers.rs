//! Reading request headers the same way from axum's `HeaderMap` and from the
//! fast path's parsed head (src/server/fast.rs), so a route and the fast path
//! share one reading of each header.

use axum::http::HeaderMap;

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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

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
