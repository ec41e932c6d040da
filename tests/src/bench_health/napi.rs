//! How the LB's bridge-side veth receives what the checkers send: in a
//! kernel thread of its own (threaded NAPI), at real-time priority.
//!
//! Threaded, because otherwise the kernel forwards every packet a checker
//! sends, through the bridge and the servers' TCP stack and back, inline in
//! the checker's own system call and charges it to the checker: about a
//! third of its CPU here, work that behind a real NIC happens on the
//! servers and in the receive path.
//!
//! Real-time, because a veth with XDP attached queues packets for its
//! poller in a ring of 256 and drops what does not fit. A poller thread at
//! normal priority, on two cores shared with builds, was starved long
//! enough for bursts of checks to overflow the ring (tens of thousands of
//! `TX dropped` on the LB's `eth0`): the SYNs were lost, retransmitted a
//! second later, and the checks failed at their timeout, whichever checker
//! ran. A NIC's receive path runs in interrupt context and is not starved
//! by user processes; `SCHED_FIFO` is the nearest a thread gets.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, ensure};

use crate::lab::Lab;

/// The priority given to the poller (above user processes, below the
/// kernel's own real-time threads).
const PRIORITY: libc::c_int = 50;

/// Turns on threaded NAPI on the LB's bridge-side peer and raises its
/// poller thread(s) to `SCHED_FIFO`.
pub fn poll_in_threads(lab: &Lab) -> Result<()> {
    let (sw, peer) = lab.lb_peer();
    let prefix = format!("napi/{peer}-");
    let before = threads(&prefix);
    sw.exec(&[
        "sh",
        "-c",
        &format!("echo 1 > /sys/class/net/{peer}/threaded"),
    ])
    .with_context(|| format!("turning on threaded NAPI on {peer}"))?;
    let new: Vec<i32> = threads(&prefix).difference(&before).copied().collect();
    ensure!(
        !new.is_empty(),
        "no new {prefix}* kernel thread after turning on threaded NAPI"
    );
    for pid in new {
        let param = libc::sched_param {
            sched_priority: PRIORITY,
        };
        // SAFETY: a valid pointer to a sched_param, for a pid we read.
        let rc = unsafe { libc::sched_setscheduler(pid, libc::SCHED_FIFO, &param) };
        ensure!(
            rc == 0,
            "making {prefix}* ({pid}) SCHED_FIFO: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Pids of the threads whose name starts with `prefix` (kernel threads are
/// processes of their own in /proc).
fn threads(prefix: &str) -> BTreeSet<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| {
        let e = e.ok()?;
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        comm.starts_with(prefix).then_some(pid)
    })
    .collect()
}
