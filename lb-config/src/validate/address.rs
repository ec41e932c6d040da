//! Addresses as the file writes them: IPs a VIP or backend may use, listen
//! addresses, MACs.

use std::net::{IpAddr, SocketAddr};

use crate::diagnostic::Problems;
use crate::model::MacAddr;
use crate::positions::YamlPath;
use crate::rules;

/// Parses an address a VIP or backend can use: unicast, specified, and IPv4
/// written as IPv4 (the data path stores IPv4 as `::ffff:a.b.c.d`, so an
/// IPv4-mapped IPv6 address would alias it).
pub(super) fn address(text: &str, what: &str, at: &YamlPath, p: &mut Problems) -> Option<IpAddr> {
    let Ok(ip) = text.parse::<IpAddr>() else {
        p.error(at, format!("`{text}` is not an IPv4 or IPv6 address"));
        return None;
    };
    match rules::check_address(what, ip) {
        Ok(()) => Some(ip),
        Err(why) => {
            p.error(at, why);
            None
        }
    }
}

pub(super) fn socket_addr(text: &str, at: &YamlPath, p: &mut Problems) -> Option<SocketAddr> {
    let parsed = text.parse::<SocketAddr>();
    if parsed.is_err() {
        p.error(
            at,
            format!("`{text}` is not an address:port (e.g. `127.0.0.1:9100` or `[::1]:9100`)"),
        );
    }
    parsed.ok()
}

pub(super) fn mac(text: &str, at: &YamlPath, p: &mut Problems) -> Option<MacAddr> {
    let Ok(mac) = text.parse::<MacAddr>() else {
        p.error(
            at,
            format!("`{text}` is not a MAC address (e.g. `02:00:00:00:00:01`)"),
        );
        return None;
    };
    if !mac.is_unicast() || mac.0 == [0; 6] {
        p.error(at, format!("mac {mac} is not a unicast station address"));
        return None;
    }
    Some(mac)
}
