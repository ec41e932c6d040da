//! What a proxy core thread gives up when it starts, before it serves
//! anything: every capability, and — through a seccomp filter of its own —
//! the system calls that could reach the kernel's privileged corners. A
//! client that found a hole in the request path would hold a thread that
//! cannot load BPF, touch the data path's pinned maps, trace the agent,
//! mount, change namespaces, load modules or run a program.
//!
//! Linux keeps capabilities and seccomp filters per thread, so the
//! agent's own threads (the data path loader, VRRP, health checks) keep
//! theirs. Both calls here act on the calling thread only: `capset(2)` on
//! pid 0, and `seccomp(2)` without `SECCOMP_FILTER_FLAG_TSYNC`. Threads the
//! core thread starts later inherit both.
//!
//! One capability may stay: `CAP_NET_RAW`, when the configuration uses
//! `usesrc` (binding to a client's address needs `IP_TRANSPARENT`, which
//! asks for it). The filter then refuses what else it gives, raw and
//! packet sockets, so all it still allows is the transparent bind.

use std::io;

mod filter;

/// Why a core thread could not be confined.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("reading the thread's capabilities (capget): {0}")]
    Capget(#[source] io::Error),
    #[error("dropping the thread's capabilities (capset): {0}")]
    Capset(#[source] io::Error),
    #[error("setting no_new_privs (prctl): {0}")]
    NoNewPrivs(#[source] io::Error),
    #[error("installing the seccomp filter: {0}; lb needs a kernel with CONFIG_SECCOMP_FILTER")]
    Seccomp(#[source] io::Error),
    #[error("the thread ended before it said whether it was confined")]
    Gone,
}

/// `CAP_NET_RAW`: the capability `IP_TRANSPARENT` accepts (besides
/// `CAP_NET_ADMIN`, which would also let the thread change routes,
/// firewall rules and interfaces).
const CAP_NET_RAW: u32 = 13;
/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Confines the calling thread: capabilities dropped (all, or all but
/// `CAP_NET_RAW` when `keep_net_raw` and the thread has it), then
/// `no_new_privs` and the seccomp filter. Returns whether `CAP_NET_RAW`
/// was kept.
pub(crate) fn confine(keep_net_raw: bool) -> Result<bool, ConfineError> {
    let kept = drop_capabilities(keep_net_raw)?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(ConfineError::NoNewPrivs(io::Error::last_os_error()));
    }
    filter::install().map_err(ConfineError::Seccomp)?;
    Ok(kept)
}

/// Empties the thread's effective, permitted and inheritable sets (the
/// ambient set follows: the kernel clears what is not permitted), keeping
/// `CAP_NET_RAW` if asked and held.
fn drop_capabilities(keep_net_raw: bool) -> Result<bool, ConfineError> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut now = [CapData::default(); 2];
    // SAFETY: capget(2) with a version 3 header and room for its two
    // words; pid 0 is the calling thread.
    let r = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, now.as_mut_ptr()) };
    if r != 0 {
        return Err(ConfineError::Capget(io::Error::last_os_error()));
    }
    let bit = 1u32 << CAP_NET_RAW;
    let keep = keep_net_raw && now[0].permitted & bit != 0;
    let mut data = [CapData::default(); 2];
    if keep {
        data[0].effective = bit;
        data[0].permitted = bit;
    }
    // SAFETY: capset(2) with the same header (the kernel may have written
    // its preferred version into it; it is v3) and two words.
    let r = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    if r != 0 {
        return Err(ConfineError::Capset(io::Error::last_os_error()));
    }
    Ok(keep)
}

#[cfg(test)]
mod tests;
