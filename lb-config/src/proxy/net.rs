//! Addresses in the proxy's configuration: where a frontend listens
//! ([`Bind`], HAProxy's `bind` forms) and the client networks ACLs and
//! `forwardfor` test ([`IpNet`]).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// A listening address: `*:80` or `:80` (every IPv4 address), `[::]:80`
/// (every IPv6 address), `ADDR:PORT`, `[ADDR6]:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Bind {
    pub addr: SocketAddr,
    /// True for every IPv6 bind: `[::]:PORT` takes IPv6 only (so `*:PORT`
    /// can be bound beside it), as HAProxy's `v6only`; an address written
    /// as IPv4-mapped is refused.
    pub v6only: bool,
}

impl Bind {
    /// Whether it listens on every address of its family.
    pub fn is_wildcard(&self) -> bool {
        self.addr.ip().is_unspecified()
    }

    /// Whether both would take a connection to the same address and port
    /// (equal, or one is the wildcard of the other's family and port).
    pub fn overlaps(&self, other: SocketAddr) -> bool {
        let other_v4 = match other.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
            IpAddr::V4(_) => true,
        };
        self.addr.port() == other.port()
            && self.addr.is_ipv4() == other_v4
            && (self.addr == other || self.is_wildcard() || other.ip().is_unspecified())
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr.ip() {
            IpAddr::V4(a) if a.is_unspecified() => write!(f, "*:{}", self.addr.port()),
            _ => write!(f, "{}", self.addr),
        }
    }
}

impl FromStr for Bind {
    type Err = String;

    /// `*:80`, `:80`, `0.0.0.0:80`, `[::]:80`, `192.0.2.1:80`,
    /// `[2001:db8::1]:80`; the error says which part is wrong.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.contains(',') {
            return Err(format!(
                "`{s}`: one address per entry; write a list (`bind: [\"*:80\", \"[::]:80\"]`)"
            ));
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(format!("`{s}` has no port (e.g. `*:80`)"));
        };
        let port = bind_port(port)?;
        let (ip, v6only): (IpAddr, bool) = match host {
            "" | "*" => (Ipv4Addr::UNSPECIFIED.into(), false),
            _ => match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                Some(v6) => match v6.parse::<Ipv6Addr>() {
                    Ok(a) => (a.into(), true),
                    Err(_) => return Err(format!("`{v6}` is not an IPv6 address")),
                },
                None => (bind_v4(host)?, false),
            },
        };
        check_bind_ip(ip)?;
        Ok(Bind {
            addr: SocketAddr::new(ip, port),
            v6only,
        })
    }
}

fn bind_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ if port.contains('-') => Err(format!(
            "port `{port}`: port ranges are not supported; list each address:port"
        )),
        _ => Err(format!("port `{port}` is not in 1..=65535")),
    }
}

fn bind_v4(host: &str) -> Result<IpAddr, String> {
    if let Ok(a) = host.parse::<Ipv4Addr>() {
        return Ok(a.into());
    }
    if host.parse::<Ipv6Addr>().is_ok() {
        return Err(format!(
            "write an IPv6 address in brackets: `[{host}]:PORT`"
        ));
    }
    Err(format!(
        "`{host}` is not an IP address (host names are not resolved; `*` is every IPv4 address)"
    ))
}

fn check_bind_ip(ip: IpAddr) -> Result<(), String> {
    let why = match ip {
        IpAddr::V4(a) if a.is_broadcast() => "the broadcast address",
        IpAddr::V4(a) if a.is_multicast() => "a multicast address",
        IpAddr::V6(a) if a.is_multicast() => "a multicast address",
        IpAddr::V6(a) if a.to_ipv4_mapped().is_some() => {
            return Err(format!(
                "`{ip}` is IPv4-mapped; write the IPv4 address (`{}:PORT`)",
                a.to_ipv4_mapped()
                    .map(|v4| v4.to_string())
                    .unwrap_or_default()
            ));
        }
        _ => return Ok(()),
    };
    Err(format!("cannot listen on {ip}: {why}"))
}

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Whether `ip` is inside; an IPv4-mapped IPv6 address counts as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                let mask = self.mask();
                bits(self.addr) & mask == bits(ip) & mask
            }
            _ => false,
        }
    }

    /// The network of `prefix` bits holding `addr` (host bits cleared);
    /// `None` if `prefix` is too long for the family.
    pub fn truncate(addr: IpAddr, prefix: u8) -> Option<IpNet> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return None;
        }
        let kept = bits(addr) & IpNet { addr, prefix }.mask();
        let addr = match addr {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(kept).ok()?)),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(kept)),
        };
        Some(IpNet { addr, prefix })
    }

    /// The network mask, right-aligned in the address family's width.
    fn mask(&self) -> u128 {
        let width: u32 = if self.addr.is_ipv4() { 32 } else { 128 };
        let ones = u128::MAX >> (128 - width);
        ones & !ones.checked_shr(u32::from(self.prefix)).unwrap_or(0)
    }
}

/// An address as an integer (IPv4 in the low 32 bits).
fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for IpNet {
    type Err = String;

    /// `ADDR/PREFIX` or `ADDR` (a host); host bits must be zero, IPv4 is
    /// written as IPv4.
    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`/{p}`: the prefix length is 0..={max}"))?,
        };
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            // `contains` compares mapped clients as IPv4: such a network
            // would never match.
            return Err(format!("`{s}` is IPv4-mapped; write it as IPv4 ({v4})"));
        }
        let net = IpNet { addr, prefix };
        if bits(addr) & !net.mask() != 0 {
            let fixed = IpNet::truncate(addr, prefix).unwrap_or(net);
            return Err(format!(
                "`{s}` has bits set past /{prefix}: write {fixed} (HAProxy clears them silently)"
            ));
        }
        Ok(net)
    }
}

impl Serialize for IpNet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}
