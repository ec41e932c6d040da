//! `type: icmp` (keepalived PING_CHECK): one echo request to the target and
//! its echo reply before the deadline, IPv4 or IPv6.
//!
//! The socket is an unprivileged ping socket (`SOCK_DGRAM`, allowed when
//! `net.ipv4.ping_group_range` holds the agent's group; the kernel picks the
//! identifier and hands the socket only its own replies), else a raw socket
//! (root or `CAP_NET_RAW`; every ICMP packet arrives, so replies are matched
//! by identifier, sequence and payload here). Either is connected to the
//! target with `IP_RECVERR`, so an ICMP error about the request (host or
//! network unreachable, which the kernel otherwise keeps to itself as soft
//! errors) fails the receive at once instead of waiting for the deadline.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};

use lb_api::types::CheckFailure;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::UdpSocket;

use super::{Aim, io_failure, set_option};

/// What follows the ICMP header in every request: recognisable in a capture.
const PAYLOAD_TAG: &[u8; 8] = b"lb-check";
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;

/// The kind of socket a check used, named in its failures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ping,
    Raw,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ping => "ping socket",
            Kind::Raw => "raw socket",
        }
    }
}

/// An echo reply: identifier, sequence and payload.
#[derive(Debug, PartialEq, Eq)]
pub struct EchoReply<'a> {
    pub ident: u16,
    pub seq: u16,
    pub payload: &'a [u8],
}

pub async fn check(aim: &Aim) -> Result<(), CheckFailure> {
    let v6 = aim.target.is_ipv6();
    let (socket, kind) = open(aim)?;
    let seq = next_seq();
    let ident = match kind {
        Kind::Ping => None,
        Kind::Raw => Some(raw_ident()),
    };
    let payload = payload(seq);
    let request = echo_request(v6, ident.unwrap_or(0), seq, &payload);
    let failed = |e: std::io::Error| with_kind(io_failure(&e), kind);
    socket.send(&request).await.map_err(failed)?;
    let mut buf = [0u8; 1500];
    let ip_header = kind == Kind::Raw && !v6;
    loop {
        let n = socket.recv(&mut buf).await.map_err(failed)?;
        let ours = |r: EchoReply| {
            r.seq == seq && ident.is_none_or(|id| id == r.ident) && r.payload == payload
        };
        if parse(&buf[..n], v6, ip_header).is_some_and(ours) {
            return Ok(());
        }
    }
}

/// A ping socket, else a raw one, connected to the target and marked when
/// the aim says so.
fn open(aim: &Aim) -> Result<(UdpSocket, Kind), CheckFailure> {
    let (domain, protocol) = if aim.target.is_ipv6() {
        (Domain::IPV6, Protocol::ICMPV6)
    } else {
        (Domain::IPV4, Protocol::ICMPV4)
    };
    let (socket, kind) = match Socket::new(domain, Type::DGRAM, Some(protocol)) {
        Ok(s) => (s, Kind::Ping),
        Err(ping) => match Socket::new(domain, Type::RAW, Some(protocol)) {
            Ok(s) => (s, Kind::Raw),
            Err(raw) => {
                return Err(CheckFailure::Io {
                    detail: format!(
                        "no ICMP socket: ping socket: {ping} (is the agent's group in \
                         net.ipv4.ping_group_range?); raw socket: {raw} (needs CAP_NET_RAW)"
                    ),
                });
            }
        },
    };
    let setup = |socket: Socket| -> std::io::Result<UdpSocket> {
        if let Some(mark) = aim.mark {
            socket.set_mark(mark)?;
        }
        let (level, name) = if aim.target.is_ipv6() {
            (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
        } else {
            (libc::IPPROTO_IP, libc::IP_RECVERR)
        };
        set_option(&socket, level, name, 1)?;
        socket.set_nonblocking(true)?;
        // Raw IPv6 sockets take port 0 or the protocol; ping sockets ignore it.
        socket.connect(&SockAddr::from(SocketAddr::new(aim.target.ip(), 0)))?;
        UdpSocket::from_std(socket.into())
    };
    setup(socket)
        .map(|s| (s, kind))
        .map_err(|e| with_kind(io_failure(&e), kind))
}

/// Names the socket kind in a failure's detail.
fn with_kind(f: CheckFailure, kind: Kind) -> CheckFailure {
    match f {
        CheckFailure::Unreachable { detail } => CheckFailure::Unreachable {
            detail: format!("{detail} ({})", kind.name()),
        },
        CheckFailure::Io { detail } => CheckFailure::Io {
            detail: format!("{detail} ({})", kind.name()),
        },
        other => other,
    }
}

fn next_seq() -> u16 {
    static SEQ: AtomicU16 = AtomicU16::new(1);
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// An identifier for raw sockets: the process's, as ping(8) does.
fn raw_ident() -> u16 {
    std::process::id() as u16
}

/// The tag and the sequence number again, so a reply to someone else's
/// request with the same identifier and sequence does not count.
fn payload(seq: u16) -> [u8; 10] {
    let mut p = [0u8; 10];
    p[..8].copy_from_slice(PAYLOAD_TAG);
    p[8..].copy_from_slice(&seq.to_be_bytes());
    p
}

/// An echo request; the checksum is filled for IPv4 (the kernel computes
/// ICMPv6's, which covers a pseudo-header it knows).
pub fn echo_request(v6: bool, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let kind = if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 };
    let mut m = vec![kind, 0, 0, 0];
    m.extend_from_slice(&ident.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(payload);
    if !v6 {
        let sum = checksum(&m);
        m[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    m
}

/// The Internet checksum (RFC 1071).
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The echo reply in one received message, if it is one; `ip_header`: the
/// message starts with its IPv4 header (raw IPv4 sockets).
pub fn parse(data: &[u8], v6: bool, ip_header: bool) -> Option<EchoReply<'_>> {
    let icmp = if ip_header { ipv4_payload(data)? } else { data };
    let reply = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    match icmp {
        [kind, 0, _, _, a, b, c, d, payload @ ..] if *kind == reply => Some(EchoReply {
            ident: u16::from_be_bytes([*a, *b]),
            seq: u16::from_be_bytes([*c, *d]),
            payload,
        }),
        _ => None,
    }
}

/// What follows an IPv4 header.
fn ipv4_payload(data: &[u8]) -> Option<&[u8]> {
    let ihl = usize::from(data.first()? & 0x0f) * 4;
    if ihl < 20 {
        return None;
    }
    data.get(ihl..)
}

#[cfg(test)]
mod tests {
    use super::super::tests::hex;
    use super::*;

    fn reply(ident: u16, seq: u16) -> Option<EchoReply<'static>> {
        let payload: &'static [u8] = Box::leak(Box::new(payload(seq)));
        Some(EchoReply {
            ident,
            seq,
            payload,
        })
    }

    #[test]
    fn the_request_checksums_to_zero() {
        let m = echo_request(false, 0x1234, 7, &payload(7));
        assert_eq!(&m[..2], &[8, 0]);
        assert_eq!(checksum(&m), 0, "a correct checksum sums to zero");
        assert_eq!(&m[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(&m[8..16], PAYLOAD_TAG);
        let v6 = echo_request(true, 1, 2, b"x");
        assert_eq!(v6, [128, 0, 0, 0, 0, 1, 0, 2, b'x']);
    }

    #[test]
    fn an_odd_length_checksums_with_a_zero_pad() {
        assert_eq!(checksum(&[0xff]), !0xff00);
        assert_eq!(checksum(&[]), 0xffff);
    }

    // Replies captured between two namespaces (10.77.0.2 → 10.77.0.101,
    // fd77::2 → fd77::101) to requests built as `echo_request` builds them.

    #[test]
    fn a_raw_ipv4_reply_is_read_past_its_ip_header() {
        let data = hex("45000026c3ba00004001a21c0a4d00650a4d0002\
             00008827123400076c622d636865636b0007");
        assert_eq!(parse(&data, false, true), reply(0x1234, 7));
        assert_eq!(
            checksum(&data[20..]),
            0,
            "the captured reply's checksum holds"
        );
        assert_eq!(parse(&data, false, false), None, "an IP header is no ICMP");
    }

    #[test]
    fn a_ping_socket_reply_carries_the_kernels_identifier() {
        let v4 = hex("0000a058fa0200076c622d636865636b0007");
        assert_eq!(parse(&v4, false, false), reply(0xfa02, 7));
        let v6 = hex("81002310fa03000b6c622d636865636b000b");
        assert_eq!(parse(&v6, true, false), reply(0xfa03, 11));
    }

    #[test]
    fn a_raw_ipv6_reply_has_no_ip_header_and_keeps_our_identifier() {
        let data = hex("81000ae01234000b6c622d636865636b000b");
        assert_eq!(parse(&data, true, false), reply(0x1234, 11));
        assert_eq!(
            parse(&data, false, false),
            None,
            "type 129 is not IPv4's reply"
        );
    }

    #[test]
    fn requests_errors_and_garbage_are_not_replies() {
        let req = echo_request(false, 1, 1, b"");
        assert_eq!(parse(&req, false, false), None);
        // Host unreachable quoting our request, as a router sent it (captured).
        let unreachable = hex("45c00042c9de000040019b1c0a4d00650a4d0002\
             0301fcfe000000004500002623054000400102bb0a4d00020ac80001\
             08008027123400076c622d636865636b0007");
        assert_eq!(parse(&unreachable, false, true), None);
        assert_eq!(parse(&[0, 0, 0], false, false), None);
        assert_eq!(parse(&[0x45, 0], false, true), None);
        assert_eq!(parse(&[0x41; 30], false, true), None, "IHL 4 is invalid");
    }
}
