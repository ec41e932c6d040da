//! Receive validation: every MUST of RFC 5798 §7.1 and RFC 3768 §7.1, in
//! the order they list them, and the checks keepalived adds. A packet that
//! fails is counted under its [`Reason`] and never reaches the state
//! machine. An address list that differs from ours is logged and counted,
//! as keepalived does, but obeyed (the RFCs make that check a MAY).

use std::net::IpAddr;

use super::codec::{AUTH_PASS, Advert, DecodeError};

/// Why a packet was refused (or, for the address list, only noted): the
/// `reason` label of `lb_vrrp_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Ttl,
    Version,
    Type,
    Length,
    Checksum,
    Vrid,
    AuthType,
    AuthPassword,
    Interval,
    AddressCount,
    AddressList,
    OwnAddress,
    NotPeer,
    Transport,
}

impl Reason {
    pub const ALL: [Reason; 14] = [
        Reason::Ttl,
        Reason::Version,
        Reason::Type,
        Reason::Length,
        Reason::Checksum,
        Reason::Vrid,
        Reason::AuthType,
        Reason::AuthPassword,
        Reason::Interval,
        Reason::AddressCount,
        Reason::AddressList,
        Reason::OwnAddress,
        Reason::NotPeer,
        Reason::Transport,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Ttl => "ttl",
            Reason::Version => "version",
            Reason::Type => "type",
            Reason::Length => "length",
            Reason::Checksum => "checksum",
            Reason::Vrid => "vrid",
            Reason::AuthType => "auth_type",
            Reason::AuthPassword => "auth_password",
            Reason::Interval => "interval",
            Reason::AddressCount => "address_count",
            Reason::AddressList => "address_list",
            Reason::OwnAddress => "own_address",
            Reason::NotPeer => "not_peer",
            Reason::Transport => "transport",
        }
    }
}

/// What an instance expects of its peers' adverts.
#[derive(Clone, Debug)]
pub struct Expect {
    pub version: u8,
    pub vrid: u8,
    /// VRIDs other instances on this interface and family serve: their
    /// packets are theirs, not errors.
    pub siblings: Vec<u8>,
    /// v2: seconds; v3: centiseconds.
    pub interval: u16,
    /// v2 PASS: the 8 bytes every advert must carry.
    pub password: Option<[u8; 8]>,
    pub addresses: Vec<IpAddr>,
    /// Our own addresses on the interface: an advert from one is ours.
    pub own: Vec<IpAddr>,
    /// Obey only these sources; empty: anyone.
    pub peers: Vec<IpAddr>,
    /// Adverts come unicast (`unicast_peer`), not to the group.
    pub unicast: bool,
}

/// One packet as the socket delivered it.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    pub bytes: &'a [u8],
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
}

/// The outcome of checking one packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Obey it; `notes` were logged and counted (address list mismatch, v3
    /// interval mismatch is none: v3 learns the master's interval).
    Accept { advert: Advert, notes: Vec<Reason> },
    /// Refused, with a line for the log.
    Reject(Reason, String),
    /// Another instance's packet.
    NotOurs,
}

impl Expect {
    pub fn check(&self, r: &Received) -> Verdict {
        let reject = |why: Reason, text: String| Verdict::Reject(why, text);
        // RFC 5798 §7.1: TTL/hop limit 255, unless unicast (routers between).
        if r.ttl != 255 && !self.unicast {
            return reject(
                Reason::Ttl,
                format!("TTL/hop limit {} from {}, must be 255", r.ttl, r.src),
            );
        }
        let advert = match Advert::decode(r.bytes, r.src, r.dst) {
            Ok(a) => a,
            Err(e) => return decode_error(e, r),
        };
        if advert.vrid != self.vrid {
            if self.siblings.contains(&advert.vrid) {
                return Verdict::NotOurs;
            }
            return reject(
                Reason::Vrid,
                format!("VRID {} from {} is not configured here", advert.vrid, r.src),
            );
        }
        if advert.version != self.version {
            let (v, ours) = (advert.version, self.version);
            return reject(
                Reason::Version,
                format!(
                    "VRRPv{v} advert from {}, this instance speaks v{ours}",
                    r.src
                ),
            );
        }
        if let Some(v) = self.sender_checks(r).or_else(|| self.v2_checks(&advert, r)) {
            return v;
        }
        Verdict::Accept {
            notes: self.address_notes(&advert),
            advert,
        }
    }

    /// lb's own: not our own advert, from a configured peer (if any), and
    /// multicast or unicast as configured.
    fn sender_checks(&self, r: &Received) -> Option<Verdict> {
        let (why, text) = if self.own.contains(&r.src) {
            (
                Reason::OwnAddress,
                format!("advert from {}, one of our own addresses", r.src),
            )
        } else if !self.peers.is_empty() && !self.peers.contains(&r.src) {
            (
                Reason::NotPeer,
                format!("advert from {}, not a configured peer", r.src),
            )
        } else if self.unicast == r.dst.is_multicast() {
            let how = if self.unicast { "multicast" } else { "unicast" };
            (
                Reason::Transport,
                format!(
                    "{how} advert from {}, not how this instance is configured",
                    r.src
                ),
            )
        } else {
            return None;
        };
        Some(Verdict::Reject(why, text))
    }

    /// RFC 3768 §7.1: authentication, then the advert interval.
    fn v2_checks(&self, a: &Advert, r: &Received) -> Option<Verdict> {
        if a.version != 2 {
            return None;
        }
        let want = if self.password.is_some() {
            AUTH_PASS
        } else {
            0
        };
        if a.auth_type != want {
            let text = format!("auth type {} from {}, expecting {want}", a.auth_type, r.src);
            return Some(Verdict::Reject(Reason::AuthType, text));
        }
        if let Some(pass) = self.password
            && !constant_time_eq(&pass, &a.auth_data)
        {
            let text = format!("wrong password from {}", r.src);
            return Some(Verdict::Reject(Reason::AuthPassword, text));
        }
        if a.interval != self.interval {
            let text = format!(
                "advert interval {} s from {}, ours {} s",
                a.interval, r.src, self.interval
            );
            return Some(Verdict::Reject(Reason::Interval, text));
        }
        None
    }

    /// keepalived: a different count or list is logged, and the advert obeyed.
    fn address_notes(&self, a: &Advert) -> Vec<Reason> {
        if a.addresses.len() != self.addresses.len() {
            vec![Reason::AddressCount]
        } else if self.addresses.iter().any(|x| !a.addresses.contains(x)) {
            vec![Reason::AddressList]
        } else {
            vec![]
        }
    }
}

fn decode_error(e: DecodeError, r: &Received) -> Verdict {
    let (why, what) = match e {
        DecodeError::Truncated => (Reason::Length, "too short".to_owned()),
        DecodeError::Length => (Reason::Length, "longer than its addresses".to_owned()),
        DecodeError::Version(v) => (Reason::Version, format!("version {v}")),
        DecodeError::Type(t) => (Reason::Type, format!("type {t}, not an advertisement")),
        DecodeError::Checksum => (Reason::Checksum, "bad checksum".to_owned()),
    };
    Verdict::Reject(why, format!("packet from {}: {what}", r.src))
}

fn constant_time_eq(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
