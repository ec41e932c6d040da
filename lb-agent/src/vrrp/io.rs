//! The VRRP socket of one instance: raw IP protocol 112 on its interface
//! (`SO_BINDTODEVICE`), the group 224.0.0.18 / ff02::12 joined there, TTL
//! and hop limit 255, multicast loop off. Each advert is sent with
//! `IP_PKTINFO`/`IPV6_PKTINFO` naming our source address, so the socket
//! itself stays unbound and receives every advert of the segment; IPv6's
//! destination and hop limit arrive as control messages.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};

use tokio::io::unix::AsyncFd;

use super::codec::PROTO;

/// 224.0.0.18 (RFC 5798 §5.1.1.2).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// ff02::12 (RFC 5798 §5.1.2.2).
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// IPv4 TOS / IPv6 traffic class "network control", as keepalived sends.
const TOS: i32 = 0xc0;

/// A received packet's VRRP part and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    pub bytes: Vec<u8>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
}

pub struct VrrpSocket {
    fd: AsyncFd<OwnedFd>,
    ipv6: bool,
    ifindex: u32,
    source: IpAddr,
}

impl VrrpSocket {
    /// Opens the socket on `ifname` (index `ifindex`), sending from `source`.
    pub fn open(
        ifname: &str,
        ifindex: u32,
        source: IpAddr,
        multicast: bool,
    ) -> io::Result<VrrpSocket> {
        let ipv6 = source.is_ipv6();
        let fd = sender(ifname, ifindex, ipv6)?;
        let raw = fd.as_raw_fd();
        if ipv6 {
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &1i32)?;
            setsockopt(raw, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &1i32)?;
        }
        match (multicast, ipv6) {
            (false, _) => {}
            (true, true) => join_v6(raw, GROUP_V6, ifindex)?,
            (true, false) => {
                let mreq = mreqn(GROUP_V4, ifindex);
                setsockopt(raw, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq)?;
            }
        }
        // SAFETY: the socket is owned by the AsyncFd and stays open, the same
        // descriptor, for as long as the AsyncFd lives.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)?;
        Ok(VrrpSocket {
            fd,
            ipv6: source.is_ipv6(),
            ifindex,
            source,
        })
    }

    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// Sends one advert to `dst`.
    pub async fn send(&self, bytes: &[u8], dst: IpAddr) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard
                .try_io(|fd| send_from(fd.as_raw_fd(), bytes, self.source, dst, self.ifindex))
            {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Waits for the next packet.
    pub async fn recv(&self) -> io::Result<Packet> {
        loop {
            let mut guard = self.fd.readable().await?;
            let got = guard.try_io(|fd| {
                let raw = fd.as_raw_fd();
                if self.ipv6 {
                    recv_v6(raw)
                } else {
                    recv_v4(raw)
                }
            });
            match got {
                Ok(Ok(Some(p))) => return Ok(p),
                Ok(Ok(None)) => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }
}

/// A raw VRRP socket that sends as RFC 5798 §5.1.1.3 and §5.1.2.3 want:
/// on `ifname` only, TTL / hop limit 255 (unicast and multicast), multicast
/// out of `ifindex` and not looped back, "network control" class. The
/// watchdog's resignations go out through one too.
pub fn sender(ifname: &str, ifindex: u32, ipv6: bool) -> io::Result<OwnedFd> {
    let fd = open_raw(ipv6, i32::from(PROTO))?;
    let raw = fd.as_raw_fd();
    bind_to_device(raw, ifname)?;
    let (level, opts) = if ipv6 {
        let o = vec![
            (libc::IPV6_MULTICAST_HOPS, 255),
            (libc::IPV6_UNICAST_HOPS, 255),
            (libc::IPV6_MULTICAST_LOOP, 0),
            (libc::IPV6_TCLASS, TOS),
            (libc::IPV6_MULTICAST_IF, ifindex as i32),
        ];
        (libc::IPPROTO_IPV6, o)
    } else {
        let o = vec![
            (libc::IP_MULTICAST_TTL, 255),
            (libc::IP_TTL, 255),
            (libc::IP_MULTICAST_LOOP, 0),
            (libc::IP_TOS, TOS),
        ];
        (libc::IPPROTO_IP, o)
    };
    for (opt, v) in opts {
        setsockopt(raw, level, opt, &v)?;
    }
    if !ipv6 {
        let out = mreqn(Ipv4Addr::UNSPECIFIED, ifindex);
        setsockopt(raw, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &out)?;
    }
    Ok(fd)
}

/// A non-blocking raw socket of protocol `proto`.
pub fn open_raw(ipv6: bool, proto: i32) -> io::Result<OwnedFd> {
    let domain = if ipv6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: socket(2) takes no pointers; the result is checked.
    let fd = unsafe {
        libc::socket(
            domain,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            proto,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn bind_to_device(fd: RawFd, ifname: &str) -> io::Result<()> {
    // SAFETY: the name's bytes and length are valid for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            ifname.as_ptr().cast(),
            ifname.len() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn setsockopt<T>(fd: RawFd, level: i32, opt: i32, v: &T) -> io::Result<()> {
    // SAFETY: `v` points at a live T of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn mreqn(group: Ipv4Addr, ifindex: u32) -> libc::ip_mreqn {
    libc::ip_mreqn {
        imr_multiaddr: libc::in_addr {
            s_addr: u32::from(group).to_be(),
        },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as i32,
    }
}

fn join_v6(fd: RawFd, group: Ipv6Addr, ifindex: u32) -> io::Result<()> {
    let m = libc::ipv6_mreq {
        ipv6mr_multiaddr: libc::in6_addr {
            s6_addr: group.octets(),
        },
        ipv6mr_interface: ifindex,
    };
    setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &m)
}

/// A sockaddr for `ip` (IPv6 scoped to `ifindex`) and its length.
pub fn sockaddr(ip: IpAddr, ifindex: u32) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero sockaddr_storage is valid; we fill one variant.
    let mut ss: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match ip {
        IpAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(a).to_be();
            size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
            sin6.sin6_scope_id = ifindex;
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// `sendmsg` with a PKTINFO control message choosing the source address.
pub fn send_from(
    fd: RawFd,
    bytes: &[u8],
    src: IpAddr,
    dst: IpAddr,
    ifindex: u32,
) -> io::Result<()> {
    let (mut addr, addr_len) = sockaddr(dst, ifindex);
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut _,
        iov_len: bytes.len(),
    };
    let mut control = [0u64; 8];
    // SAFETY: all-zero msghdr is valid; every pointer set below outlives the call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut addr as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = addr_len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    write_pktinfo(&mut msg, src, ifindex);
    // SAFETY: `msg` and everything it points at are valid for the call.
    let rc = unsafe { libc::sendmsg(fd, &msg, 0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes one `IP_PKTINFO` / `IPV6_PKTINFO` message naming `src` (and the
/// interface) into `msg`'s control buffer, which must hold 64 bytes.
fn write_pktinfo(msg: &mut libc::msghdr, src: IpAddr, ifindex: u32) {
    let (level, kind, data_len) = match src {
        IpAddr::V4(_) => (
            libc::IPPROTO_IP,
            libc::IP_PKTINFO,
            size_of::<libc::in_pktinfo>(),
        ),
        IpAddr::V6(_) => (
            libc::IPPROTO_IPV6,
            libc::IPV6_PKTINFO,
            size_of::<libc::in6_pktinfo>(),
        ),
    };
    // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes; 64 bytes hold either message.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(data_len as u32) } as usize;
    // SAFETY: msg_control points at a buffer large enough for one header.
    let cmsg = unsafe { &mut *libc::CMSG_FIRSTHDR(msg) };
    cmsg.cmsg_level = level;
    cmsg.cmsg_type = kind;
    // SAFETY: as above.
    cmsg.cmsg_len = unsafe { libc::CMSG_LEN(data_len as u32) } as usize;
    // SAFETY: the data area of the header just written, `data_len` bytes.
    let data = unsafe { libc::CMSG_DATA(cmsg) };
    match src {
        IpAddr::V4(a) => {
            let info = libc::in_pktinfo {
                ipi_ifindex: ifindex as i32,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from(a).to_be(),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            // SAFETY: `data` has room for an in_pktinfo (CMSG_SPACE above).
            unsafe { std::ptr::write_unaligned(data.cast(), info) };
        }
        IpAddr::V6(a) => {
            let info = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                ipi6_ifindex: ifindex,
            };
            // SAFETY: as above, for an in6_pktinfo.
            unsafe { std::ptr::write_unaligned(data.cast(), info) };
        }
    }
}

/// IPv4: the packet comes with its IP header.
fn recv_v4(fd: RawFd) -> io::Result<Option<Packet>> {
    let mut buf = [0u8; 2048];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let b = &buf[..n as usize];
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let ihl = usize::from(first & 0x0f) * 4;
    if b.len() < 20 || ihl < 20 || b.len() < ihl {
        return Ok(None);
    }
    let total = usize::from(u16::from_be_bytes([b[2], b[3]])).clamp(ihl, b.len());
    let ip4 = |o: usize| IpAddr::V4(Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]));
    Ok(Some(Packet {
        bytes: b[ihl..total].to_vec(),
        src: ip4(12),
        dst: ip4(16),
        ttl: b[8],
    }))
}

/// IPv6: the payload only; destination and hop limit from control messages.
fn recv_v6(fd: RawFd) -> io::Result<Option<Packet>> {
    let mut buf = [0u8; 2048];
    // SAFETY: all-zero sockaddr_in6 and msghdr are valid; pointers set below outlive the call.
    let mut from: libc::sockaddr_in6 = unsafe { zeroed() };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>();
    // SAFETY: `msg` describes valid buffers.
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let (mut dst, mut ttl) = (None, None);
    // SAFETY: walking the control messages the kernel wrote into `control`.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: a header within `control`, as CMSG_NXTHDR guarantees.
        let c = unsafe { &*cmsg };
        // SAFETY: the data of a header of the type checked.
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        match (c.cmsg_level, c.cmsg_type) {
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                // SAFETY: an in6_pktinfo follows an IPV6_PKTINFO header.
                let info: libc::in6_pktinfo = unsafe { std::ptr::read_unaligned(data.cast()) };
                dst = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                // SAFETY: an int follows an IPV6_HOPLIMIT header.
                let h: i32 = unsafe { std::ptr::read_unaligned(data.cast()) };
                ttl = u8::try_from(h).ok();
            }
            _ => {}
        }
        // SAFETY: as above.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    let src = IpAddr::V6(Ipv6Addr::from(from.sin6_addr.s6_addr));
    match (dst, ttl) {
        (Some(dst), Some(ttl)) => Ok(Some(Packet {
            bytes: buf[..n as usize].to_vec(),
            src,
            dst,
            ttl,
        })),
        _ => Ok(None),
    }
}
