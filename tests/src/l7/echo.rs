//! A test server for the L7 tests: it answers every request with its own
//! name and the request head exactly as it arrived, so a test sees which
//! server a proxy chose and what the proxy changed on the way. The request
//! steers the answer, so one server serves every case:
//!
//! - `X-Reply: NAME: VALUE` (any number) adds `NAME: VALUE` to the
//!   response, as an application's own `Set-Cookie` or `Cache-Control`;
//! - `X-Delay-Ms: N` answers after N ms (a slow server).
//!
//! It counts requests and the most it served at once (`maxconn` tests).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, Result};

/// One echo server; stops (closing its listener and every connection) on
/// drop or [`EchoServer::kill`].
pub struct EchoServer {
    name: String,
    addr: SocketAddr,
    listener: Arc<TcpListener>,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    requests: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    open: Mutex<Vec<TcpStream>>,
}

impl EchoServer {
    /// Serves on `addr` (port 0: a free one, see [`EchoServer::addr`]).
    pub fn start(name: &str, addr: SocketAddr) -> Result<EchoServer> {
        let listener = TcpListener::bind(addr)
            .with_context(|| format!("echo server {name}: binding {addr}"))?;
        let addr = listener.local_addr()?;
        let listener = Arc::new(listener);
        let shared = Arc::new(Shared::default());
        let accept = {
            let (l, s, n) = (listener.clone(), shared.clone(), name.to_owned());
            std::thread::Builder::new()
                .name(format!("echo-{name}"))
                .spawn(move || accept_loop(&l, &s, &n))?
        };
        Ok(EchoServer {
            name: name.to_owned(),
            addr,
            listener,
            shared,
            accept: Some(accept),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered (counted before the answer is written).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The most requests it was serving at one time.
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Stops as a killed process would: the port refuses connections and
    /// every open connection is reset or closed.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // shutdown(2) on a listening socket wakes a thread blocked in accept.
        // SAFETY: the descriptor is the live listener's; no pointers passed.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        for c in self.shared.open.lock().expect("lock").drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, name: &str) {
    for conn in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        if let Ok(c) = conn.try_clone() {
            let mut open = shared.open.lock().expect("lock");
            open.retain(|s| s.peer_addr().is_ok());
            open.push(c);
        }
        let (shared, name) = (shared.clone(), name.to_owned());
        let _ = std::thread::Builder::new()
            .name(format!("echo-{name}-conn"))
            .spawn(move || serve(conn, &shared, &name));
    }
}

/// One request head as received, and what it asks of the answer.
struct Request {
    head: String,
    body_len: usize,
    close: bool,
    delay: Option<Duration>,
    reply: Vec<String>,
}

fn serve(conn: TcpStream, shared: &Shared, name: &str) {
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut r = BufReader::new(conn);
    while let Some(req) = read_request(&mut r) {
        let mut body = vec![0; req.body_len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if let Some(d) = req.delay {
            std::thread::sleep(d);
        }
        shared.requests.fetch_add(1, Ordering::SeqCst);
        // Done before the answer leaves: once the proxy has it, it may send
        // this server the next request, which must not count this one.
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        let ok = out.write_all(&answer(name, &req)).is_ok();
        if !ok || req.close || shared.stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

fn answer(name: &str, req: &Request) -> Vec<u8> {
    let body = format!("server={name}\n{}", req.head);
    let mut extra = String::new();
    for line in &req.reply {
        extra.push_str(line);
        extra.push_str("\r\n");
    }
    let conn = if req.close {
        "Connection: close\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{conn}{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reads one head (lines up to the blank one); `None` at the end of the
/// connection or on anything this simple server does not read.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut req = Request {
        head: String::new(),
        body_len: 0,
        close: false,
        delay: None,
        reply: Vec::new(),
    };
    let mut first = true;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            return Some(req);
        }
        if first {
            req.close = text.ends_with("HTTP/1.0");
            first = false;
        } else if let Some((name, value)) = text.split_once(':') {
            header(&mut req, name, value.trim());
        }
        req.head.push_str(text);
        req.head.push('\n');
    }
}

fn header(req: &mut Request, name: &str, value: &str) {
    match name.to_ascii_lowercase().as_str() {
        "content-length" => req.body_len = value.parse().unwrap_or(0),
        "connection" => req.close = value.eq_ignore_ascii_case("close"),
        "x-delay-ms" => req.delay = value.parse().ok().map(Duration::from_millis),
        "x-reply" => req.reply.push(value.to_owned()),
        _ => {}
    }
}
