//! Receivers for the notification tests, inside the LB's namespace where
//! the agent runs: a real SMTP server (Debian's aiosmtpd), a webhook that
//! records what it is sent, servers that accept and never answer, and
//! scripts that log their arguments.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::health::Python;
use crate::netns::NetNs;

/// An aiosmtpd server (address, port, directory) that writes each message
/// it accepts as `<n>.json` into the directory: the envelope, the raw data,
/// and the headers and body as Python's `email` package decodes them.
const PY_SMTP_SERVER: &str = "import email, email.policy, json, os, sys, threading
from aiosmtpd.controller import Controller
class Keep:
    async def handle_DATA(self, server, session, envelope):
        d = sys.argv[3]
        n = len([f for f in os.listdir(d) if f.endswith('.json')])
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        m = {'from': envelope.mail_from, 'to': envelope.rcpt_tos,
             'data': envelope.content.decode('utf-8', 'replace'),
             'headers': {k.lower(): str(v) for k, v in msg.items()},
             'body': msg.get_content()}
        with open(os.path.join(d, 'tmp'), 'w') as f:
            json.dump(m, f)
        os.rename(os.path.join(d, 'tmp'), os.path.join(d, '%04d.json' % n))
        return '250 OK'
c = Controller(Keep(), hostname=sys.argv[1], port=int(sys.argv[2]))
c.start()
print('ready', flush=True)
threading.Event().wait()
";

/// Runs `SERVER` with Debian's interpreter: `python3-aiosmtpd` is installed
/// for it, and the first `python3` on PATH may be another (pyenv).
const PY_DEBIAN: &str = "import os, sys
if os.path.realpath(sys.executable) != os.path.realpath('/usr/bin/python3'):
    os.execv('/usr/bin/python3', ['/usr/bin/python3', '-c', SERVER] + sys.argv[1:])
exec(SERVER)
";

/// A real SMTP server on `127.0.0.1:port` of a namespace; stops on drop.
pub struct SmtpSink {
    _server: Python,
    dir: PathBuf,
}

/// One message as the SMTP server received it.
#[derive(Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, as sent.
    pub data: String,
    /// Decoded header values by lowercase name.
    pub headers: BTreeMap<String, String>,
    /// The decoded text body, lines ending in `\n`.
    pub body: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

impl SmtpSink {
    pub fn start(ns: &NetNs, port: u16, dir: &Path) -> Result<SmtpSink> {
        std::fs::create_dir_all(dir)?;
        let code = format!("SERVER = {PY_SMTP_SERVER:?}\n{PY_DEBIAN}");
        let server = Python::start(
            ns,
            &code,
            &["127.0.0.1", &port.to_string(), &dir.display().to_string()],
        )
        .context("starting aiosmtpd (Debian package python3-aiosmtpd)")?;
        Ok(SmtpSink {
            _server: server,
            dir: dir.to_owned(),
        })
    }

    /// The messages received so far, in order.
    pub fn mails(&self) -> Result<Vec<Mail>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names.iter().map(|p| read_mail(p)).collect()
    }

    /// Waits until `n` messages arrived.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Result<Vec<Mail>> {
        wait_until(timeout, || {
            let m = self.mails()?;
            Ok((m.len() >= n).then_some(m))
        })
        .with_context(|| format!("waiting for {n} mail(s) in {}", self.dir.display()))
    }
}

fn read_mail(path: &Path) -> Result<Mail> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let headers = v["headers"].as_object().into_iter().flatten();
    Ok(Mail {
        from: text(&v["from"]),
        to: v["to"].as_array().into_iter().flatten().map(text).collect(),
        data: text(&v["data"]),
        headers: headers.map(|(k, v)| (k.clone(), text(v))).collect(),
        body: text(&v["body"]).replace("\r\n", "\n"),
    })
}

/// Calls `f` until it returns something, every 50 ms, for up to `timeout`.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("not within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A TCP listener in a namespace whose accept loop hands each connection
/// to `serve`; stops on drop.
struct Listener {
    listener: Arc<TcpListener>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Listener {
    fn start(
        ns: &NetNs,
        addr: SocketAddr,
        mut serve: impl FnMut(TcpStream) + Send + 'static,
    ) -> Result<Listener> {
        let listener = ns
            .try_run(|| TcpListener::bind(addr))?
            .with_context(|| format!("binding {addr} in {}", ns.name()))?;
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (listener, stop) = (listener.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(c) = conn {
                        serve(c);
                    }
                }
            })
        };
        Ok(Listener {
            listener,
            stop,
            accept: Some(accept),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // SAFETY: the descriptor is the live listener's; shutdown(2) wakes accept(2).
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// A server that accepts connections and never says a word: a hung SMTP
/// server or webhook.
pub struct Hang {
    _listener: Listener,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Hang {
    pub fn start(ns: &NetNs, addr: SocketAddr) -> Result<Hang> {
        let held = Arc::new(Mutex::new(Vec::new()));
        let keep = held.clone();
        let listener = Listener::start(ns, addr, move |c| keep.lock().expect("lock").push(c))?;
        Ok(Hang {
            _listener: listener,
            held,
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.held.lock().expect("lock").len()
    }
}

/// A webhook: answers each POST with the next status of a list (the last
/// one from then on) and keeps every body.
pub struct HookSink {
    _listener: Listener,
    bodies: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicUsize>,
}

impl HookSink {
    pub fn start(ns: &NetNs, addr: SocketAddr, statuses: &[u16]) -> Result<HookSink> {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let (keep, count, statuses) = (bodies.clone(), requests.clone(), statuses.to_vec());
        let listener = Listener::start(ns, addr, move |c| {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let status = statuses[n.min(statuses.len() - 1)];
            if let Ok(body) = answer(c, status)
                && (200..300).contains(&status)
            {
                keep.lock().expect("lock").push(body);
            }
        })?;
        Ok(HookSink {
            _listener: listener,
            bodies,
            requests,
        })
    }

    /// POSTs received, answered whatever way.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits until `n` POSTs were accepted (2xx); their JSON bodies.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Result<Vec<Value>> {
        wait_until(timeout, || {
            let b = self.bodies.lock().expect("lock").clone();
            Ok((b.len() >= n).then_some(b))
        })
        .with_context(|| format!("waiting for {n} webhook POST(s)"))
    }
}

/// Reads one request (head and `Content-Length` body), answers `status`;
/// the body as JSON, with the head's content type and method checked.
fn answer(conn: TcpStream, status: u16) -> Result<Value> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        if reader.read_line(&mut head)? == 0 {
            bail!("connection closed in the head");
        }
    }
    let lower = head.to_ascii_lowercase();
    let length: usize = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .context("no Content-Length")?
        .trim()
        .parse()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 {status} Test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    if !head.starts_with("POST ") || !lower.contains("content-type: application/json\r\n") {
        bail!("not a JSON POST: {head}");
    }
    Ok(serde_json::from_slice(&body)?)
}

/// Scripts in a directory of their own: `record` appends its arguments (and
/// `$LB_EVENT`'s type) as a line to the file named by its first argument;
/// `sleeper` writes its pid to `sleeper.pid` and sleeps.
pub struct Scripts {
    pub dir: PathBuf,
}

impl Scripts {
    pub fn new(tag: &str) -> Result<Scripts> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("lb-notify-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let scripts = [
            (
                "record",
                "#!/bin/sh\nlog=$1; shift\necho \"$*\" >> \"$log\"\n",
            ),
            (
                "sleeper",
                "#!/bin/sh\necho $$ > \"$(dirname \"$0\")/sleeper.pid\"\nexec sleep 60\n",
            ),
        ];
        for (name, text) in scripts {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(Scripts { dir })
    }

    /// `[record, <dir>/<log>.log]` as a YAML flow list.
    pub fn record(&self, log: &str) -> String {
        format!(
            "[{}, {}]",
            self.dir.join("record").display(),
            self.log_path(log).display()
        )
    }

    /// `[sleeper]` as a YAML flow list.
    pub fn sleeper(&self) -> String {
        format!("[{}]", self.dir.join("sleeper").display())
    }

    pub fn log_path(&self, log: &str) -> PathBuf {
        self.dir.join(format!("{log}.log"))
    }

    /// Waits until log `log` has `n` lines; its lines.
    pub fn wait_lines(&self, log: &str, n: usize, timeout: Duration) -> Result<Vec<String>> {
        let path = self.log_path(log);
        wait_until(timeout, || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            Ok((lines.len() >= n).then_some(lines))
        })
        .with_context(|| format!("waiting for {n} line(s) in {}", path.display()))
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The value of the sample `name{labels}` in a `/metrics` answer.
pub fn metric(text: &str, sample: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}
