//! One writer per pin directory: an exclusive `flock` on the directory,
//! held for as long as the `Dataplane` that took it lives. Two writers would
//! each keep their own idea of the maps (ids, halves, rings) and overwrite
//! each other's; the second one fails at once instead, naming the first.
//!
//! The lock belongs to an open file description, so the kernel drops it when
//! the holder exits, however it exits.

use std::{
    ffi::CString,
    fs, io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::{ffi::OsStrExt as _, fs::MetadataExt as _},
    },
    path::{Path, PathBuf},
};

/// The lock on a pin directory; released on drop.
#[derive(Debug)]
pub struct PinLock {
    _fd: OwnedFd,
}

/// Who holds a lock, as far as `/proc` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command line, arguments joined by spaces (empty if unreadable).
    pub cmdline: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.cmdline.is_empty() {
            write!(f, "pid {}", self.pid)
        } else {
            write!(f, "pid {} (`{}`)", self.pid, self.cmdline)
        }
    }
}

/// Why the lock was not taken.
#[derive(Debug)]
pub enum LockError {
    /// Another open file description holds it.
    Held {
        dir: PathBuf,
        holder: Option<Holder>,
    },
    Io(io::Error),
}

impl PinLock {
    /// Takes the lock on `dir` (which must exist) without waiting.
    pub fn take(dir: &Path) -> Result<PinLock, LockError> {
        let c = CString::new(dir.as_os_str().as_bytes())
            .map_err(|e| LockError::Io(io::Error::other(e)))?;
        // SAFETY: a NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(LockError::Io(io::Error::last_os_error()));
        }
        // SAFETY: the fd was just opened by us.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: flock on our own fd.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    holder: holder_of(dir),
                });
            }
            return Err(LockError::Io(e));
        }
        Ok(PinLock { _fd: fd })
    }
}

/// The process holding an flock on `path`, from `/proc/locks`, whose lines
/// read `1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF` (device major and
/// minor in hex, inode in decimal).
pub fn holder_of(path: &Path) -> Option<Holder> {
    let md = fs::metadata(path).ok()?;
    let locks = fs::read_to_string("/proc/locks").ok()?;
    let pid = find_holder(
        &locks,
        libc::major(md.dev()),
        libc::minor(md.dev()),
        md.ino(),
    )?;
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Some(Holder { pid, cmdline })
}

fn find_holder(locks: &str, major: u32, minor: u32, ino: u64) -> Option<u32> {
    let want = format!("{major:02x}:{minor:02x}:{ino}");
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // "N:" FLOCK ADVISORY WRITE pid dev:ino start end (a blocked waiter
        // has "->" after the number, shifting the fields).
        let f = if f.get(1) == Some(&"->") {
            &f[1..]
        } else {
            &f[..]
        };
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_holder_in_proc_locks_format() {
        let locks = "1: POSIX  ADVISORY  WRITE 99 00:1f:5678 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 77 fd:01:12 0 EOF\n";
        assert_eq!(find_holder(locks, 0, 0x1f, 5678), Some(1234));
        assert_eq!(find_holder(locks, 0xfd, 1, 12), Some(77));
        assert_eq!(find_holder(locks, 0, 0x1f, 1), None);
    }

    #[test]
    fn a_second_lock_fails_and_names_this_process() {
        let dir = std::env::temp_dir().join(format!("lb-lock-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let first = PinLock::take(&dir).unwrap();
        match PinLock::take(&dir) {
            Err(LockError::Held { holder, .. }) => {
                let h = holder.expect("found in /proc/locks");
                assert_eq!(h.pid, std::process::id());
                assert!(!h.cmdline.is_empty());
            }
            other => panic!("{other:?}"),
        }
        drop(first);
        PinLock::take(&dir).expect("free again");
        fs::remove_dir(&dir).unwrap();
    }
}
