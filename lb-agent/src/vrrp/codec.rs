//! VRRP advertisements on the wire, both versions (the IP header is the
//! kernel's business):
//!
//! ```text
//!  v2 (RFC 3768 §5.1)                      v3 (RFC 5798 §5.1)
//!  |Ver=2|Type=1| VRID | Priority |Count|  |Ver=3|Type=1| VRID | Priority |Count|
//!  | Auth Type | Adver Int (s) | Checksum |  |Rsvd| Max Adver Int (cs, 12 bits)| Checksum |
//!  | IPv4 addresses ...                   |  | IPv4 or IPv6 addresses ...             |
//!  | Authentication Data (8 bytes)        |
//! ```
//!
//! v2's checksum covers the VRRP message; v3's adds the IP pseudo-header
//! (RFC 5798 §5.2.8), IPv4 or IPv6. Decoding never panics on hostile input:
//! every length is checked before it is read.

use std::net::IpAddr;

/// IP protocol number of VRRP.
pub const PROTO: u8 = 112;
/// `Type` of an advertisement, the only type there is.
pub const TYPE_ADVERT: u8 = 1;
/// v2 `Auth Type` values (RFC 3768 §5.3.6).
pub const AUTH_NONE: u8 = 0;
pub const AUTH_PASS: u8 = 1;
/// Fixed header, then addresses.
const HEADER: usize = 8;
/// v2's authentication data.
const AUTH_LEN: usize = 8;

/// An advertisement, decoded or to encode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: u8,
    pub vrid: u8,
    pub priority: u8,
    /// v3: centiseconds (12 bits); v2: seconds.
    pub interval: u16,
    /// v2 only: `Auth Type` and the 8 bytes of data.
    pub auth_type: u8,
    pub auth_data: [u8; AUTH_LEN],
    pub addresses: Vec<IpAddr>,
}

/// Why bytes are not an advertisement (before any per-instance check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than its header and the addresses it announces.
    Truncated,
    /// Not version 2 or 3 (`got`).
    Version(u8),
    /// Not an advertisement.
    Type(u8),
    /// Checksum does not verify.
    Checksum,
    /// Longer than announced, beyond Ethernet padding.
    Length,
}

impl Advert {
    /// The message, its checksum computed for `src` → `dst` (v3's pseudo-header).
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let count = u8::try_from(self.addresses.len()).unwrap_or(u8::MAX);
        let mut out = vec![
            (self.version << 4) | TYPE_ADVERT,
            self.vrid,
            self.priority,
            count,
        ];
        if self.version == 2 {
            out.extend([self.auth_type, self.interval as u8]);
        } else {
            out.extend((self.interval & 0x0fff).to_be_bytes());
        }
        out.extend([0, 0]);
        for a in self.addresses.iter().take(usize::from(count)) {
            match a {
                IpAddr::V4(a) => out.extend(a.octets()),
                IpAddr::V6(a) => out.extend(a.octets()),
            }
        }
        if self.version == 2 {
            out.extend(self.auth_data);
        }
        let sum = checksum(self.version, &out, src, dst);
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        out
    }

    /// Decodes `bytes` received from `src` to `dst` (`ipv6`: the addresses'
    /// family), verifying the checksum. Trailing Ethernet padding is allowed.
    pub fn decode(bytes: &[u8], src: IpAddr, dst: IpAddr) -> Result<Advert, DecodeError> {
        let [vt, vrid, priority, count, b4, b5, ..] = *bytes else {
            return Err(DecodeError::Truncated);
        };
        let version = vt >> 4;
        if version != 2 && version != 3 {
            return Err(DecodeError::Version(version));
        }
        if vt & 0x0f != TYPE_ADVERT {
            return Err(DecodeError::Type(vt & 0x0f));
        }
        let width = if src.is_ipv6() { 16 } else { 4 };
        let auth = if version == 2 { AUTH_LEN } else { 0 };
        let len = HEADER + usize::from(count) * width + auth;
        if bytes.len() < len {
            return Err(DecodeError::Truncated);
        }
        // Ethernet pads a frame to 60 bytes: 46 of IP, 20 of which are IPv4's header.
        if bytes.len() > len && bytes.len() > 26 {
            return Err(DecodeError::Length);
        }
        let msg = &bytes[..len];
        if checksum(version, msg, src, dst) != 0 {
            return Err(DecodeError::Checksum);
        }
        let addresses = msg[HEADER..len - auth]
            .chunks_exact(width)
            .filter_map(address)
            .collect();
        let mut auth_data = [0; AUTH_LEN];
        auth_data[..auth].copy_from_slice(&msg[len - auth..]);
        let (auth_type, interval) = match version {
            2 => (b4, u16::from(b5)),
            _ => (AUTH_NONE, u16::from_be_bytes([b4, b5]) & 0x0fff),
        };
        Ok(Advert {
            version,
            vrid,
            priority,
            interval,
            auth_type,
            auth_data,
            addresses,
        })
    }
}

/// A v2 `PASS` password as its 8 bytes on the wire (zero-padded, cut at 8).
pub fn password(p: &str) -> [u8; AUTH_LEN] {
    let mut out = [0; AUTH_LEN];
    for (o, b) in out.iter_mut().zip(p.as_bytes()) {
        *o = *b;
    }
    out
}

fn address(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        _ => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
    }
}

/// The Internet checksum of `msg` (0 when `msg` carries a right one): v2
/// over the message, v3 with the pseudo-header of `src` → `dst`.
pub fn checksum(version: u8, msg: &[u8], src: IpAddr, dst: IpAddr) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            sum += hi | pair.get(1).map_or(0, |b| u32::from(*b));
        }
    };
    if version == 3 {
        let len = msg.len() as u32;
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                add(&s.octets());
                add(&d.octets());
                add(&[0, PROTO]);
                add(&(len as u16).to_be_bytes());
            }
            (s, d) => {
                add(&v6_octets(s));
                add(&v6_octets(d));
                add(&len.to_be_bytes());
                add(&[0, 0, 0, PROTO]);
            }
        }
    }
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn v6_octets(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Captured with tcpdump from Debian 12's keepalived 2.2.7 (the seed's
    /// instance: VI_1, vrid 51, priority 100, advert_int 1, PASS xiaoqi),
    /// sent by 10.9.0.1 to 224.0.0.18.
    const KEEPALIVED_V2_PASS: [u8; 20] = [
        0x21, 0x33, 0x64, 0x01, 0x01, 0x01, 0x31, 0x87, 0xc0, 0xa8, 0x3c, 0x58, 0x78, 0x69, 0x61,
        0x6f, 0x71, 0x69, 0x00, 0x00,
    ];
    /// keepalived 2.2.7 stopping (priority 0), no authentication.
    const KEEPALIVED_V2_STOP: [u8; 20] = [
        0x21, 0x33, 0x00, 0x01, 0x00, 0x01, 0xe1, 0xc9, 0xc0, 0xa8, 0x3c, 0x58, 0, 0, 0, 0, 0, 0,
        0, 0,
    ];
    /// keepalived 2.2.7, `vrrp_version 3`, vrid 52, priority 150, advert_int 0.1,
    /// 10.9.0.100, from 10.9.0.1 to 224.0.0.18.
    const KEEPALIVED_V3_V4: [u8; 12] = [
        0x31, 0x34, 0x96, 0x01, 0x00, 0x0a, 0x43, 0xba, 0x0a, 0x09, 0x00, 0x64,
    ];
    /// The same instance stopping.
    const KEEPALIVED_V3_V4_STOP: [u8; 12] = [
        0x31, 0x34, 0x00, 0x01, 0x00, 0x0a, 0xd9, 0xba, 0x0a, 0x09, 0x00, 0x64,
    ];
    /// keepalived 2.2.7, vrid 53, priority 200, advert_int 1, fd00::100, from
    /// fe80::ff:fe00:1 to ff02::12.
    const KEEPALIVED_V3_V6: [u8; 24] = [
        0x31, 0x35, 0xc8, 0x01, 0x00, 0x64, 0x0b, 0x45, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0x01, 0x00,
    ];

    fn v4_src() -> (IpAddr, IpAddr) {
        (ip("10.9.0.1"), ip("224.0.0.18"))
    }

    fn advert(version: u8, vrid: u8, priority: u8, interval: u16, addrs: &[&str]) -> Advert {
        Advert {
            version,
            vrid,
            priority,
            interval,
            auth_type: AUTH_NONE,
            auth_data: [0; 8],
            addresses: addrs.iter().map(|a| ip(a)).collect(),
        }
    }

    #[test]
    fn golden_bytes_from_keepalived() {
        let (s, d) = v4_src();
        let mut pass = advert(2, 51, 100, 1, &["192.168.60.88"]);
        pass.auth_type = AUTH_PASS;
        pass.auth_data[..6].copy_from_slice(b"xiaoqi");
        assert_eq!(pass.encode(s, d), KEEPALIVED_V2_PASS);
        assert_eq!(Advert::decode(&KEEPALIVED_V2_PASS, s, d), Ok(pass));
        let stop = advert(2, 51, 0, 1, &["192.168.60.88"]);
        assert_eq!(stop.encode(s, d), KEEPALIVED_V2_STOP);
        let v3 = advert(3, 52, 150, 10, &["10.9.0.100"]);
        assert_eq!(v3.encode(s, d), KEEPALIVED_V3_V4);
        assert_eq!(Advert::decode(&KEEPALIVED_V3_V4, s, d), Ok(v3));
        assert_eq!(
            advert(3, 52, 0, 10, &["10.9.0.100"]).encode(s, d),
            KEEPALIVED_V3_V4_STOP
        );
        let (s6, d6) = (ip("fe80::ff:fe00:1"), ip("ff02::12"));
        let v6 = advert(3, 53, 200, 100, &["fd00::100"]);
        assert_eq!(v6.encode(s6, d6), KEEPALIVED_V3_V6);
        assert_eq!(Advert::decode(&KEEPALIVED_V3_V6, s6, d6), Ok(v6));
    }

    #[test]
    fn the_v3_checksum_covers_the_pseudo_header() {
        let (s, d) = v4_src();
        assert_eq!(
            Advert::decode(&KEEPALIVED_V3_V4, ip("10.9.0.2"), d),
            Err(DecodeError::Checksum)
        );
        // v2 has none: the same message verifies from any source.
        assert!(Advert::decode(&KEEPALIVED_V2_PASS, ip("10.9.0.2"), d).is_ok());
        let mut flipped = KEEPALIVED_V2_PASS;
        flipped[15] ^= 1;
        assert_eq!(Advert::decode(&flipped, s, d), Err(DecodeError::Checksum));
    }

    #[test]
    fn round_trips() {
        let (s, d) = v4_src();
        for a in [
            advert(3, 1, 255, 4095, &["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
            advert(2, 255, 1, 255, &[]),
            advert(3, 9, 100, 1, &[]),
        ] {
            assert_eq!(Advert::decode(&a.encode(s, d), s, d), Ok(a));
        }
        let (s6, d6) = (ip("fe80::1"), ip("fe80::2"));
        let a = advert(3, 7, 120, 25, &["2001:db8::1", "2001:db8::2"]);
        assert_eq!(Advert::decode(&a.encode(s6, d6), s6, d6), Ok(a));
    }

    #[test]
    fn hostile_bytes_are_refused_never_read_past() {
        let (s, d) = v4_src();
        assert_eq!(Advert::decode(&[], s, d), Err(DecodeError::Truncated));
        assert_eq!(
            Advert::decode(&[0x31, 1, 2], s, d),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            Advert::decode(&[0x41, 1, 1, 0, 0, 1, 0, 0], s, d),
            Err(DecodeError::Version(4))
        );
        assert_eq!(
            Advert::decode(&[0x32, 1, 1, 0, 0, 1, 0, 0], s, d),
            Err(DecodeError::Type(2))
        );
        // 255 addresses announced, none there.
        assert_eq!(
            Advert::decode(&[0x31, 1, 1, 255, 0, 1, 0, 0], s, d),
            Err(DecodeError::Truncated)
        );
        let mut long = KEEPALIVED_V3_V4.to_vec();
        long.extend([0; 30]);
        assert_eq!(Advert::decode(&long, s, d), Err(DecodeError::Length));
        // Ethernet padding of a minimal frame is fine.
        let mut padded = KEEPALIVED_V3_V4.to_vec();
        padded.extend([0; 14]);
        assert!(Advert::decode(&padded, s, d).is_ok());
        for n in 0..64u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ n).collect();
            let _ = Advert::decode(&junk, s, d);
            let _ = Advert::decode(&junk, ip("fe80::1"), ip("ff02::12"));
        }
    }
}
