//! `source`: the address the proxy's connections to servers come from
//! (HAProxy's backend `source ADDR[:PORT] [usesrc …]`): a local address to
//! bind to, or — full transparent proxying — a foreign one the kernel lets
//! the proxy use (`usesrc clientip`: the client's own address).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// `ADDR[:PORT] [usesrc clientip|client|ADDR2[:PORT2]]`, as HAProxy writes
/// it; serialized the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    /// Bound to before connecting when there is no `usesrc` (port 0: any
    /// free port). `0.0.0.0` with port 0 binds nothing: the kernel picks,
    /// as without `source`. With `usesrc`, HAProxy's health checks use it;
    /// lb's checks do not (they have their own settings).
    pub addr: SocketAddr,
    /// Present a foreign address to the servers instead.
    pub usesrc: Option<UseSrc>,
}

/// What `usesrc` presents to the servers: an address that need not be the
/// proxy host's own, bound with `IP_TRANSPARENT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UseSrc {
    /// `clientip`: the client's address, a free port.
    ClientIp,
    /// `client`: the client's address and port.
    Client,
    /// `ADDR2[:PORT2]`: this address (port 0: a free one).
    Addr(SocketAddr),
}

impl Source {
    /// Whether connecting needs `IP_TRANSPARENT` (and so `CAP_NET_RAW`).
    pub fn is_transparent(&self) -> bool {
        self.usesrc.is_some()
    }

    /// Whether it binds to nothing at all (`0.0.0.0` or `::`, port 0, no
    /// `usesrc`): connections go out as if it were absent.
    pub fn is_noop(&self) -> bool {
        self.usesrc.is_none() && self.addr.ip().is_unspecified() && self.addr.port() == 0
    }

    /// The fixed address it binds to, if any (not the client's): the
    /// server must be of its family.
    pub fn fixed_ip(&self) -> Option<IpAddr> {
        match self.usesrc {
            Some(UseSrc::Addr(a)) => Some(a.ip()),
            Some(_) => None,
            None if self.is_noop() => None,
            None => Some(self.addr.ip()).filter(|ip| !ip.is_unspecified()),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_addr(f, self.addr)?;
        match self.usesrc {
            None => Ok(()),
            Some(UseSrc::ClientIp) => f.write_str(" usesrc clientip"),
            Some(UseSrc::Client) => f.write_str(" usesrc client"),
            Some(UseSrc::Addr(a)) => {
                f.write_str(" usesrc ")?;
                write_addr(f, a)
            }
        }
    }
}

/// `ADDR` when the port is 0, else `ADDR:PORT` (`[V6]:PORT`).
fn write_addr(f: &mut fmt::Formatter<'_>, a: SocketAddr) -> fmt::Result {
    match (a.port(), a.ip()) {
        (0, ip) => write!(f, "{ip}"),
        _ => write!(f, "{a}"),
    }
}

impl FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let (addr, rest) = match words.split_first() {
            Some((a, rest)) => (address(a)?, rest),
            None => return Err("an address is required (e.g. `192.0.2.1`)".to_owned()),
        };
        let usesrc = match rest {
            [] => None,
            ["usesrc", what] => Some(usesrc(what)?),
            ["usesrc"] => {
                return Err(format!(
                    "`{s}`: `usesrc` needs clientip, client or an address"
                ));
            }
            ["interface", ..] => {
                return Err(
                    "`interface` is not supported: lb binds by address; use the interface's address"
                        .to_owned(),
                );
            }
            [word, ..] => {
                return Err(format!(
                    "`{word}`: expected `usesrc clientip`, `usesrc client` or `usesrc ADDR[:PORT]` after the address"
                ));
            }
        };
        Ok(Source { addr, usesrc })
    }
}

fn usesrc(what: &str) -> Result<UseSrc, String> {
    match what {
        "clientip" => Ok(UseSrc::ClientIp),
        "client" => Ok(UseSrc::Client),
        w if w.starts_with("hdr_ip(") => Err(format!(
            "`usesrc {w}` is not supported: lb presents the client's address (`clientip`, `client`) or a fixed one"
        )),
        w => address(w).map(UseSrc::Addr),
    }
}

/// `ADDR`, `ADDR:PORT`, `V6`, `[V6]`, `[V6]:PORT`; no host names, no port
/// ranges, no multicast or broadcast.
fn address(text: &str) -> Result<SocketAddr, String> {
    let bare = |ip: &str| {
        ip.parse::<IpAddr>()
            .map_err(|_| format!("`{ip}` is not an IP address (host names are not resolved)"))
    };
    let addr = if let Ok(v6) = text.parse::<Ipv6Addr>() {
        SocketAddr::new(v6.into(), 0)
    } else if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        SocketAddr::new(bare(inner)?, 0)
    } else {
        match text.rsplit_once(':') {
            None => SocketAddr::new(bare(text)?, 0),
            Some((host, port)) => {
                let host = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                SocketAddr::new(bare(host)?, source_port(port)?)
            }
        }
    };
    let ip = addr.ip();
    let why = match ip {
        IpAddr::V4(a) if a.is_broadcast() => Some("the broadcast address"),
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => Some("IPv4-mapped: write it as IPv4"),
        _ if ip.is_multicast() => Some("a multicast address"),
        _ => None,
    };
    match why {
        Some(why) => Err(format!("cannot connect from {ip}: {why}")),
        None => Ok(addr),
    }
}

fn source_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) => Ok(p),
        _ if port.contains('-') => Err(format!(
            "port `{port}`: port ranges are not supported; give one port, or none (any free port)"
        )),
        _ => Err(format!("port `{port}` is not in 0..=65535")),
    }
}

impl Serialize for Source {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> Source {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn haproxy_forms_parse_and_print_back() {
        for text in [
            "192.0.2.1",
            "192.0.2.1:2000",
            "0.0.0.0 usesrc clientip",
            "0.0.0.0 usesrc client",
            "0.0.0.0 usesrc 198.51.100.7",
            "0.0.0.0 usesrc 198.51.100.7:3000",
            "2001:db8::1",
            "[2001:db8::1]:2000",
            ":: usesrc clientip",
        ] {
            assert_eq!(parsed(text).to_string(), text);
        }
        assert_eq!(parsed("[2001:db8::1]"), parsed("2001:db8::1"));
    }

    #[test]
    fn what_each_form_binds() {
        assert!(parsed("0.0.0.0").is_noop());
        assert!(!parsed("0.0.0.0:2000").is_noop());
        let clientip = parsed("0.0.0.0 usesrc clientip");
        assert!(clientip.is_transparent() && !clientip.is_noop());
        assert_eq!(clientip.fixed_ip(), None);
        assert_eq!(
            parsed("192.0.2.1").fixed_ip(),
            Some("192.0.2.1".parse().expect("an address"))
        );
        assert_eq!(
            parsed("0.0.0.0 usesrc [2001:db8::7]:80").fixed_ip(),
            Some("2001:db8::7".parse().expect("an address"))
        );
    }

    #[test]
    fn what_lb_cannot_do_is_refused_with_the_reason() {
        for (text, says) in [
            ("", "an address is required"),
            ("www.example.com", "host names are not resolved"),
            ("192.0.2.1:1024-2048", "port ranges are not supported"),
            ("192.0.2.1:70000", "not in 0..=65535"),
            ("0.0.0.0 usesrc", "needs clientip"),
            ("0.0.0.0 usesrc hdr_ip(x-forwarded-for)", "not supported"),
            ("0.0.0.0 interface eth0", "`interface` is not supported"),
            ("0.0.0.0 clientip", "expected `usesrc clientip`"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("::ffff:192.0.2.1", "IPv4-mapped"),
        ] {
            let err = text.parse::<Source>().expect_err(text);
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
