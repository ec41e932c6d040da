//! Header rewriting between client and server: hop-by-hop headers are
//! removed both ways (RFC 9110 §7.6.1), with every header the Connection
//! header names (HAProxy 2.6 forwards those; lb does not: a client could
//! otherwise strip a header the server relies on, or smuggle one to it);
//! `option forwardfor` and `X-Forwarded-Proto` are added to requests.

use std::net::{IpAddr, SocketAddr};

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use lb_config::proxy::{ForwardFor, IpNet};

/// Headers that describe one hop, never forwarded (parsed once: a name
/// given as text would be parsed again on every removal).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::TRAILER,
    header::UPGRADE,
];

/// Removes the hop-by-hop headers and those the Connection header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let named: Vec<HeaderName> = crate::front::head::connection_tokens(headers)
            .filter_map(|t| HeaderName::from_bytes(t).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

/// What a frontend adds to each request, compiled once.
#[derive(Clone, Debug, Default)]
pub struct Rewrite {
    /// `option forwardfor`: the header, and the sources it is not added for.
    forwardfor: Option<(HeaderName, Vec<IpNet>)>,
    /// `X-Forwarded-Proto: http`.
    forwarded_proto: bool,
}

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

impl Rewrite {
    /// HAProxy's rule for `option forwardfor`, which both a frontend and a
    /// backend may have (every backend inherits it from `defaults`; lb's
    /// pools take `proxy.defaults`' as theirs): the header is added when
    /// either has the option, except for a source in either's `except`,
    /// under the backend's header name when it has one. An invalid header
    /// name (the configuration was checked, so this does not happen) leaves
    /// that side out.
    pub fn new(
        frontend: Option<&ForwardFor>,
        pool: Option<&ForwardFor>,
        forwarded_proto: bool,
    ) -> Rewrite {
        let name = |f: &ForwardFor| HeaderName::from_bytes(f.header.as_bytes()).ok();
        let header = pool.and_then(name).or_else(|| frontend.and_then(name));
        let except = [frontend, pool]
            .into_iter()
            .flatten()
            .filter_map(|f| f.except)
            .collect();
        Rewrite {
            forwardfor: header.map(|h| (h, except)),
            forwarded_proto,
        }
    }

    /// The value `option forwardfor` adds for clients at `peer`, None when
    /// nothing is added for them; computed once per connection.
    pub fn forwardfor_value(&self, peer: SocketAddr) -> Option<HeaderValue> {
        let (_, except) = self.forwardfor.as_ref()?;
        let ip = plain_ip(peer.ip());
        if except.iter().any(|net| net.contains(ip)) {
            return None;
        }
        HeaderValue::from_str(&ip.to_string()).ok()
    }

    /// Adds the headers to a request from a client whose forwardfor value
    /// is `xff` (see [`Rewrite::forwardfor_value`]). As HAProxy, the
    /// address is a header line of its own after the client's ones.
    pub fn apply(&self, headers: &mut HeaderMap, xff: Option<&HeaderValue>) {
        if let (Some((name, _)), Some(v)) = (&self.forwardfor, xff) {
            headers.append(name.clone(), v.clone());
        }
        if self.forwarded_proto {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn plain_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(lines: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in lines {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "x-other"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive"),
            ("trailer", "x-t"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("host", "a"),
            ("x-kept", "3"),
        ]);
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["host", "x-kept"]);
    }

    #[test]
    fn forwardfor_adds_a_line_unless_the_source_is_excepted() {
        let ff = ForwardFor {
            except: Some("127.0.0.0/8".parse().unwrap()),
            header: "X-Forwarded-For".into(),
        };
        let rw = Rewrite::new(Some(&ff), None, true);
        let excepted: SocketAddr = "127.0.0.9:5000".parse().unwrap();
        assert_eq!(rw.forwardfor_value(excepted), None);
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(
            rw.forwardfor_value(mapped),
            None,
            "v4-mapped counts as IPv4"
        );
        let client: SocketAddr = "[::ffff:192.0.2.7]:5000".parse().unwrap();
        let v = rw.forwardfor_value(client);
        assert_eq!(v.as_ref().map(|v| v.to_str().unwrap()), Some("192.0.2.7"));
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
        ]);
        rw.apply(&mut h, v.as_ref());
        let xff: Vec<&str> = h
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            xff,
            ["10.0.0.1", "192.0.2.7"],
            "a line of its own, after the client's"
        );
        assert_eq!(h["x-forwarded-proto"], "http", "replaced, not appended");
    }

    #[test]
    fn custom_header_name_and_no_options() {
        let ff = ForwardFor {
            except: None,
            header: "X-Client-IP".into(),
        };
        let rw = Rewrite::new(Some(&ff), None, false);
        let v = rw.forwardfor_value("[2001:db8::1]:1".parse().unwrap());
        let mut h = HeaderMap::new();
        rw.apply(&mut h, v.as_ref());
        assert_eq!(h["x-client-ip"], "2001:db8::1");
        assert!(!h.contains_key("x-forwarded-proto"));
        let none = Rewrite::default();
        assert_eq!(none.forwardfor_value("192.0.2.1:1".parse().unwrap()), None);
    }

    #[test]
    fn forwardfor_follows_haproxys_frontend_or_backend_rule() {
        let fwd = |except: Option<&str>, header: &str| ForwardFor {
            except: except.map(|e| e.parse().unwrap()),
            header: header.into(),
        };
        let local: SocketAddr = "127.0.0.2:1".parse().unwrap();
        let remote: SocketAddr = "192.0.2.1:1".parse().unwrap();
        // The seed's defaults (`except 127.0.0.0/8`, inherited by every
        // backend) and a frontend with its own plain `option forwardfor`:
        // either side's except skips the header.
        let defaults = fwd(Some("127.0.0.0/8"), "X-Def");
        let rw = Rewrite::new(Some(&fwd(None, "X-Fe")), Some(&defaults), false);
        assert_eq!(rw.forwardfor_value(local), None);
        let v = rw.forwardfor_value(remote);
        assert_eq!(v.as_ref().map(|v| v.to_str().unwrap()), Some("192.0.2.1"));
        // The backend's header name wins.
        let mut h = HeaderMap::new();
        rw.apply(&mut h, v.as_ref());
        assert_eq!(h.get("x-def").unwrap(), "192.0.2.1");
        assert!(h.get("x-fe").is_none());
        // Only the frontend has it: its name and its except.
        let fe_only = Rewrite::new(Some(&fwd(None, "X-Fe")), None, false);
        assert!(fe_only.forwardfor_value(local).is_some());
        // Only the backend (frontend `forwardfor: false`): still added.
        let be_only = Rewrite::new(None, Some(&defaults), false);
        assert!(be_only.forwardfor_value(remote).is_some());
    }
}
