//! The way out for log lines: a bounded queue the request path pushes to
//! without ever waiting (a full queue drops the line and counts it), and
//! one thread of its own that formats each record and writes it to every
//! target that takes its level. Sockets and files are opened on first use
//! and again after a failure; a target that is gone (nothing listening, no
//! socket file, a receiver that stopped reading) costs that thread a failed
//! or timed-out send, never a request any time.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use lb_config::proxy::{LogDestination, Severity};

use super::record::Record;
use super::{Setup, format, syslog};

/// Records waiting for the log thread at most; more are dropped.
pub const QUEUE: usize = 8192;
/// The longest a send to a unix socket may block the log thread (a syslog
/// daemon that stopped reading): past it, the line is lost.
const SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// Lines dropped because the queue was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Lines a target did not take (send or write failed).
static FAILED: AtomicU64 = AtomicU64::new(0);
static QUEUE_TX: OnceLock<Option<SyncSender<Entry>>> = OnceLock::new();

/// One record and how its frontend logs.
struct Entry {
    record: Record,
    setup: Arc<Setup>,
}

/// Queues `record`; never waits.
pub(super) fn push(record: Record, setup: &Arc<Setup>) {
    let tx = QUEUE_TX.get_or_init(start);
    let Some(tx) = tx else {
        DROPPED.fetch_add(1, Relaxed);
        return;
    };
    let entry = Entry {
        record,
        setup: setup.clone(),
    };
    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(entry) {
        DROPPED.fetch_add(1, Relaxed);
    }
}

/// Lines dropped on a full queue, since the start.
pub fn dropped() -> u64 {
    DROPPED.load(Relaxed)
}

/// Lines a target failed to take, since the start.
pub fn send_failures() -> u64 {
    FAILED.load(Relaxed)
}

/// Starts the log thread; None (every line dropped and counted) when the
/// system refuses a thread.
fn start() -> Option<SyncSender<Entry>> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("lb-proxy-log".into())
        .spawn(move || drain(rx));
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::error!(error = %e, "cannot start the access log thread: access logs are dropped");
            None
        }
    }
}

/// The log thread: formats and sends until every sender is gone.
fn drain(rx: Receiver<Entry>) {
    let mut outputs = Outputs::default();
    let pid = std::process::id();
    while let Ok(Entry { record, setup }) = rx.recv() {
        let line = if setup.json {
            format::json(&record)
        } else {
            format::text(&record)
        };
        let severity = setup.severity(&record);
        let now = SystemTime::now();
        for target in setup.targets.iter() {
            let Some(severity) = target.admits(severity) else {
                continue;
            };
            let header = syslog::Header {
                facility: target.facility,
                severity,
                tag: &setup.tag,
                pid,
                now,
            };
            let bytes = syslog::frame(target.format, &header, &line, target.len as usize);
            if !outputs.send(&target.destination, &bytes) {
                FAILED.fetch_add(1, Relaxed);
            }
        }
    }
}

/// The open sockets and files, by destination.
#[derive(Default)]
struct Outputs(HashMap<LogDestination, Output>);

enum Output {
    Udp(UdpSocket),
    Unix(UnixDatagram),
    File(File),
    Stdout,
    Stderr,
}

impl Outputs {
    /// Sends `bytes`; false when they did not go. A failed output is
    /// closed, to be opened again for the next line.
    fn send(&mut self, to: &LogDestination, bytes: &[u8]) -> bool {
        if !self.0.contains_key(to) {
            match open(to) {
                Ok(o) => {
                    self.0.insert(to.clone(), o);
                }
                Err(e) => {
                    tracing::debug!(target = %to, error = %e, "access log target unavailable");
                    return false;
                }
            }
        }
        let Some(out) = self.0.get_mut(to) else {
            return false;
        };
        let sent = match (out, to) {
            (Output::Udp(s), LogDestination::Udp(addr)) => s.send_to(bytes, addr).map(drop),
            (Output::Unix(s), _) => s.send(bytes).map(drop),
            (Output::File(f), _) => f.write_all(bytes),
            (Output::Stdout, _) => std::io::stdout().lock().write_all(bytes),
            (Output::Stderr, _) => std::io::stderr().lock().write_all(bytes),
            (Output::Udp(_), _) => Ok(()),
        };
        match sent {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(target = %to, error = %e, "access log line not sent");
                // UDP needs no reopening: a refused datagram says nothing
                // about the next one.
                if !matches!(to, LogDestination::Udp(_)) {
                    self.0.remove(to);
                }
                false
            }
        }
    }
}

fn open(to: &LogDestination) -> std::io::Result<Output> {
    Ok(match to {
        LogDestination::Udp(addr) => {
            let any: std::net::SocketAddr = if addr.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            Output::Udp(UdpSocket::bind(any)?)
        }
        LogDestination::Unix(path) => {
            let s = UnixDatagram::unbound()?;
            s.connect(path)?;
            s.set_write_timeout(Some(SEND_TIMEOUT))?;
            Output::Unix(s)
        }
        LogDestination::File(path) => Output::File(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
        LogDestination::Stdout => Output::Stdout,
        LogDestination::Stderr => Output::Stderr,
    })
}

/// The severity a record is logged at, before each target's own limits:
/// `info`, or `err` for a failed one with `log_separate_errors`.
pub(super) fn severity(failed: bool, separate_errors: bool) -> Severity {
    if failed && separate_errors {
        Severity::Err
    } else {
        Severity::Info
    }
}
