//! The kernel calls VRRP needs, blocking and self-contained so that the
//! watchdog (a forked child without a runtime) uses the very same code:
//! addresses and links over a route netlink socket, interface facts
//! through ioctl and getifaddrs. Each takes microseconds.

use std::ffi::CString;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::sys::{Socket, protocols::NETLINK_ROUTE};
use rtnetlink::{AddressMessageBuilder, LinkMessageBuilder, LinkUnspec};

/// One address as VRRP owns it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Owned {
    pub ifindex: u32,
    pub address: IpAddr,
    pub prefix: u8,
    pub label: Option<String>,
}

/// `ip addr add`; already there is fine.
pub fn add_address(a: &Owned) -> io::Result<()> {
    let mut msg = address_message(a);
    if let Some(l) = &a.label {
        msg.attributes.push(AddressAttribute::Label(l.clone()));
    }
    if a.address.is_ipv6() {
        // As keepalived: no duplicate address detection for a moving address.
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    let flags = NLM_F_CREATE | NLM_F_EXCL;
    ignore(
        request(RouteNetlinkMessage::NewAddress(msg), flags),
        libc::EEXIST,
    )
}

/// `ip addr del`; already gone (or its interface) is fine.
pub fn del_address(a: &Owned) -> io::Result<()> {
    let r = request(RouteNetlinkMessage::DelAddress(address_message(a)), 0);
    ignore(ignore(r, libc::EADDRNOTAVAIL), libc::ENODEV)
}

fn address_message(a: &Owned) -> AddressMessage {
    match a.address {
        IpAddr::V4(v4) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(a.ifindex)
            .address(v4, a.prefix)
            .build(),
        IpAddr::V6(v6) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(a.ifindex)
            .address(v6, a.prefix)
            .build(),
    }
}

/// Creates a link (`ip link add ...`) from `msg`.
pub fn add_link(msg: LinkMessage) -> io::Result<()> {
    request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
}

/// Sets a link up or down.
pub fn set_link_up(index: u32, up: bool) -> io::Result<()> {
    let b = LinkMessageBuilder::<LinkUnspec>::new().index(index);
    let msg = if up { b.up() } else { b.down() }.build();
    request(RouteNetlinkMessage::SetLink(msg), 0)
}

/// Deletes a link; already gone is fine.
pub fn del_link(index: u32) -> io::Result<()> {
    let msg = LinkMessageBuilder::<LinkUnspec>::new().index(index).build();
    ignore(request(RouteNetlinkMessage::DelLink(msg), 0), libc::ENODEV)
}

fn ignore(r: io::Result<()>, errno: i32) -> io::Result<()> {
    match r {
        Err(e) if e.raw_os_error() == Some(errno) => Ok(()),
        r => r,
    }
}

/// Sends one request and waits for its acknowledgement.
fn request(msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
    let mut nl = NetlinkMessage::from(msg);
    nl.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    nl.header.sequence_number = 1;
    nl.finalize();
    let mut buf = vec![0; nl.buffer_len()];
    nl.serialize(&mut buf);
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.send(&buf, 0)?;
    let mut reply = Vec::with_capacity(4096);
    sock.recv(&mut reply, 0)?;
    let answer = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&reply)
        .map_err(|e| io::Error::other(format!("netlink answer: {e}")))?;
    match answer.payload {
        NetlinkPayload::Error(e) => match e.code {
            None => Ok(()),
            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
        },
        _ => Ok(()),
    }
}

/// An interface as VRRP needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub mac: [u8; 6],
    /// Administratively up with carrier (`IFF_UP` and `IFF_RUNNING`).
    pub up: bool,
}

/// The interface `name` in the calling thread's network namespace.
pub fn link(name: &str) -> io::Result<Link> {
    let c = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a NUL-terminated name; returns 0 when there is no such interface.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name}"),
        ));
    }
    let flags = ioctl(name, libc::SIOCGIFFLAGS)?;
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    let f = i32::from(unsafe { flags.ifr_ifru.ifru_flags });
    let hw = ioctl(name, libc::SIOCGIFHWADDR)?;
    // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
    let data = unsafe { hw.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (m, d) in mac.iter_mut().zip(data) {
        *m = d as u8;
    }
    let up = f & libc::IFF_UP != 0 && f & libc::IFF_RUNNING != 0;
    Ok(Link { index, mac, up })
}

fn ioctl(name: &str, request: libc::c_ulong) -> io::Result<libc::ifreq> {
    // SAFETY: an all-zero ifreq is valid; the name is copied bounded below.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req
        .ifr_name
        .iter_mut()
        .zip(name.bytes().take(libc::IFNAMSIZ - 1))
    {
        *dst = src as libc::c_char;
    }
    // SAFETY: a datagram socket for the ioctl, closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `req` is a valid ifreq for these two requests.
    let rc = unsafe { libc::ioctl(fd, request, &mut req) };
    let err = io::Error::last_os_error();
    // SAFETY: closing the descriptor made above.
    unsafe { libc::close(fd) };
    if rc < 0 { Err(err) } else { Ok(req) }
}

/// The addresses of interface `name`, in the kernel's order (primary first).
pub fn addresses(name: &str) -> io::Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        // SAFETY: ifa_name is a NUL-terminated string of the node.
        let ifname = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if ifname.to_bytes() == name.as_bytes()
            && let Some(ip) = sockaddr_ip(ifa.ifa_addr)
        {
            out.push(ip);
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: the list getifaddrs allocated, freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}

fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: a non-null sockaddr of getifaddrs; its family says which one it is.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*(sa as *const libc::sockaddr_in);
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))))
            }
            libc::AF_INET6 => {
                let sin6 = &*(sa as *const libc::sockaddr_in6);
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}
