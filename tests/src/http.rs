//! A tiny HTTP/1.1 backend that answers every request with its own name, and the client side used
//! against it (one-shot GETs and long-lived keep-alive connections), both inside namespaces.
//!
//! Only what the tests need: `Content-Length` bodies (no chunked encoding), persistent connections
//! by default for HTTP/1.1, `Connection: close` honoured both ways.

use std::collections::HashMap;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail, ensure};

use crate::netns::NetNs;

/// Largest request or response head either side accepts.
const MAX_HEAD: usize = 64 * 1024;
/// Timeout of [`HttpConn::open`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP server in a namespace whose every response body is `<name>\n`. Stops on drop.
#[derive(Debug)]
pub struct HttpBackend {
    name: String,
    addr: SocketAddr,
    listener: Arc<TcpListener>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    requests: AtomicU64,
    connections: AtomicU64,
    by_source: Mutex<HashMap<IpAddr, u64>>,
    /// The peer address of every connection accepted, in order.
    peers: Mutex<Vec<SocketAddr>>,
    /// Clones of the open connections, so drop can shut them down; keyed by connection number.
    open: Mutex<HashMap<u64, TcpStream>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl HttpBackend {
    /// Starts serving on `port` (0: any free port, see [`Self::port`]) of every address of `ns`,
    /// IPv4 and IPv6 (one dual-stack `[::]` socket).
    pub fn start(ns: &NetNs, name: &str, port: u16) -> Result<HttpBackend> {
        let listener = ns
            .try_run(|| TcpListener::bind((Ipv6Addr::UNSPECIFIED, port)))?
            .with_context(|| {
                format!(
                    "HTTP backend {name}: binding [::]:{port} in netns {}",
                    ns.name()
                )
            })?;
        let addr = listener.local_addr()?;
        let listener = Arc::new(listener);
        let shared = Arc::new(Shared::default());
        let accept = {
            let (listener, shared, name) = (listener.clone(), shared.clone(), name.to_owned());
            std::thread::Builder::new()
                .name(format!("http-{name}"))
                .spawn(move || accept_loop(&listener, &shared, &name))?
        };
        Ok(HttpBackend {
            name: name.to_owned(),
            addr,
            listener,
            shared,
            accept: Some(accept),
        })
    }

    /// The name it answers with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests answered so far (counted before the response is sent, so a client that has its
    /// answer sees it counted).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Requests answered per client address (IPv4 clients appear as IPv4, not v4-mapped).
    pub fn requests_by_source(&self) -> HashMap<IpAddr, u64> {
        self.shared.by_source.lock().expect("lock").clone()
    }

    /// The address and port each connection came from, in accept order (IPv4 as IPv4).
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.shared.peers.lock().expect("lock").clone()
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // On Linux, shutting down a listening socket wakes a thread blocked in accept(2) (EINVAL).
        // SAFETY: the descriptor belongs to `self.listener`, which is alive; shutdown(2) takes no
        // pointers.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for conn in self.shared.open.lock().expect("lock").values() {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        let workers = std::mem::take(&mut *self.shared.workers.lock().expect("lock"));
        for w in workers {
            let _ = w.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, name: &str) {
    let mut next_id = 0u64;
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let (stream, peer) = match accepted {
            Ok(c) => c,
            // ECONNABORTED and friends: a client gave up; keep serving the others (after a pause,
            // in case it is EMFILE and would otherwise spin).
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        shared.peers.lock().expect("lock").push(peer);
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let id = next_id;
        next_id += 1;
        let Ok(clone) = stream.try_clone() else {
            continue;
        };
        shared.open.lock().expect("lock").insert(id, clone);
        let (shared2, name) = (shared.clone(), name.to_owned());
        let worker = std::thread::Builder::new()
            .name(format!("http-{name}-{id}"))
            .spawn(move || {
                let _ = serve(stream, peer.ip().to_canonical(), &shared2, &name);
                shared2.open.lock().expect("lock").remove(&id);
            });
        let mut workers = shared.workers.lock().expect("lock");
        workers.retain(|w| !w.is_finished());
        match worker {
            Ok(w) => workers.push(w),
            Err(_) => {
                shared.open.lock().expect("lock").remove(&id);
            }
        }
    }
}

/// Answers requests on one connection until the client closes, asks to close, or the server stops.
fn serve(stream: TcpStream, peer: IpAddr, shared: &Shared, name: &str) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let body = format!("{name}\n");
    while let Some(req) = read_request(&mut reader)? {
        shared.requests.fetch_add(1, Ordering::SeqCst);
        *shared
            .by_source
            .lock()
            .expect("lock")
            .entry(peer)
            .or_default() += 1;
        let close = req.close || shared.stop.load(Ordering::SeqCst);
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nX-Backend: {name}\r\n",
            body.len()
        );
        if close {
            resp.push_str("Connection: close\r\n");
        }
        resp.push_str("\r\n");
        if req.method != "HEAD" {
            resp.push_str(&body);
        }
        writer.write_all(resp.as_bytes())?;
        if close {
            break;
        }
    }
    Ok(())
}

struct Request {
    method: String,
    /// The connection must close after the response.
    close: bool,
}

/// Reads one request (head and `Content-Length` body); `None` at a clean end of stream.
fn read_request(r: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let Some(head) = read_head(r)? else {
        return Ok(None);
    };
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut words = request_line.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let version = words.nth(1).unwrap_or_default();
    // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    let mut close = version != "HTTP/1.1";
    let mut length = 0usize;
    for (name, value) in lines.filter_map(|l| l.split_once(':')) {
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| invalid(format!("bad Content-Length {value:?}")))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Not supported; answer, then close rather than misread the body as requests.
            close = true;
        }
    }
    io::copy(&mut r.by_ref().take(length as u64), &mut io::sink())?;
    Ok(Some(Request { method, close }))
}

/// Reads up to and including the blank line ending a head; `None` if the stream ends first
/// without any byte of it.
pub fn read_head(r: &mut BufReader<TcpStream>) -> io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let n = r
            .by_ref()
            .take((MAX_HEAD - head.len()) as u64 + 1)
            .read_line(&mut head)?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        if head.len() > MAX_HEAD {
            return Err(invalid(format!("head longer than {MAX_HEAD} bytes")));
        }
        if head.ends_with("\r\n\r\n") || head.ends_with("\n\n") || head == "\r\n" || head == "\n" {
            // Tolerate stray blank lines between requests (RFC 9112 §2.2).
            if head.trim().is_empty() {
                head.clear();
                continue;
            }
            return Ok(Some(head));
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One `GET /` from inside `ns` (from source address `src` if given) to `dst` with
/// `Connection: close`; returns the body, trimmed. Any status but 200 is an error.
pub fn http_get(
    ns: &NetNs,
    src: Option<IpAddr>,
    dst: SocketAddr,
    timeout: Duration,
) -> Result<String> {
    let what = || match src {
        Some(src) => format!("GET http://{dst}/ from {src} in netns {}", ns.name()),
        None => format!("GET http://{dst}/ in netns {}", ns.name()),
    };
    let stream = ns
        .try_run(|| connect(src, dst, timeout))?
        .with_context(what)?;
    let mut reader = BufReader::new(stream);
    exchange(&mut reader, dst, true).with_context(what)
}

/// A keep-alive HTTP connection: every [`Self::get`] is one request over the same TCP connection.
#[derive(Debug)]
pub struct HttpConn {
    reader: BufReader<TcpStream>,
    local: SocketAddr,
    dst: SocketAddr,
}

impl HttpConn {
    /// Connects from inside `ns` (from source address `src` if given) to `dst`, waiting up to
    /// [`DEFAULT_TIMEOUT`] for the connection and for every later response.
    pub fn open(ns: &NetNs, src: Option<IpAddr>, dst: SocketAddr) -> Result<HttpConn> {
        HttpConn::open_timeout(ns, src, dst, DEFAULT_TIMEOUT)
    }

    /// Like [`Self::open`] with another timeout.
    pub fn open_timeout(
        ns: &NetNs,
        src: Option<IpAddr>,
        dst: SocketAddr,
        timeout: Duration,
    ) -> Result<HttpConn> {
        let stream = ns
            .try_run(|| connect(src, dst, timeout))?
            .with_context(|| format!("connecting to {dst} from {src:?} in netns {}", ns.name()))?;
        let local = stream.local_addr()?;
        Ok(HttpConn {
            reader: BufReader::new(stream),
            local,
            dst,
        })
    }

    /// `GET /` over this connection, keeping it open; returns the body, trimmed.
    pub fn get(&mut self) -> Result<String> {
        exchange(&mut self.reader, self.dst, false)
            .with_context(|| format!("GET http://{}/ on connection from {}", self.dst, self.local))
    }

    /// The connection's local (source) address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// Sends `GET /` and reads the response; `close` asks the server to close afterwards.
fn exchange(reader: &mut BufReader<TcpStream>, dst: SocketAddr, close: bool) -> Result<String> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    let request =
        format!("GET / HTTP/1.1\r\nHost: {dst}\r\nUser-Agent: lb-tests\r\n{connection}\r\n");
    reader
        .get_mut()
        .write_all(request.as_bytes())
        .context("sending request")?;
    let head = read_head(reader)
        .context("reading response head")?
        .ok_or_else(|| anyhow!("connection closed"))?;
    let status_line = head.lines().next().unwrap_or_default();
    let length = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse::<usize>())
        .transpose()
        .context("bad Content-Length")?;
    let mut body = Vec::new();
    match length {
        Some(n) => {
            ensure!(
                n <= MAX_HEAD,
                "body of {n} bytes is more than a test backend sends"
            );
            body.resize(n, 0);
            reader.read_exact(&mut body).context("reading body")?;
        }
        None if close => {
            reader.read_to_end(&mut body).context("reading body")?;
        }
        None => bail!("response without Content-Length on a keep-alive connection: {status_line}"),
    }
    let body = String::from_utf8_lossy(&body).trim().to_owned();
    if status_line.split_whitespace().nth(1) != Some("200") {
        bail!("{status_line}: {body}");
    }
    Ok(body)
}

/// Connects to `dst` from `src` (any local address if `None`), giving up after `timeout`; the
/// stream keeps `timeout` as its read and write timeout. Must run inside the namespace.
pub fn connect(src: Option<IpAddr>, dst: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = match src {
        None => TcpStream::connect_timeout(&dst, timeout)?,
        Some(src) => connect_from(src, dst, timeout)?,
    };
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `TcpStream::connect_timeout` with a `bind(2)` to `src` first (std has no bind-before-connect).
fn connect_from(src: IpAddr, dst: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("source {src} and {dst} differ in family"),
        ));
    }
    let domain = if dst.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) takes no pointers; the result is checked before use.
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let stream = TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    // Let connect() pick the source port for the whole 4-tuple, not bind() for the address alone:
    // many connections from few aliases would otherwise run out of ports early.
    let one: libc::c_int = 1;
    // SAFETY: the option value points at a live c_int whose size is passed along.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const one).cast(),
            size_of_val(&one) as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `with_sockaddr` passes a pointer to a live sockaddr of the given length.
    let rc = with_sockaddr(SocketAddr::new(src, 0), |sa, len| unsafe {
        libc::bind(fd, sa, len)
    });
    if rc != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("bind to {src}: {e}")));
    }
    // Linux bounds a blocking connect(2) by SO_SNDTIMEO and then fails with EINPROGRESS.
    stream.set_write_timeout(Some(timeout))?;
    // SAFETY: as for bind above.
    let rc = with_sockaddr(dst, |sa, len| unsafe { libc::connect(fd, sa, len) });
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINPROGRESS) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect timed out after {timeout:?}"),
            ));
        }
        return Err(e);
    }
    Ok(stream)
}

/// Calls `f` with a pointer to the C socket address of `addr` and its length.
fn with_sockaddr<R>(
    addr: SocketAddr,
    f: impl FnOnce(*const libc::sockaddr, libc::socklen_t) -> R,
) -> R {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            f(
                (&raw const sin).cast(),
                size_of_val(&sin) as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            f(
                (&raw const sin6).cast(),
                size_of_val(&sin6) as libc::socklen_t,
            )
        }
    }
}
