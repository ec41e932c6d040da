//! What the hash balances hash, and how, exactly as HAProxy 2.6 does
//! (backend.c `get_server_sh`/`uh`/`ph`/`hh`, hash.c, `full_hash`), so
//! that a request lands on the server HAProxy would pick from the same
//! server list and weights.

use std::net::IpAddr;

use hyper::http::request::Parts;
use hyper::http::{HeaderName, Uri};
use lb_config::proxy::HashType;

/// A byte-string hash function of HAProxy's `hash-type … <function>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashFunction {
    /// HAProxy's default: `h = c + (h << 6) + (h << 16) - h`.
    Sdbm,
    Djb2,
    Wt6,
    Crc32,
}

/// A hash function and whether HAProxy's `avalanche` modifier is applied
/// to its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hasher {
    pub function: HashFunction,
    pub avalanche: bool,
}

impl Hasher {
    /// HAProxy 2.6's defaults: `map-based` is sdbm alone, `consistent` is
    /// sdbm with avalanche (cfgparse-listen.c, `hash-type` without a function).
    pub fn for_type(hash_type: HashType) -> Hasher {
        Hasher {
            function: HashFunction::Sdbm,
            avalanche: hash_type == HashType::Consistent,
        }
    }

    /// The hash of the concatenation of `parts`.
    pub fn hash(self, parts: &[&[u8]]) -> u32 {
        let bytes = parts.iter().flat_map(|p| p.iter().copied());
        let h = match self.function {
            HashFunction::Sdbm => bytes.fold(0u32, |h, c| {
                u32::from(c)
                    .wrapping_add(h << 6)
                    .wrapping_add(h << 16)
                    .wrapping_sub(h)
            }),
            HashFunction::Djb2 => bytes.fold(5381u32, |h, c| {
                (h << 5).wrapping_add(h).wrapping_add(u32::from(c))
            }),
            HashFunction::Wt6 => wt6(bytes),
            HashFunction::Crc32 => !bytes.fold(!0u32, crc32_step),
        };
        self.finish(h)
    }

    /// `balance source`: the address's 32-bit words XORed (IPv4 is one
    /// word), as HAProxy does before the optional avalanche. An IPv4-mapped
    /// IPv6 address counts as the IPv4 address.
    pub fn hash_addr(self, ip: IpAddr) -> u32 {
        let h = match ip {
            IpAddr::V4(v4) => u32::from(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => u32::from(v4),
                None => {
                    let b = v6.octets();
                    b.chunks_exact(4)
                        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                        .fold(0, |h, w| h ^ w)
                }
            },
        };
        self.finish(h)
    }

    fn finish(self, h: u32) -> u32 {
        if self.avalanche { full_hash(h) } else { h }
    }
}

/// Bob Jenkins' 32-bit integer hash with HAProxy's final multiplication
/// (`full_hash`): the avalanche modifier, and the hash that places servers'
/// points on the consistent ring.
pub fn full_hash(a: u32) -> u32 {
    let a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    let a = (a ^ 0xc761_c23c) ^ (a >> 19);
    let a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    let a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    let a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    let a = (a ^ 0xb55a_4f09) ^ (a >> 16);
    a.wrapping_mul(3_221_225_473)
}

fn crc32_step(mut h: u32, c: u8) -> u32 {
    h ^= u32::from(c);
    for _ in 0..8 {
        h = (h >> 1) ^ if h & 1 != 0 { 0xedb8_8320 } else { 0 };
    }
    h
}

/// Willy Tarreau's wt6 (hash.c).
fn wt6(bytes: impl Iterator<Item = u8>) -> u32 {
    let (mut h0, mut h1) = (0xa53c_965a_u32, 0x5ca6_953a_u32);
    let (mut step0, mut step1) = (6u32, 18u32);
    for c in bytes {
        let t = u32::from(c);
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        let t = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = t;
        let t = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = t & 0x1f;
        step1 = t >> 11;
    }
    h0 ^ h1
}

/// What a balance reads from a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Nothing: round robin, static round robin, leastconn.
    None,
    /// The client's address (`balance source`).
    Source,
    /// The request target up to `?` (`balance uri`).
    Uri,
    /// A query parameter's value (`balance url_param NAME`).
    UrlParam(Box<str>),
    /// A header's value (`balance hdr(NAME)`).
    Header(HeaderName),
}

/// What a request gives the balance to hash; [`HashKey::Absent`] makes a
/// hash balance fall back to its round robin, as HAProxy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashKey<'a> {
    /// Not a hash balance, or the value is missing (no such parameter or
    /// header, an empty header, a TCP connection for an HTTP hash).
    Absent,
    Source(IpAddr),
    /// The request target as sent, up to `?`: for an absolute-form target
    /// (`GET http://host/p`), scheme, `://`, authority and path.
    Uri(&'a Uri),
    /// A parameter's or header's value.
    Value(&'a [u8]),
}

impl<'a> HashKey<'a> {
    /// The hash under `hasher`, or None when absent.
    pub fn hash(&self, hasher: Hasher) -> Option<u32> {
        match *self {
            HashKey::Absent => None,
            HashKey::Source(ip) => Some(hasher.hash_addr(ip)),
            HashKey::Value(v) => Some(hasher.hash(&[v])),
            HashKey::Uri(uri) => Some(match (uri.scheme_str(), uri.authority()) {
                (Some(scheme), Some(auth)) => hasher.hash(&[
                    scheme.as_bytes(),
                    b"://",
                    auth.as_str().as_bytes(),
                    uri.path().as_bytes(),
                ]),
                (None, Some(auth)) => hasher.hash(&[auth.as_str().as_bytes()]),
                _ => hasher.hash(&[uri.path().as_bytes()]),
            }),
        }
    }
}

impl Input {
    /// The key for a request (`head`, None for a TCP connection) from `client`.
    pub fn key<'a>(&'a self, client: IpAddr, head: Option<&'a Parts>) -> HashKey<'a> {
        match (self, head) {
            (Input::None, _) => HashKey::Absent,
            (Input::Source, _) => HashKey::Source(client),
            (_, None) => HashKey::Absent,
            (Input::Uri, Some(h)) => HashKey::Uri(&h.uri),
            (Input::UrlParam(name), Some(h)) => h
                .uri
                .query()
                .and_then(|q| balance_param(q.as_bytes(), name.as_bytes()))
                .map_or(HashKey::Absent, HashKey::Value),
            (Input::Header(name), Some(h)) => h
                .headers
                .get(name)
                .map(|v| first_value(v.as_bytes()))
                .filter(|v| !v.is_empty())
                .map_or(HashKey::Absent, HashKey::Value),
        }
    }
}

/// `balance url_param`'s lookup (HAProxy's `get_server_ph`): parameters
/// split on `&` only, the first one named exactly `name` followed by `=`;
/// its value runs to the next `&`. (ACLs' `url_param` splits on `;` too.)
pub fn balance_param<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query
        .split(|&c| c == b'&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix(b"="))
}

/// The first comma-separated value of a header line, blanks trimmed, a
/// comma inside double quotes not ending it (HAProxy's `http_find_header`).
pub fn first_value(line: &[u8]) -> &[u8] {
    let line = trim(line);
    trim(&line[..value_end(line)])
}

/// Where a header value ends: the first comma outside double quotes, or the end.
pub(crate) fn value_end(s: &[u8]) -> usize {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &c) in s.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted {
            escaped = c == b'\\';
            quoted = c != b'"';
        } else if c == b'"' {
            quoted = true;
        } else if c == b',' {
            return i;
        }
    }
    s.len()
}

/// Without leading and trailing spaces and tabs.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let is_blank = |c: &u8| *c == b' ' || *c == b'\t';
    let start = s.iter().position(|c| !is_blank(c)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !is_blank(c))
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests;
