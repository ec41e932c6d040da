//! Real servers for the health-check tests, each inside a backend's
//! namespace — an HTTP server whose status the test flips, small Python
//! servers (a TCP listener to kill, HTTPS with a self-signed certificate),
//! MariaDB — and the agent's view of a backend, polled until it says what a
//! test waits for.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use serde_json::Value;

use crate::agent::Agent;
use crate::netns::NetNs;

/// An HTTP/1.1 server answering every request with the status the test
/// sets, a chunked body `status=<code>` and `Connection: close`.
pub struct FlipServer {
    shared: Arc<Flip>,
    listener: Arc<TcpListener>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Flip {
    status: AtomicU16,
    requests: AtomicU64,
    last_request: Mutex<String>,
    stop: AtomicBool,
}

impl FlipServer {
    /// Listens on `addr` inside `ns`, answering `status`.
    pub fn start(ns: &NetNs, addr: SocketAddr, status: u16) -> Result<FlipServer> {
        let listener = ns
            .try_run(|| TcpListener::bind(addr))?
            .with_context(|| format!("binding {addr} in {}", ns.name()))?;
        let listener = Arc::new(listener);
        let shared = Arc::new(Flip::default());
        shared.status.store(status, Ordering::SeqCst);
        let accept = {
            let (listener, shared) = (listener.clone(), shared.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if shared.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(conn) = conn {
                        let _ = answer(conn, &shared);
                    }
                }
            })
        };
        Ok(FlipServer {
            shared,
            listener,
            accept: Some(accept),
        })
    }

    pub fn set_status(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The head of the last request.
    pub fn last_request(&self) -> String {
        self.shared.last_request.lock().expect("lock").clone()
    }
}

fn answer(conn: TcpStream, shared: &Flip) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        if reader.read_line(&mut head)? == 0 {
            return Ok(());
        }
    }
    let status = shared.status.load(Ordering::SeqCst);
    *shared.last_request.lock().expect("lock") = head;
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let body = format!("status={status}\n");
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status} Flipped\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
}

impl Drop for FlipServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // SAFETY: the descriptor is the live listener's; shutdown(2) wakes accept(2).
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// A TCP listener that accepts and closes, as its own process (to be killed).
pub const PY_LISTENER: &str = "import socket, sys
s = socket.socket(socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
print('ready', flush=True)
while True:
    s.accept()[0].close()
";

/// `http.server` over TLS: address, port, certificate, key.
pub const PY_HTTPS: &str = "import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b'tls ok\\n'
        self.send_response(200)
        self.send_header('Content-Length', str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[3], sys.argv[4])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print('ready', flush=True)
srv.serve_forever()
";

/// A Python program running in a namespace; killed on drop.
pub struct Python(Child);

impl Python {
    /// Runs `code` with `args` in `ns` and waits for it to print `ready`.
    pub fn start(ns: &NetNs, code: &str, args: &[&str]) -> Result<Python> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "python3", "-c", code])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .context("starting python3")?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("stdout")?;
        BufReader::new(stdout).read_line(&mut line)?;
        let p = Python(child);
        ensure!(line.trim() == "ready", "python3 did not start: {line:?}");
        Ok(p)
    }

    /// SIGKILL, and reaped.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `cmd`, which must succeed; its output.
fn run(cmd: &mut Command, what: &str) -> Result<std::process::Output> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    ensure!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out)
}

/// A self-signed certificate for `ip` (CN `lb-test`), made with openssl:
/// `(certificate, key)` paths in `dir`.
pub fn self_signed(dir: &Path, ip: IpAddr) -> Result<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    run(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=lb-test", "-addext"])
            .arg(format!("subjectAltName=IP:{ip}"))
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        "openssl req (Debian package openssl)",
    )?;
    Ok((cert, key))
}

/// MariaDB in a namespace with its own data directory; stopped on drop.
pub struct Mariadb {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
}

impl Mariadb {
    /// `mariadb-install-db` into a fresh directory, then `mariadbd` bound to
    /// `addr:port` inside `ns` (as root), with `extra` options; returns once
    /// it answers on its socket.
    pub fn start(ns: &NetNs, addr: IpAddr, port: u16, extra: &[&str]) -> Result<Mariadb> {
        let dir = std::env::temp_dir().join(format!("lb-mariadb-{}", ns.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let data = dir.join("data");
        run(
            Command::new("mariadb-install-db")
                .args(["--no-defaults", "--user=root", "--skip-test-db"])
                .arg("--auth-root-authentication-method=normal")
                .arg(format!("--datadir={}", data.display())),
            "mariadb-install-db (Debian package mariadb-server)",
        )?;
        let socket = dir.join("mysqld.sock");
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), "mariadbd", "--no-defaults"])
            .args([
                "--user=root",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", dir.join("error.log").display()))
            .arg(format!("--bind-address={addr}"))
            .arg(format!("--port={port}"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting mariadbd")?;
        let db = Mariadb {
            child: Some(child),
            dir,
            socket,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Err(e) = db.sql("SELECT 1") {
            ensure!(
                Instant::now() < deadline,
                "mariadbd did not answer within 60 s ({e}): {}",
                db.error_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(db)
    }

    /// One statement as root over the unix socket; the rows, tab-separated.
    pub fn sql(&self, statement: &str) -> Result<String> {
        let out = run(
            Command::new("mariadb")
                .args(["--no-defaults", "-uroot", "-N", "-B"])
                .arg(format!("--socket={}", self.socket.display()))
                .args(["-e", statement]),
            statement,
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// A global status counter, e.g. `Aborted_connects`.
    pub fn counter(&self, name: &str) -> Result<u64> {
        let row = self.sql(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))?;
        let value = row.split('\t').nth(1).unwrap_or_default();
        value.parse().with_context(|| format!("{name}: {row:?}"))
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// SIGTERM (a clean shutdown), and waits for it.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill(2) on our own child's pid; takes no pointers.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait()?;
        ensure!(status.success(), "mariadbd exited with {status}");
        Ok(())
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `done` every 20 ms until it holds; panics after `timeout`, naming
/// `what` and what `done` last said about it.
pub fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    loop {
        let Err(last) = done() else { return };
        if Instant::now() > deadline {
            panic!("not {what} within {timeout:?}: {last}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Backend `name` of pool `pool` as `lb-ctl -o json status` shows it.
pub fn backend(agent: &Agent, pool: &str, name: &str) -> Value {
    let status = agent.json(&["status"]);
    let pools = status["pools"].as_array().cloned().unwrap_or_default();
    pools
        .iter()
        .filter(|p| p["name"] == pool)
        .flat_map(|p| p["backends"].as_array().cloned().unwrap_or_default())
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("no backend {pool}/{name} in {status:#}"))
}

/// Polls `backend` until `pred` holds (every 20 ms, at most `timeout`);
/// returns what it saw, or fails showing the last status and the agent's log.
pub fn wait_backend(
    agent: &Agent,
    pool: &str,
    name: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let mut seen = Value::Null;
    wait_until(timeout, &format!("{pool}/{name} {what}"), || {
        seen = backend(agent, pool, name);
        if pred(&seen) {
            return Ok(());
        }
        Err(format!("{seen:#}\n--- agent log ---\n{}", agent.log()))
    });
    seen
}

/// The last check's failure kind (`None`: it passed or none ran yet).
pub fn last_failure(b: &Value) -> Option<String> {
    b["check"]["last"]["failure"]["kind"]
        .as_str()
        .map(str::to_owned)
}

/// Events of `kind` (`health`, `backend_state`) about `pool/backend`.
pub fn events_about(agent: &Agent, kind: &str, pool: &str, backend: &str) -> Vec<Value> {
    agent
        .events()
        .into_iter()
        .filter(|e| e["type"] == kind && e["pool"] == pool && e["backend"] == backend)
        .collect()
}

/// Whether process `pid` still runs (absent and zombie both count as not).
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// Whether `pid` exists at all (a zombie does).
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
