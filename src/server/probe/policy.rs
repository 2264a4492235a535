//! The outbound policy (docs/outbound.md): which addresses the server's own
//! fetches (guard probes, "test query now") may connect to.
//!
//! Loopback, link-local, private and other non-public addresses, the unspecified address and the
//! server's own listener are denied unless `--outbound-allow` names them (a CIDR, an address, or
//! a host name whose every address is then allowed). The check runs on the addresses a name
//! resolves to, at every new connection ([`super::Prober`]'s resolver), and before each request
//! for a URL that names an address itself (those never reach a resolver).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::OnceLock;

/// What a denied fetch says: it names the policy and nothing about the target.
pub const DENIED: &str =
    "the server's outbound policy does not allow this address (an administrator may allow it with --outbound-allow)";

/// A fetch the policy refused; found in an error's source chain by [`is_denied`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied;

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(DENIED)
    }
}

impl std::error::Error for Denied {}

/// Whether `e` or one of its causes is a [`Denied`].
pub fn is_denied(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(error) = next {
        if error.is::<Denied>() {
            return true;
        }
        next = error.source();
    }
    false
}

/// One `--outbound-allow` entry: a network (`10.0.0.0/8`, `fd00::/8`), one address (`10.1.2.3`,
/// `::1`), or a host name (`prometheus.internal`: whatever it resolves to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    Net { addr: IpAddr, prefix: u8 },
    Host(String),
}

impl FromStr for Allow {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an empty entry; give a host name, an address or a CIDR".into());
        }
        if let Some((addr, prefix)) = text.split_once('/') {
            let addr: IpAddr = addr
                .trim_matches(['[', ']'])
                .parse()
                .map_err(|_| format!("{text:?}: {addr:?} is not an IP address"))?;
            let most = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= most)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {most}"))?;
            return Ok(Allow::Net { addr, prefix });
        }
        if let Ok(addr) = text.trim_matches(['[', ']']).parse::<IpAddr>() {
            let prefix = if addr.is_ipv4() { 32 } else { 128 };
            return Ok(Allow::Net { addr, prefix });
        }
        let host = normal_host(text);
        let valid = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        if !valid || host.len() > 253 {
            return Err(format!(
                "{text:?} is neither a host name, an IP address nor a CIDR (10.0.0.0/8)"
            ));
        }
        Ok(Allow::Host(host))
    }
}

impl fmt::Display for Allow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allow::Net { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Allow::Host(host) => f.write_str(host),
        }
    }
}

impl Allow {
    fn contains(&self, ip: IpAddr) -> bool {
        let Allow::Net { addr, prefix } = self else {
            return false;
        };
        match (addr, unmapped(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                u32::from(*net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                u128::from(*net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A host name as compared: lowercase, without a trailing dot.
fn normal_host(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// An IPv4 address written as IPv6 (`::ffff:127.0.0.1`, `::127.0.0.1`) is that IPv4 address.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => match v6.segments() {
                [0, 0, 0, 0, 0, 0, hi, lo] if (hi, lo) > (0, 1) => {
                    IpAddr::V4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)))
                }
                _ => ip,
            },
        },
        v4 => v4,
    }
}

/// Why an address is not reached without being allowed; `None` for a public address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restricted {
    Loopback,
    LinkLocal,
    Unspecified,
    /// Private networks (RFC 1918, unique local, shared address space) and other addresses that
    /// are not on the public internet (documentation, benchmarking, multicast, reserved).
    Private,
}

/// What kind of address `ip` is, for the policy.
pub fn restricted(ip: IpAddr) -> Option<Restricted> {
    match unmapped(ip) {
        IpAddr::V4(ip) => restricted_v4(ip),
        IpAddr::V6(ip) => restricted_v6(ip),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<Restricted> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some(Restricted::Loopback)
    } else if ip.is_link_local() {
        Some(Restricted::LinkLocal)
    } else if a == 0 {
        // 0.0.0.0/8, "this network": 0.0.0.0 reaches the host itself.
        Some(Restricted::Unspecified)
    } else if ip.is_private()
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || ip.is_documentation()
        || (a == 198 && (18..20).contains(&b))
        || a >= 224
    {
        Some(Restricted::Private)
    } else {
        None
    }
}

fn restricted_v6(ip: Ipv6Addr) -> Option<Restricted> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some(Restricted::Loopback)
    } else if ip.is_unspecified() {
        Some(Restricted::Unspecified)
    } else if first & 0xffc0 == 0xfe80 {
        Some(Restricted::LinkLocal)
    } else if first & 0xfe00 == 0xfc00 // unique local
        || first & 0xffc0 == 0xfec0 // site-local (deprecated)
        || first & 0xff00 == 0xff00 // multicast
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || first == 0x0064 // NAT64 well-known prefix 64:ff9b::/96 and 64:ff9b:1::/48
        || first == 0
    {
        Some(Restricted::Private)
    } else {
        None
    }
}

/// The policy of one server: its `--outbound-allow` entries and its own listener.
#[derive(Debug, Default)]
pub struct Policy {
    allow: Vec<Allow>,
    /// Where the server listens: never a fetch's target, allowed or not.
    listener: OnceLock<SocketAddr>,
}

impl Policy {
    pub fn new(allow: Vec<Allow>) -> Self {
        Self {
            allow,
            listener: OnceLock::new(),
        }
    }

    /// The server listens on `addr` (known once it is bound); set once.
    pub fn listening_on(&self, addr: SocketAddr) {
        let _ = self.listener.set(addr);
    }

    /// Whether a connection to `ip` (reached by the host name `host`, if any) is allowed, on
    /// any port but the listener's ([`Policy::is_listener`]).
    pub fn admits(&self, host: Option<&str>, ip: IpAddr) -> bool {
        if let Some(host) = host {
            let host = normal_host(host);
            if self
                .allow
                .iter()
                .any(|a| matches!(a, Allow::Host(h) if *h == host))
            {
                return true;
            }
        }
        restricted(ip).is_none() || self.allow.iter().any(|a| a.contains(ip))
    }

    /// Whether `ip:port` is the server's own listener: its address, or any address of this
    /// host when it listens on all of them (`0.0.0.0`, `::`).
    pub fn is_listener(&self, ip: IpAddr, port: u16) -> bool {
        let Some(listener) = self.listener.get() else {
            return false;
        };
        if listener.port() != port {
            return false;
        }
        let ip = unmapped(ip);
        let own = unmapped(listener.ip());
        ip == own || (own.is_unspecified() && (ip.is_unspecified() || is_local(ip)))
    }

    /// The port the server listens on, once known.
    pub fn listener_port(&self) -> Option<u16> {
        self.listener.get().map(SocketAddr::port)
    }
}

/// Whether `ip` is an address of this host: binding to it succeeds only then (nothing is sent).
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn allow(entries: &[&str]) -> Policy {
        Policy::new(entries.iter().map(|e| e.parse().unwrap()).collect())
    }

    #[test]
    fn non_public_addresses_are_denied_by_default() {
        let policy = Policy::default();
        for denied in [
            "127.0.0.1",
            "127.255.0.9",
            "::1",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "169.254.169.254",
            "fe80::1",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.100.100.200",
            "fc00::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "224.0.0.1",
            "255.255.255.255",
            "ff02::1",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert!(restricted(ip(denied)).is_some(), "{denied}");
            assert!(!policy.admits(None, ip(denied)), "{denied}");
        }
        assert_eq!(restricted(ip("127.0.0.1")), Some(Restricted::Loopback));
        assert_eq!(restricted(ip("::ffff:10.1.1.1")), Some(Restricted::Private));
        assert_eq!(restricted(ip("169.254.1.1")), Some(Restricted::LinkLocal));
        assert_eq!(restricted(ip("::")), Some(Restricted::Unspecified));
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(restricted(ip(public)), None, "{public}");
            assert!(policy.admits(None, ip(public)), "{public}");
        }
    }

    #[test]
    fn allowed_networks_addresses_and_hosts_are_admitted() {
        let policy = allow(&["127.0.0.0/8", "10.1.2.3", "fd00::/8", "Prom.Internal."]);
        assert!(policy.admits(None, ip("127.0.0.1")));
        assert!(policy.admits(None, ip("::ffff:127.0.0.2")));
        assert!(policy.admits(None, ip("10.1.2.3")));
        assert!(!policy.admits(None, ip("10.1.2.4")));
        assert!(policy.admits(None, ip("fd00:ec2::254")));
        assert!(!policy.admits(None, ip("::1")));
        assert!(!policy.admits(None, ip("169.254.169.254")));
        assert!(policy.admits(Some("prom.internal"), ip("169.254.169.254")));
        assert!(policy.admits(Some("PROM.internal."), ip("10.9.9.9")));
        assert!(!policy.admits(Some("other.internal"), ip("10.9.9.9")));
        assert!(allow(&["0.0.0.0/0"]).admits(None, ip("192.168.0.1")));
        assert!(!allow(&["0.0.0.0/0"]).admits(None, ip("::1")));
    }

    #[test]
    fn allow_entries_parse_and_refuse_with_a_reason() {
        assert_eq!(
            "10.0.0.0/8".parse::<Allow>().unwrap(),
            Allow::Net {
                addr: ip("10.0.0.0"),
                prefix: 8
            }
        );
        assert_eq!("[::1]".parse::<Allow>().unwrap().to_string(), "::1/128");
        assert_eq!(
            " Prometheus.example ".parse::<Allow>().unwrap(),
            Allow::Host("prometheus.example".into())
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "x/8",
            "a b",
            "http://h",
            "h:9090",
        ] {
            assert!(bad.parse::<Allow>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_listener_is_denied_on_its_port_only() {
        let policy = allow(&["127.0.0.0/8"]);
        assert!(!policy.is_listener(ip("127.0.0.1"), 8080), "not known yet");
        policy.listening_on("127.0.0.1:8080".parse().unwrap());
        assert!(policy.is_listener(ip("127.0.0.1"), 8080));
        assert!(policy.is_listener(ip("::ffff:127.0.0.1"), 8080));
        assert!(!policy.is_listener(ip("127.0.0.1"), 9090));
        assert!(!policy.is_listener(ip("127.0.0.2"), 8080));

        let everywhere = Policy::default();
        everywhere.listening_on("0.0.0.0:8080".parse().unwrap());
        assert!(everywhere.is_listener(ip("127.0.0.1"), 8080));
        assert!(everywhere.is_listener(ip("127.0.0.9"), 8080));
        assert!(everywhere.is_listener(ip("0.0.0.0"), 8080));
        // An address of no interface here (binding to it fails; nothing is sent).
        assert!(!everywhere.is_listener(ip("192.0.2.1"), 8080));
        assert!(!everywhere.is_listener(ip("127.0.0.1"), 8081));
    }

    #[test]
    fn denials_are_found_among_causes() {
        #[derive(Debug)]
        struct Wrapper(Denied);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("dns error")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert!(is_denied(&Wrapper(Denied)));
        assert!(!is_denied(&std::io::Error::other("refused")));
    }
}
