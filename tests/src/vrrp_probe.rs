//! Watching a failover from outside: a client probing the VIP (a TCP
//! connection every 10 ms) and a sampler of who holds the VIP on each
//! router; from their records, the service gap and the longest time two
//! routers held the VIP at once.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::IFNAME;
use crate::netns::NetNs;

/// The probe period.
pub const PERIOD: Duration = Duration::from_millis(10);
/// A probe that has no answer within this fails.
const PROBE_TIMEOUT: Duration = Duration::from_millis(25);

/// Timestamped observations, in order.
pub type Record = Vec<(Instant, bool)>;

/// A thread in a namespace recording one observation per period until stopped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Record>>,
}

impl Watch {
    fn start(ns: &NetNs, period: Duration, observe: impl Fn() -> bool + Send + 'static) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = format!("/run/netns/{}", ns.name());
        let thread = std::thread::spawn(move || {
            let Ok(f) = std::fs::File::open(&path) else {
                return Vec::new();
            };
            // SAFETY: joining this thread to the namespace of an open handle.
            unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
            let mut out = Vec::new();
            let mut next = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                out.push((Instant::now(), observe()));
                next += period;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            out
        });
        Watch {
            stop,
            thread: Some(thread),
        }
    }

    /// TCP connections to `vip:port` from `client`, one per [`PERIOD`].
    pub fn probe(client: &NetNs, vip: IpAddr, port: u16) -> Watch {
        let to = SocketAddr::new(vip, port);
        Watch::start(client, PERIOD, move || {
            TcpStream::connect_timeout(&to, PROBE_TIMEOUT).is_ok()
        })
    }

    /// Whether `node` holds `vip`, every 5 ms.
    pub fn owner(node: &NetNs, vip: IpAddr) -> Watch {
        Watch::start(node, Duration::from_millis(5), move || {
            lb_agent::vrrp::netlink::addresses(IFNAME).is_ok_and(|a| a.contains(&vip))
        })
    }

    pub fn finish(mut self) -> Record {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The longest time after `from` without a successful probe: from the last
/// success before a failure (or `from`, if later or if none came before) to
/// the first success after it, or to the last probe when none came after
/// (an outage the record does not see end is still an outage).
pub fn gap(r: &Record, from: Instant) -> Duration {
    let mut longest = Duration::ZERO;
    let mut last_ok: Option<Instant> = None;
    let mut failing = false;
    let since = |last_ok: Option<Instant>| last_ok.map_or(from, |l| l.max(from));
    for (t, ok) in r {
        if !ok {
            failing = true;
            continue;
        }
        if failing && *t > from {
            longest = longest.max(t.duration_since(since(last_ok)));
        }
        failing = false;
        last_ok = Some(*t);
    }
    match r.last() {
        Some((end, _)) if failing && *end > from => longest.max(end.duration_since(since(last_ok))),
        _ => longest,
    }
}

/// The longest time both records say `true` at once (each sample holds
/// until the next one).
pub fn overlap(a: &Record, b: &Record) -> Duration {
    let spans = |r: &Record| -> Vec<(Instant, Instant)> {
        r.windows(2)
            .filter(|w| w[0].1)
            .map(|w| (w[0].0, w[1].0))
            .collect()
    };
    let (sa, sb) = (spans(a), spans(b));
    let mut both: Vec<(Instant, Instant)> = Vec::new();
    for (a0, a1) in &sa {
        for (b0, b1) in &sb {
            let (s, e) = ((*a0).max(*b0), (*a1).min(*b1));
            if s < e {
                both.push((s, e));
            }
        }
    }
    both.sort();
    let mut longest = Duration::ZERO;
    let mut run: Option<(Instant, Instant)> = None;
    for (s, e) in both {
        run = match run {
            Some((rs, re)) if s <= re => Some((rs, re.max(e))),
            _ => Some((s, e)),
        };
        if let Some((rs, re)) = run {
            longest = longest.max(re.duration_since(rs));
        }
    }
    longest
}

/// A TCP listener on every address of a namespace (port `port`), accepting
/// and closing: a keepalived router "serves" its VIP with it.
pub struct Listener {
    _accepting: Watch,
}

impl Listener {
    pub fn start(ns: &NetNs, port: u16) -> Listener {
        // [::] takes IPv4 too (bindv6only is 0).
        let l = ns.run(|| {
            TcpListener::bind(("::", port)).or_else(|_| TcpListener::bind(("0.0.0.0", port)))
        });
        let l = l.and_then(|l| l.set_nonblocking(true).map(|()| l));
        let l = Arc::new(l.ok());
        let _accepting = Watch::start(ns, Duration::from_millis(1), move || {
            while let Some(Ok(_)) = l.as_ref().as_ref().map(TcpListener::accept) {}
            true
        });
        Listener { _accepting }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_and_overlaps() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let r: Record = vec![
            (at(0), true),
            (at(10), true),
            (at(20), false),
            (at(30), false),
            (at(40), true),
            (at(50), true),
        ];
        assert_eq!(gap(&r, at(0)), Duration::from_millis(30));
        assert_eq!(gap(&r, at(45)), Duration::ZERO);
        assert_eq!(gap(&r, at(25)), Duration::from_millis(15));
        // Failing since before the event: the gap runs from the event.
        let broken: Record = vec![(at(0), false), (at(30), false), (at(70), true)];
        assert_eq!(gap(&broken, at(20)), Duration::from_millis(50));
        // Never recovered within the record: up to its last probe.
        let down: Record = vec![(at(0), true), (at(10), false), (at(90), false)];
        assert_eq!(gap(&down, at(5)), Duration::from_millis(85));
        let a: Record = vec![
            (at(0), true),
            (at(50), true),
            (at(60), false),
            (at(100), false),
        ];
        let b: Record = vec![(at(0), false), (at(40), true), (at(100), true)];
        assert_eq!(overlap(&a, &b), Duration::from_millis(20));
    }
}
