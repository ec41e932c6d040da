//! The two netlink questions `lb-ctl doctor` asks the kernel, without
//! shelling out to `ip` or `bpftool`: every link with its XDP attachment
//! (rtnetlink `RTM_GETLINK`, `IFLA_XDP`), and what each driver can do in XDP
//! (the `netdev` generic-netlink family's `xdp-features`, Linux 6.3+).
//!
//! Blocking sockets: the doctor asks once and exits.

use std::{
    collections::BTreeMap,
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
};

/// One link as rtnetlink reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub name: String,
    /// The attached XDP program, if any.
    pub xdp: Option<XdpAttachment>,
}

/// An XDP program on a link: `IFLA_XDP_ATTACHED` and `IFLA_XDP_PROG_ID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XdpAttachment {
    pub mode: AttachMode,
    pub prog_id: u32,
}

/// `XDP_ATTACHED_*` (`linux/if_link.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (`xdpdrv`).
    Driver,
    /// In the generic stack (`xdpgeneric`).
    Generic,
    /// Offloaded to the NIC.
    Offload,
    /// Several programs in different modes at once.
    Multi,
}

impl AttachMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AttachMode::Driver => "native",
            AttachMode::Generic => "generic",
            AttachMode::Offload => "offload",
            AttachMode::Multi => "several modes",
        }
    }
}

const NLMSG_HDRLEN: usize = 16;
const NLA_HDRLEN: usize = 4;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;

const RTM_GETLINK: u16 = 18;
const RTM_NEWLINK: u16 = 16;
const IFLA_IFNAME: u16 = 3;
const IFLA_XDP: u16 = 43;
const IFLA_XDP_ATTACHED: u16 = 2;
const IFLA_XDP_PROG_ID: u16 = 4;

const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;

/// Every link of the current network namespace, by name.
pub fn links() -> io::Result<BTreeMap<String, LinkInfo>> {
    // struct ifinfomsg, all zero: every family, every link.
    let replies = request(libc::NETLINK_ROUTE, RTM_GETLINK, NLM_F_DUMP, &[0; 16])?;
    let mut links = BTreeMap::new();
    for (kind, body) in replies {
        if kind != RTM_NEWLINK || body.len() < 16 {
            continue;
        }
        let ifindex = u32::from_ne_bytes([body[4], body[5], body[6], body[7]]);
        let mut link = LinkInfo {
            ifindex,
            ..LinkInfo::default()
        };
        for (ty, value) in attrs(&body[16..]) {
            match ty {
                IFLA_IFNAME => link.name = c_string(value),
                IFLA_XDP => link.xdp = xdp_attachment(value),
                _ => {}
            }
        }
        links.insert(link.name.clone(), link);
    }
    Ok(links)
}

/// `XDP_ATTACHED_NONE` is no attachment; an unknown mode counts as several.
fn xdp_attachment(nested: &[u8]) -> Option<XdpAttachment> {
    let mut mode = None;
    let mut prog_id = 0;
    for (ty, value) in attrs(nested) {
        match (ty, value) {
            (IFLA_XDP_ATTACHED, [m, ..]) => {
                mode = match m {
                    0 => None,
                    1 => Some(AttachMode::Driver),
                    2 => Some(AttachMode::Generic),
                    3 => Some(AttachMode::Offload),
                    _ => Some(AttachMode::Multi),
                }
            }
            (IFLA_XDP_PROG_ID, [a, b, c, d, ..]) => prog_id = u32::from_ne_bytes([*a, *b, *c, *d]),
            _ => {}
        }
    }
    mode.map(|mode| XdpAttachment { mode, prog_id })
}

/// `NETDEV_XDP_ACT_*` bits per ifindex; `Ok(None)` when the kernel has no
/// `netdev` family (before 6.3), so the doctor can say it could not tell.
pub fn xdp_features() -> io::Result<Option<BTreeMap<u32, u64>>> {
    let Some(family) = genl_family("netdev")? else {
        return Ok(None);
    };
    // struct genlmsghdr: cmd, version 1, reserved.
    let header = [NETDEV_CMD_DEV_GET, 1, 0, 0];
    let replies = request(libc::NETLINK_GENERIC, family, NLM_F_DUMP, &header)?;
    let mut features = BTreeMap::new();
    for (kind, body) in replies {
        if kind != family || body.len() < 4 {
            continue;
        }
        let (mut ifindex, mut bits) = (None, 0);
        for (ty, value) in attrs(&body[4..]) {
            match ty {
                NETDEV_A_DEV_IFINDEX => ifindex = read_u32(value),
                NETDEV_A_DEV_XDP_FEATURES => bits = read_u64(value).unwrap_or(0),
                _ => {}
            }
        }
        if let Some(i) = ifindex {
            features.insert(i, bits);
        }
    }
    Ok(Some(features))
}

/// The id of generic-netlink family `name`; `None` if the kernel has none.
fn genl_family(name: &str) -> io::Result<Option<u16>> {
    let mut msg = vec![CTRL_CMD_GETFAMILY, 1, 0, 0];
    let mut value = name.as_bytes().to_vec();
    value.push(0);
    push_attr(&mut msg, CTRL_ATTR_FAMILY_NAME, &value);
    let replies = match request(libc::NETLINK_GENERIC, GENL_ID_CTRL, 0, &msg) {
        Ok(r) => r,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(replies.iter().find_map(|(_, body)| {
        attrs(body.get(4..)?)
            .find(|(ty, _)| *ty == CTRL_ATTR_FAMILY_ID)
            .and_then(|(_, v)| Some(u16::from_ne_bytes([*v.first()?, *v.get(1)?])))
    }))
}

/// Sends one request and collects the replies' `(type, body)` until the
/// dump ends (or the one answer of a non-dump request arrives).
fn request(protocol: i32, kind: u16, flags: u16, body: &[u8]) -> io::Result<Vec<(u16, Vec<u8>)>> {
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor we just opened and own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    let len = u32::try_from(NLMSG_HDRLEN + body.len()).map_err(io::Error::other)?;
    msg.extend_from_slice(&len.to_ne_bytes());
    msg.extend_from_slice(&kind.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence number
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    msg.extend_from_slice(body);
    // SAFETY: `msg` is a valid buffer of `msg.len()` bytes; the socket is unbound,
    // so it goes to the kernel.
    if unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut replies = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: `buf` is writable for its whole length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        for (ty, payload) in messages(&buf[..n]) {
            match ty {
                NLMSG_DONE => return Ok(replies),
                NLMSG_ERROR => {
                    let errno = payload
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                    if errno == 0 {
                        return Ok(replies); // an acknowledgement
                    }
                    return Err(io::Error::from_raw_os_error(-errno));
                }
                _ => replies.push((ty, payload.to_vec())),
            }
        }
        if flags & NLM_F_DUMP == 0 && !replies.is_empty() {
            return Ok(replies);
        }
    }
}

/// The netlink messages in one datagram: `(type, payload)`.
fn messages(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = read_u32(buf.get(..4)?)? as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return None;
        }
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        let payload = &buf[NLMSG_HDRLEN..len];
        buf = buf.get(align4(len)..).unwrap_or_default();
        Some((ty, payload))
    })
}

/// The attributes in `buf`: `(type without flags, value)`.
pub(super) fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16::from_ne_bytes([*buf.first()?, *buf.get(1)?]));
        if len < NLA_HDRLEN || len > buf.len() {
            return None;
        }
        let ty = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        let value = &buf[NLA_HDRLEN..len];
        buf = buf.get(align4(len)..).unwrap_or_default();
        Some((ty, value))
    })
}

fn push_attr(msg: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let len = NLA_HDRLEN + value.len();
    // Attribute values here are a few bytes; a u16 length always fits.
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(value);
    msg.resize(msg.len() + align4(len) - len, 0);
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn read_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

fn read_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(..8)?.try_into().ok()?))
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_padding() {
        let mut buf = Vec::new();
        push_attr(&mut buf, IFLA_IFNAME, b"eth0\0");
        push_attr(&mut buf, 0x8000 | IFLA_XDP, &[]);
        let got: Vec<_> = attrs(&buf).collect();
        assert_eq!(
            got,
            vec![(IFLA_IFNAME, &b"eth0\0"[..]), (IFLA_XDP, &[][..])]
        );
        assert_eq!(c_string(got[0].1), "eth0");
    }

    #[test]
    fn xdp_nest_gives_mode_and_program() {
        let mut nest = Vec::new();
        push_attr(&mut nest, IFLA_XDP_ATTACHED, &[2]);
        push_attr(&mut nest, IFLA_XDP_PROG_ID, &77u32.to_ne_bytes());
        assert_eq!(
            xdp_attachment(&nest),
            Some(XdpAttachment {
                mode: AttachMode::Generic,
                prog_id: 77
            })
        );
        let mut none = Vec::new();
        push_attr(&mut none, IFLA_XDP_ATTACHED, &[0]);
        assert_eq!(xdp_attachment(&none), None);
    }

    #[test]
    fn truncated_input_ends_iteration() {
        let buf = [8u8, 0, 1, 0, 1, 2];
        assert_eq!(attrs(&buf).count(), 0);
        assert_eq!(messages(&[40, 0, 0, 0, 1]).count(), 0);
    }
}
