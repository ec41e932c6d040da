//! Where a connection to a server comes from (the pool's `source`), and
//! the connect that honours it: a plain connect when there is none (the
//! common case costs nothing more), else a socket bound first — to a local
//! address, or with `IP_TRANSPARENT` to a foreign one such as the
//! client's own (`usesrc clientip`).
//!
//! A transparent socket needs `CAP_NET_RAW` (or `CAP_NET_ADMIN`) on the
//! thread that sets the option; the proxy's threads keep `CAP_NET_RAW`
//! only when the configuration they started with has a `usesrc`
//! (crate::confine). The server's replies reach such a socket only if the
//! servers route the client's network back through this host and the host
//! delivers them locally (docs/proxy.md, "Transparent proxying").

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd as _, FromRawFd as _, IntoRawFd as _};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use lb_config::proxy::{Source, UseSrc};
use tokio::net::{TcpSocket, TcpStream};

/// The address a connection is bound to before connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// None: the kernel picks, as without `source`.
    Any,
    /// One of this host's addresses (port 0: any free port).
    Local(SocketAddr),
    /// An address that need not be this host's (`usesrc`).
    Foreign(SocketAddr),
}

impl Origin {
    /// Where a connection from `client` comes from under `source`.
    pub(crate) fn of(source: Option<&Source>, client: SocketAddr) -> Origin {
        let Some(s) = source.filter(|s| !s.is_noop()) else {
            return Origin::Any;
        };
        let client = SocketAddr::new(client.ip().to_canonical(), client.port());
        match s.usesrc {
            None => Origin::Local(s.addr),
            Some(UseSrc::ClientIp) => Origin::Foreign(SocketAddr::new(client.ip(), 0)),
            Some(UseSrc::Client) => Origin::Foreign(client),
            Some(UseSrc::Addr(a)) => Origin::Foreign(a),
        }
    }

    /// Which idle connections a request may reuse: only those bound the
    /// same way, so no request leaves from another client's address
    /// (HAProxy keys its idle connections by source address too). `None`
    /// for every connection the kernel addressed.
    pub(crate) fn key(self) -> Option<SocketAddr> {
        match self {
            Origin::Any => None,
            Origin::Local(a) | Origin::Foreign(a) => Some(a),
        }
    }
}

/// Connects to `addr` from `origin`. A failure to bind says which source
/// failed and, for the usual causes, what to do about it; the first one
/// is logged as a warning (`warned` remembers it: a wrong source fails
/// every connection, and one line says it), the next ones as connect
/// failures are.
pub(crate) async fn connect(
    addr: SocketAddr,
    origin: Origin,
    warned: &AtomicBool,
) -> io::Result<TcpStream> {
    socket(addr, origin, warned)?.connect(addr).await
}

/// Starts connecting to `addr` from `origin` (as [`connect`]) for a
/// request that is ready to go, without waiting for the handshake: the
/// stream returned, watched by this thread's event loop, may still be
/// connecting, and the first write tells. The handshake's last ACK is held
/// back (`TCP_QUICKACK` off, HAProxy's `option tcp-smart-connect`) so it
/// leaves with the request in one segment; only for protocols where the
/// client speaks first, which HTTP is.
pub(crate) fn start(
    addr: SocketAddr,
    origin: Origin,
    warned: &AtomicBool,
) -> io::Result<TcpStream> {
    let socket = socket(addr, origin, warned)?;
    let s = socket2::SockRef::from(&socket);
    // Heads and bodies are written whole; waiting to coalesce small writes
    // only adds latency.
    s.set_tcp_nodelay(true)?;
    s.set_tcp_quickack(false)?;
    match s.connect(&addr.into()) {
        Err(e) if e.raw_os_error() != Some(libc::EINPROGRESS) => return Err(e),
        _ => {}
    }
    // SAFETY: the descriptor is `socket`'s own, given up by `into_raw_fd`,
    // so the stream is its only owner.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(socket.into_raw_fd()) };
    TcpStream::from_std(stream)
}

/// A socket of `addr`'s family, bound as `origin` says (see [`connect`]
/// for the errors).
fn socket(addr: SocketAddr, origin: Origin, warned: &AtomicBool) -> io::Result<TcpSocket> {
    let (from, foreign) = match origin {
        Origin::Any if addr.is_ipv4() => return TcpSocket::new_v4(),
        Origin::Any => return TcpSocket::new_v6(),
        Origin::Local(a) => (a, false),
        Origin::Foreign(a) => (a, true),
    };
    bound(addr, from, foreign).map_err(|e| {
        let e = explain(e, from, addr, foreign);
        if !warned.swap(true, Relaxed) {
            tracing::warn!(server = %addr, error = %e, "cannot connect from the pool's `source`");
        }
        e
    })
}

/// A socket of `server`'s family bound to `from`.
fn bound(server: SocketAddr, from: SocketAddr, foreign: bool) -> io::Result<TcpSocket> {
    // `0.0.0.0:PORT` (a port, any address) means the wildcard of the
    // server's family.
    let from = if from.ip().is_unspecified() && from.is_ipv4() != server.is_ipv4() {
        let any: IpAddr = match server.ip() {
            IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
            IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
        };
        SocketAddr::new(any, from.port())
    } else {
        from
    };
    if from.is_ipv4() != server.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "it is not of the server's address family",
        ));
    }
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As HAProxy: a fixed source port may serve several servers at once.
    socket.set_reuseaddr(true)?;
    if foreign {
        let s = socket2::SockRef::from(&socket);
        if server.is_ipv4() {
            s.set_ip_transparent_v4(true)?;
        } else {
            s.set_ip_transparent_v6(true)?;
        }
    }
    if from.port() == 0 {
        no_port_yet(&socket)?;
    }
    socket.bind(from)?;
    Ok(socket)
}

/// `IP_BIND_ADDRESS_NO_PORT`: the port is chosen at connect time, for the
/// whole 4-tuple, so one source address serves more than 64k connections
/// across servers (without it, bind reserves a port for every server).
fn no_port_yet(socket: &TcpSocket) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid descriptor owned by `socket`; the option value is a
    // c_int that lives across the call, with its size given.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `e` with the source in it, and the fix for the usual causes.
fn explain(e: io::Error, from: SocketAddr, server: SocketAddr, foreign: bool) -> io::Error {
    let hint = match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) if foreign => {
            "; `usesrc` needs CAP_NET_RAW, which the proxy's threads keep only when the \
             configuration the agent started with has a `usesrc` (restart the agent)"
        }
        Some(libc::EADDRNOTAVAIL) if !foreign => {
            "; the address is not one of this host's (`usesrc ADDR` presents a foreign one)"
        }
        Some(libc::EADDRINUSE) => "; a fixed source port allows one connection per server",
        _ => "",
    };
    let what = if foreign {
        "transparent source"
    } else {
        "source"
    };
    io::Error::new(
        e.kind(),
        format!("binding to {what} {from} to reach {server}: {e}{hint}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        text.parse().expect("a source")
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn each_form_binds_where_haproxy_does() {
        let client = addr("[::ffff:198.51.100.9]:40000");
        let of = |text: &str| Origin::of(Some(&source(text)), client);
        assert_eq!(Origin::of(None, client), Origin::Any);
        assert_eq!(of("0.0.0.0"), Origin::Any);
        assert_eq!(of("192.0.2.1"), Origin::Local(addr("192.0.2.1:0")));
        assert_eq!(
            of("0.0.0.0 usesrc clientip"),
            Origin::Foreign(addr("198.51.100.9:0")),
            "an IPv4 client on a dual-stack listener is presented as IPv4"
        );
        assert_eq!(
            of("0.0.0.0 usesrc client"),
            Origin::Foreign(addr("198.51.100.9:40000"))
        );
        assert_eq!(
            of("0.0.0.0 usesrc 203.0.113.5"),
            Origin::Foreign(addr("203.0.113.5:0"))
        );
        assert_eq!(Origin::Any.key(), None);
        assert_eq!(of("192.0.2.1").key(), Some(addr("192.0.2.1:0")));
    }

    #[tokio::test]
    async fn a_local_source_is_the_address_the_server_sees() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let to = listener.local_addr().expect("an address");
        let from = addr("127.0.0.2:0");
        let _conn = connect(to, Origin::Local(from), &AtomicBool::new(false))
            .await
            .expect("connect");
        let (_, peer) = listener.accept().await.expect("accept");
        assert_eq!(peer.ip(), from.ip());
    }

    #[tokio::test]
    async fn a_source_this_host_lacks_fails_with_the_reason() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let to = listener.local_addr().expect("an address");
        let warned = AtomicBool::new(false);
        let err = connect(to, Origin::Local(addr("192.0.2.77:0")), &warned)
            .await
            .expect_err("TEST-NET-1 is no address of this host");
        let text = err.to_string();
        assert!(
            text.contains("192.0.2.77") && text.contains("not one of this host's"),
            "{text}"
        );
        assert!(warned.load(Relaxed), "the failure was logged");
        let err = connect(to, Origin::Local(addr("[2001:db8::1]:0")), &warned)
            .await
            .expect_err("an IPv6 source for an IPv4 server");
        assert!(err.to_string().contains("address family"), "{err}");
    }
}
