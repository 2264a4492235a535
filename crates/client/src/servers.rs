//! The server list of a client: one URL, or the nodes of one cluster (
//! docs/nodes.md#failover-of-clients) to fail over between.

use super::ClientError;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The servers a [`super::Client`] talks to and the one it talks to now. Shared by the client's
/// clones, so a watcher, its reports and one-off requests all move together.
#[derive(Debug)]
pub(super) struct Servers {
    urls: Vec<String>,
    current: AtomicUsize,
}

impl Servers {
    pub(super) fn new(urls: Vec<String>) -> Self {
        debug_assert!(!urls.is_empty());
        Self {
            urls,
            current: AtomicUsize::new(0),
        }
    }

    pub(super) fn urls(&self) -> &[String] {
        &self.urls
    }

    pub(super) fn len(&self) -> usize {
        self.urls.len()
    }

    /// The server to use now, with its place in the list (for [`Servers::move_on`]).
    pub(super) fn current(&self) -> (usize, &str) {
        let index = self.current.load(Ordering::Acquire) % self.urls.len();
        (index, &self.urls[index])
    }

    /// After the server at `from` failed (`why`): the next one in the list becomes current,
    /// round robin. When several requests saw the same server fail, it moves only once.
    pub(super) fn move_on(&self, from: usize, why: &dyn std::fmt::Display) {
        let n = self.urls.len();
        if n < 2 {
            return;
        }
        let to = (from + 1) % n;
        if self
            .current
            .compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            tracing::warn!(
                from = %self.urls[from],
                to = %self.urls[to],
                "moving to the next server: {why}"
            );
        }
    }
}

/// Splits `--server a,b` / `GRAYCAST_SERVER` into its items, trimmed. Empty items stay, for
/// [`check_servers`] to name.
pub(super) fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(|item| item.trim().to_string())
        .collect()
}

/// Checks every server URL (see [`check_server_url`]) and that none is empty or listed twice;
/// returns them without trailing `/` and whether all are `https://`.
pub(super) fn check_servers(
    items: &[String],
    insecure: bool,
) -> Result<(Vec<String>, bool), ClientError> {
    if items.iter().all(|item| item.trim().is_empty()) {
        return Err(ClientError::Invalid(
            "no server URL given: name one, like https://graycast.example.com, or several \
             separated by commas"
                .into(),
        ));
    }
    let mut urls: Vec<String> = Vec::with_capacity(items.len());
    let mut seen: Vec<String> = Vec::with_capacity(items.len());
    let mut all_https = true;
    for (i, item) in items.iter().enumerate() {
        let base = item.trim().trim_end_matches('/').to_string();
        if base.is_empty() {
            return Err(ClientError::Invalid(format!(
                "server list item {} of {} is empty: separate the URLs with single commas, \
                 like https://a.example.com,https://b.example.com",
                i + 1,
                items.len()
            )));
        }
        all_https &= check_server_url(&base, insecure)?;
        // Compared as parsed (`http://LOCALHOST:80/` is `http://localhost`).
        let normalized = reqwest::Url::parse(&base)
            .map(|url| url.as_str().trim_end_matches('/').to_string())
            .unwrap_or_else(|_| base.clone());
        if let Some(first) = seen.iter().position(|s| *s == normalized) {
            return Err(ClientError::Invalid(format!(
                "server URL {base:?} is listed twice (items {} and {}): list each server once",
                first + 1,
                i + 1
            )));
        }
        seen.push(normalized);
        urls.push(base);
    }
    Ok((urls, all_https))
}

/// `Ok(true)` for an `https://` URL, `Ok(false)` for an `http://` one that may be used: on
/// loopback, or anywhere when `insecure`.
pub(super) fn check_server_url(base: &str, insecure: bool) -> Result<bool, ClientError> {
    let url = reqwest::Url::parse(base).map_err(|e| {
        ClientError::Invalid(format!(
            "server URL {base:?} is not a URL ({e}); write it like https://graycast.example.com"
        ))
    })?;
    match url.scheme() {
        "https" => return Ok(true),
        "http" => {}
        _ => {
            return Err(ClientError::Invalid(format!(
                "server URL {base:?} must start with https:// (or http:// for a server on \
                 loopback)"
            )))
        }
    }
    // The URL parser has lowercased names and normalised addresses (`127.1` → `127.0.0.1`).
    let host = url.host_str().unwrap_or_default();
    let loopback = match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|ip| ip.is_loopback())
        }
        Err(_) => host == "localhost",
    };
    if loopback || insecure {
        return Ok(false);
    }
    Err(ClientError::Invalid(format!(
        "refusing plain http:// to {host}, which is not on loopback: the token and configs \
         would cross the network unencrypted. Use https:// (add the server's CA with --ca-cert \
         FILE if it is private), or allow plain HTTP on a trusted network with --insecure \
         (SDK: Client::builder(…).insecure(true))"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(text: &str, insecure: bool) -> Result<(Vec<String>, bool), String> {
        check_servers(&split_list(text), insecure).map_err(|e| e.to_string())
    }

    #[test]
    fn plain_http_only_on_loopback_unless_insecure() {
        for base in [
            "http://127.0.0.1:8080",
            "http://127.3.2.1",
            "http://localhost:1",
            "http://LOCALHOST",
            "http://[::1]:8080",
            "http://[::ffff:127.0.0.1]:8080",
        ] {
            assert!(!check_server_url(base, false).unwrap(), "{base}");
        }
        for base in [
            "http://graycast.example.com",
            "http://10.0.0.7:8080",
            "http://[2001:db8::1]",
            "http://localhost.example.com",
            "http://0.0.0.0:8080",
        ] {
            let refused = check_server_url(base, false).unwrap_err().to_string();
            assert!(refused.contains("--insecure"), "{base}: {refused}");
            assert!(!check_server_url(base, true).unwrap(), "{base}");
        }
        assert!(check_server_url("https://graycast.example.com", false).unwrap());
        assert!(check_server_url("ftp://graycast.example.com", true).is_err());
        assert!(check_server_url("graycast.example.com:8080", true).is_err());
    }

    #[test]
    fn a_comma_list_is_trimmed_and_keeps_its_order() {
        assert_eq!(
            servers(
                " https://a.example.com/ ,https://b.example.com,\thttp://127.0.0.1:9",
                false
            )
            .unwrap(),
            (
                vec![
                    "https://a.example.com".to_string(),
                    "https://b.example.com".to_string(),
                    "http://127.0.0.1:9".to_string(),
                ],
                false
            )
        );
        assert_eq!(
            servers("https://a.example.com", false).unwrap(),
            (vec!["https://a.example.com".to_string()], true)
        );
        assert!(
            servers("https://a.example.com,https://b.example.com", false)
                .unwrap()
                .1
        );
    }

    #[test]
    fn empty_items_and_empty_lists_are_refused() {
        for (text, item) in [
            (
                "https://a.example.com,,https://b.example.com",
                "item 2 of 3",
            ),
            ("https://a.example.com,", "item 2 of 2"),
            (",https://a.example.com", "item 1 of 2"),
            (
                "https://a.example.com, ,https://b.example.com",
                "item 2 of 3",
            ),
        ] {
            let refused = servers(text, false).unwrap_err();
            assert!(
                refused.contains(item) && refused.contains("single commas"),
                "{text}: {refused}"
            );
        }
        for text in ["", " ", ",", " , "] {
            let refused = servers(text, false).unwrap_err();
            assert!(
                refused.contains("no server URL given"),
                "{text:?}: {refused}"
            );
        }
    }

    #[test]
    fn duplicates_are_refused_also_when_spelled_differently() {
        for text in [
            "https://a.example.com,https://a.example.com",
            "https://a.example.com,https://A.example.com/",
            "http://localhost:80,http://LOCALHOST",
            "http://127.0.0.1:1,https://b.example.com,http://127.0.0.1:1/",
        ] {
            let refused = servers(text, false).unwrap_err();
            assert!(refused.contains("listed twice"), "{text}: {refused}");
        }
        let refused = servers(
            "https://a.example.com,https://b.example.com,https://a.example.com",
            false,
        )
        .unwrap_err();
        assert!(refused.contains("items 1 and 3"), "{refused}");
        assert!(servers("http://127.0.0.1:1,http://127.0.0.1:2", false).is_ok());
    }

    #[test]
    fn each_item_is_checked_like_a_single_url() {
        let refused = servers("https://a.example.com,http://10.0.0.7:8080", false).unwrap_err();
        assert!(
            refused.contains("refusing plain http:// to 10.0.0.7")
                && refused.contains("--insecure"),
            "{refused}"
        );
        assert!(servers("https://a.example.com,http://10.0.0.7:8080", true).is_ok());
        let refused = servers("https://a.example.com,b.example.com:8080", false).unwrap_err();
        assert!(refused.contains("\"b.example.com:8080\""), "{refused}");
        let refused = servers("https://a.example.com,ftp://b.example.com", false).unwrap_err();
        assert!(refused.contains("must start with https://"), "{refused}");
    }

    #[test]
    fn moving_on_goes_round_robin_and_only_once_per_failure() {
        let servers = Servers::new(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(servers.current(), (0, "a"));
        servers.move_on(0, &"refused");
        assert_eq!(servers.current(), (1, "b"));
        // A second request that saw "a" fail does not skip "b".
        servers.move_on(0, &"refused");
        assert_eq!(servers.current(), (1, "b"));
        servers.move_on(1, &"reset");
        servers.move_on(2, &"503");
        assert_eq!(servers.current(), (0, "a"));
        let one = Servers::new(vec!["a".into()]);
        one.move_on(0, &"refused");
        assert_eq!(one.current(), (0, "a"));
    }
}
