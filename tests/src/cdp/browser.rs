//! Debian's `chromium`, headless, as a process the tests own: started with a
//! profile of its own and a DevTools port the kernel picks, connected to, and
//! killed (with every process it started) and its profile removed on drop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use serde_json::json;

use super::TIMEOUT;
use super::conn::{Conn, Credentials};
use super::page::Page;
use crate::netns::NetNs;

/// How many of Chromium's last stderr lines an error quotes.
const STDERR_TAIL: usize = 40;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A headless Chromium and the DevTools connection to it.
pub struct Browser {
    pub(super) conn: RefCell<Conn>,
    process: Process,
}

/// The running Chromium: killed and its profile removed on drop.
struct Process {
    child: Child,
    profile: PathBuf,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Browser {
    /// Starts Chromium in this process's network namespace.
    pub fn launch() -> Result<Browser> {
        Browser::start(None)
    }

    /// Starts Chromium inside `ns` (`ip netns exec`), so that its pages reach
    /// what that namespace reaches.
    pub fn launch_in(ns: &NetNs) -> Result<Browser> {
        Browser::start(Some(ns))
    }

    fn start(ns: Option<&NetNs>) -> Result<Browser> {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let profile = std::env::temp_dir().join(format!("lb-chromium-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)
            .with_context(|| format!("creating {}", profile.display()))?;
        let mut child = match command(ns, &profile).spawn() {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&profile);
                return Err(e).context("starting chromium (Debian package `chromium`)");
            }
        };
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr is piped");
        spawn_stderr_reader(pipe, stderr.clone(), url_tx);
        // From here on, drop kills it and removes the profile, whatever fails.
        let process = Process {
            child,
            profile,
            stderr,
        };
        let url = url_rx.recv_timeout(TIMEOUT).map_err(|e| {
            let why = match e {
                mpsc::RecvTimeoutError::Timeout => format!("within {TIMEOUT:?}"),
                mpsc::RecvTimeoutError::Disconnected => "before closing its stderr".into(),
            };
            anyhow!(
                "chromium did not say where DevTools listen {why}; {}",
                process.describe()
            )
        })?;
        let conn = connect(ns, &url).with_context(|| process.describe())?;
        Ok(Browser {
            conn: RefCell::new(conn),
            process,
        })
    }

    /// Opens a page (a tab) in a browser context of its own, so that it
    /// shares no cookies and no remembered logins with other pages. It
    /// answers HTTP authentication challenges with `credentials` (once: if
    /// the server refuses them it cancels, and shows the server's answer) or,
    /// without credentials, cancels them.
    pub fn new_page(&self, credentials: Option<Credentials>) -> Result<Page<'_>> {
        let context = self.call("Target.createBrowserContext", json!({}))?["browserContextId"]
            .as_str()
            .context("Target.createBrowserContext: no browserContextId")?
            .to_owned();
        let target = self.call(
            "Target.createTarget",
            json!({"url": "about:blank", "browserContextId": context}),
        )?["targetId"]
            .as_str()
            .context("Target.createTarget: no targetId")?
            .to_owned();
        let session = self.call(
            "Target.attachToTarget",
            json!({"targetId": target, "flatten": true}),
        )?["sessionId"]
            .as_str()
            .context("Target.attachToTarget: no sessionId")?
            .to_owned();
        self.conn.borrow_mut().set_login(&session, credentials);
        let page = Page::new(self, context, target, session);
        page.enable()?;
        Ok(page)
    }

    /// A browser-level command.
    pub(super) fn call(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.conn
            .borrow_mut()
            .call(None, method, params, TIMEOUT)
            .with_context(|| self.describe())
    }

    /// The process id of the browser process.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// The browser's profile directory (removed on drop).
    pub fn profile(&self) -> &Path {
        &self.process.profile
    }

    /// The process and its last stderr lines, for errors.
    pub(super) fn describe(&self) -> String {
        self.process.describe()
    }
}

impl Process {
    fn describe(&self) -> String {
        let tail = self.stderr.lock().expect("lock");
        let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
        format!(
            "chromium (pid {}); its last stderr lines:\n{}",
            self.child.id(),
            lines.join("\n")
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) takes no pointers; the group is the one `start`
        // made for this child, which has not been reaped yet (so its id has
        // not been reused).
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
        // The crash handler runs in a session of its own, out of the group;
        // its command line names the profile (its reports go there), which
        // is this browser's alone.
        let profile = self.profile.to_string_lossy();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = processes_mentioning(&profile);
            if left.is_empty() || Instant::now() > deadline {
                break;
            }
            for pid in left {
                // SAFETY: kill(2) takes no pointers; `pid` runs with this
                // browser's profile on its command line.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // The stderr thread ends by itself once the group's pipe ends close;
        // it is not joined, so a stray process cannot hang the test.
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The processes whose command line contains `needle` (zombies have none).
pub fn processes_mentioning(needle: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

/// `chromium` headless with `profile` and a DevTools port the kernel picks,
/// inside `ns` if given.
fn command(ns: Option<&NetNs>, profile: &Path) -> Command {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns.name(), "chromium"]);
            c
        }
        None => Command::new("chromium"),
    };
    cmd.args([
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--remote-debugging-port=0",
        "--window-size=1280,900",
        // No first-run dialogs, updates or sync: nothing but the test's pages.
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--password-store=basic",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    // Whatever else it writes stays in the profile too: the crash
    // handler's reports would go to ~/.config.
    .env("XDG_CONFIG_HOME", profile.join("config"))
    .env("XDG_CACHE_HOME", profile.join("cache"))
    .arg("about:blank")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    // Its own process group: the renderers and helpers it forks are
    // killed with it.
    .process_group(0);
    cmd
}

/// Keeps the last lines of Chromium's stderr and sends the DevTools URL from
/// its `DevTools listening on ws://...` line. Chromium writes to stderr all
/// its life, so the pipe is read until it closes.
fn spawn_stderr_reader(
    pipe: ChildStderr,
    tail: Arc<Mutex<VecDeque<String>>>,
    url: mpsc::Sender<String>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { return };
            if let Some(u) = line.strip_prefix("DevTools listening on ") {
                let _ = url.send(u.trim().to_owned());
            }
            let mut tail = tail.lock().expect("lock");
            if tail.len() == STDERR_TAIL {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    });
}

/// Connects to the DevTools WebSocket at `url` (`ws://127.0.0.1:PORT/...`),
/// from inside `ns` when the browser runs there.
fn connect(ns: Option<&NetNs>, url: &str) -> Result<Conn> {
    let addr: SocketAddr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .and_then(|hostport| hostport.parse().ok())
        .with_context(|| format!("a DevTools URL without host:port: {url}"))?;
    let dial = || TcpStream::connect_timeout(&addr, TIMEOUT);
    let stream = match ns {
        Some(ns) => ns.try_run(dial)?,
        None => dial(),
    }
    .with_context(|| format!("connecting to DevTools at {addr}"))?;
    Conn::open(stream, url)
}
