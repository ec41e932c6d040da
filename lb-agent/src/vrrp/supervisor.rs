//! The watchdog that makes two owners impossible when the agent dies.
//!
//! Before the agent starts its runtime (while it is one thread) it forks a
//! tiny child that holds the read end of a pipe. The agent writes to it,
//! *before* adding an address, which addresses it is about to own, and
//! *after* removing one, that it no longer does; on becoming master it also
//! hands over the priority-0 advert that resigns. When the pipe closes —
//! the agent exited, crashed or was killed with `kill -9` — the child at
//! once sends those resignations (backups take over after Skew_Time, not
//! the down interval) and removes every address still listed, then exits.
//! It ignores SIGTERM/SIGINT/SIGHUP: `systemctl stop` signals the whole
//! cgroup, and the child must outlive the agent's own clean release.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, BufRead as _, BufReader, Write as _};
use std::net::IpAddr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::sync::Mutex;

use super::io::{send_from, sender};
use super::netlink::{Owned, del_address};

/// The agent's end: one line per command.
pub struct Watchdog {
    pipe: Mutex<std::fs::File>,
}

/// A resignation to send if the agent dies: on `ifname` from `src`, each
/// destination its own advert (a v3 checksum covers the destination).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resign {
    pub ifname: String,
    pub ifindex: u32,
    pub src: IpAddr,
    pub adverts: Vec<(IpAddr, Vec<u8>)>,
}

impl Watchdog {
    /// Forks the child. Call it while the process has one thread.
    pub fn spawn() -> io::Result<Watchdog> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors, each owned once.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: the caller guarantees one thread; the child only reads the
        // pipe, makes syscalls and leaves with _exit.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                drop(write);
                child(read)
            }
            _ => Ok(Watchdog {
                pipe: Mutex::new(std::fs::File::from(write)),
            }),
        }
    }

    /// About to add `a`.
    pub fn own(&self, a: &Owned) {
        self.say(&format!("own {}\n", owned_words(a)));
    }

    /// `a` was removed.
    pub fn forget(&self, a: &Owned) {
        self.say(&format!("forget {}\n", owned_words(a)));
    }

    /// Became master of `instance`: resign with `r` if the agent dies.
    pub fn master(&self, instance: &str, r: &Resign) {
        let adverts: Vec<String> = r
            .adverts
            .iter()
            .map(|(dst, bytes)| {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                format!("{dst}={hex}")
            })
            .collect();
        self.say(&format!(
            "master {instance} {} {} {} {}\n",
            r.ifname,
            r.ifindex,
            r.src,
            adverts.join(",")
        ));
    }

    /// No longer master of `instance`.
    pub fn not_master(&self, instance: &str) {
        self.say(&format!("backup {instance}\n"));
    }

    fn say(&self, line: &str) {
        let mut pipe = self
            .pipe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = pipe.write_all(line.as_bytes()) {
            tracing::error!("vrrp watchdog unreachable ({e}): addresses may outlive the agent");
        }
    }
}

fn owned_words(a: &Owned) -> String {
    format!("{} {} {}", a.ifindex, a.address, a.prefix)
}

/// What the child knows.
#[derive(Debug, Default, PartialEq, Eq)]
struct Book {
    owned: BTreeSet<(u32, IpAddr, u8)>,
    resign: BTreeMap<String, Resign>,
}

impl Book {
    /// Applies one line; unknown or malformed lines change nothing.
    fn apply(&mut self, line: &str) {
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["own", i, a, p] | ["forget", i, a, p] => {
                let (Ok(i), Ok(a), Ok(p)) = (i.parse(), a.parse(), p.parse()) else {
                    return;
                };
                if w[0] == "own" {
                    self.owned.insert((i, a, p));
                } else {
                    self.owned.remove(&(i, a, p));
                }
            }
            ["master", name, ifname, ifindex, src, adverts] => {
                if let Some(r) = resign(ifname, ifindex, src, adverts) {
                    self.resign.insert((*name).to_owned(), r);
                }
            }
            ["backup", name] => {
                self.resign.remove(*name);
            }
            _ => {}
        }
    }
}

fn resign(ifname: &str, ifindex: &str, src: &str, adverts: &str) -> Option<Resign> {
    let advert = |one: &str| {
        let (dst, hex) = one.split_once('=')?;
        Some((dst.parse().ok()?, unhex(hex)?))
    };
    Some(Resign {
        ifname: ifname.to_owned(),
        ifindex: ifindex.parse().ok()?,
        src: src.parse().ok()?,
        adverts: adverts.split(',').map(advert).collect::<Option<_>>()?,
    })
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// The child: read until the agent is gone, then resign and release.
fn child(read: OwnedFd) -> ! {
    // SAFETY: plain libc calls on this single-threaded child.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, c"lb-vrrp-watch".as_ptr());
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    let mut book = Book::default();
    let mut lines = BufReader::new(std::fs::File::from(read));
    let mut line = String::new();
    while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
        book.apply(&line);
        line.clear();
    }
    release(&book);
    // SAFETY: leaving without running the parent's destructors or atexit handlers.
    unsafe { libc::_exit(0) }
}

fn release(book: &Book) {
    for r in book.resign.values() {
        let Ok(fd) = sender(&r.ifname, r.ifindex, r.src.is_ipv6()) else {
            continue;
        };
        for (dst, bytes) in &r.adverts {
            let _ = send_from(fd.as_raw_fd(), bytes, r.src, *dst, r.ifindex);
        }
    }
    for (ifindex, address, prefix) in &book.owned {
        let _ = del_address(&Owned {
            ifindex: *ifindex,
            address: *address,
            prefix: *prefix,
            label: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_book_follows_the_agent() {
        let mut b = Book::default();
        b.apply("own 2 10.0.0.1 32\n");
        b.apply("own 2 2001:db8::1 128\n");
        b.apply("forget 2 10.0.0.1 32\n");
        b.apply("master VI_1 eth0 2 10.0.0.2 224.0.0.18=2133000100,fe80::3=21330001ff\n");
        assert_eq!(
            b.owned.iter().map(|o| o.1.to_string()).collect::<Vec<_>>(),
            ["2001:db8::1"]
        );
        let r = &b.resign["VI_1"];
        assert_eq!((r.ifname.as_str(), r.ifindex), ("eth0", 2));
        let want: Vec<(IpAddr, Vec<u8>)> = vec![
            (
                "224.0.0.18".parse().unwrap(),
                vec![0x21, 0x33, 0x00, 0x01, 0x00],
            ),
            (
                "fe80::3".parse().unwrap(),
                vec![0x21, 0x33, 0x00, 0x01, 0xff],
            ),
        ];
        assert_eq!(r.adverts, want);
        b.apply("backup VI_1\n");
        assert!(b.resign.is_empty());
        for junk in [
            "",
            "own",
            "own x y z",
            "master a b c d e=zz",
            "master a b 1 10.0.0.1 10.0.0.2",
            "forget 1 2 3 4",
            "\u{0}",
        ] {
            b.apply(junk);
        }
        assert_eq!(b.owned.len(), 1);
        assert!(b.resign.is_empty(), "malformed resignations are dropped");
    }
}
