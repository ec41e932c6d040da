//! `cargo xtask bench xdp`: the data path's cost per packet (method in
//! docs/benchmarks.md).
//!
//! `BPF_PROG_TEST_RUN` with repeat = 1 per call (a forwarding program rewrites
//! its packet, so repeat > 1 would measure rewritten packets), on a pinned CPU,
//! `calls` calls per run, median of `runs` runs; the same loop over a program
//! that only returns `XDP_TX` is the baseline (the timer and test-run overhead),
//! and each class is reported gross and net of it. The kernel measures each
//! call (`duration`); nothing here times userspace.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Instant,
};

use anyhow::{Context as _, Result, ensure};
use lb_common::{
    abi::{Addr, VipKey},
    consts::{DEFAULT_RING_SIZE, PROG_LB, PROG_TX, state},
    maglev::{self, MaglevBackend},
};
use lb_dataplane::{
    Dataplane, Options,
    plan::{self as reconcile, Actual, DesiredBackend, DesiredVip, NextHop},
};
use serde::Serialize;

use crate::packet::{ACK, Packet};

/// Parameters of one benchmark run.
#[derive(Clone, Debug, Serialize)]
pub struct XdpBenchArgs {
    pub runs: usize,
    pub calls: usize,
    pub cpu: usize,
}

#[derive(Debug, Serialize)]
pub struct Class {
    pub name: &'static str,
    /// Median over runs of the mean ns per call.
    pub gross_ns: f64,
    /// Median over runs of (this run's mean - the baseline's mean measured
    /// just before it).
    pub net_ns: f64,
    /// Median of the baseline runs paired with this class.
    pub baseline_ns: f64,
    /// The per-run net means.
    pub runs_ns: Vec<f64>,
    /// The program's own run time per packet as the kernel's BPF statistics
    /// count it (`kernel.bpf_stats_enabled`), without the test-run overhead:
    /// a cross-check of `net_ns` by another clock.
    pub bpf_stats_ns: f64,
}

#[derive(Debug, Serialize)]
pub struct Disruption {
    pub backends: usize,
    pub ring_size: u32,
    /// Slots moved when one backend is removed, as a multiple of `M/N`
    /// (1.0 is minimal disruption); mean and worst over the removals tried.
    pub mean_ratio: f64,
    pub worst_ratio: f64,
}

#[derive(Debug, Serialize)]
pub struct XdpReport {
    pub method: &'static str,
    pub args: XdpBenchArgs,
    pub kernel: String,
    pub baseline_ns: f64,
    pub classes: Vec<Class>,
    pub maglev_build_1000_backends_ms: f64,
    pub maglev_disruption: Vec<Disruption>,
}

fn pin_cpu(cpu: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays in bounds
    // for cpu < CPU_SETSIZE; sched_setaffinity(0) affects this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        ensure!(cpu < libc::CPU_SETSIZE as usize, "cpu {cpu} out of range");
        libc::CPU_SET(cpu, &mut set);
        ensure!(
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0,
            "pinning to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn backend(addr: &str, port: u16, i: u8) -> DesiredBackend {
    let ip: IpAddr = addr.parse().expect("literal address");
    DesiredBackend {
        key: SocketAddr::new(ip, port).to_string(),
        addr: Addr::from_ip(ip),
        port,
        weight: 1,
        state: state::UP,
        next_hop: NextHop {
            ifindex: 1,
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 1, i],
        },
    }
}

fn vip(addr: &str, port: u16, proto: u8, backends: &[&str]) -> DesiredVip {
    DesiredVip {
        key: VipKey::new(addr.parse().expect("literal address"), port, proto),
        flags: 0,
        ring_size: DEFAULT_RING_SIZE,
        backends: backends
            .iter()
            .enumerate()
            .map(|(i, b)| backend(b, port, i as u8))
            .collect(),
    }
}

/// Mean ns per call over `frames` (cycled) through `prog`.
fn run_once(
    dp: &mut Dataplane,
    prog: &'static str,
    calls: usize,
    frame: &mut dyn FnMut(usize) -> Vec<u8>,
) -> Result<f64> {
    let mut total = 0u128;
    for i in 0..calls {
        let f = frame(i);
        total += dp.test_run(prog, &f)?.duration.as_nanos();
    }
    Ok(total as f64 / calls as f64)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Turns on the kernel's per-program run statistics for as long as it lives,
/// restoring the previous setting after.
struct BpfStats {
    before: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    fn enable() -> Result<BpfStats> {
        let before =
            std::fs::read_to_string(BPF_STATS).with_context(|| format!("reading {BPF_STATS}"))?;
        std::fs::write(BPF_STATS, "1").with_context(|| format!("writing {BPF_STATS}"))?;
        Ok(BpfStats { before })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(BPF_STATS, self.before.trim());
    }
}

/// Runs the whole benchmark; `progress` hears about each class.
pub fn xdp(args: &XdpBenchArgs, progress: &mut dyn FnMut(&str)) -> Result<XdpReport> {
    ensure!(
        args.runs > 0 && args.calls > 0,
        "runs and calls must be positive"
    );
    let mut dp = bench_dataplane(args.cpu)?;

    let client = |i: usize| {
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + (i as u32 >> 8))),
            1024 + (i % 256) as u16,
        )
    };
    let web: SocketAddr = "10.0.0.100:80".parse()?;
    let dns: SocketAddr = "10.0.0.100:53".parse()?;
    let web6: SocketAddr = "[fd00::100]:80".parse()?;
    let c6: SocketAddr = "[2001:db8::1]:40000".parse()?;
    let syn4 = Packet::tcp("192.0.2.2:40000".parse()?, web).build();
    let est4 = Packet::tcp("192.0.2.1:40000".parse()?, web)
        .tcp_flags(ACK)
        .build();
    let udp4 = Packet::udp("192.0.2.1:40000".parse()?, dns)
        .payload(&[0; 32])
        .build();
    let est6 = Packet::tcp(c6, web6).tcp_flags(ACK).build();
    let other = Packet::tcp("192.0.2.1:40000".parse()?, "10.9.9.9:80".parse()?).build();
    // Put the established flows in the table.
    for f in [&est4, &udp4, &est6] {
        dp.test_run(PROG_LB, f)?;
    }

    type FrameFn<'a> = Box<dyn FnMut(usize) -> Vec<u8> + 'a>;
    let mut new_flow_base = 0usize;
    let mut classes: Vec<(&'static str, &'static str, FrameFn<'_>)> = vec![
        // Measured against itself: the noise floor of the method.
        (
            "baseline vs itself (noise floor)",
            PROG_TX,
            Box::new(|_| est4.clone()),
        ),
        ("non-VIP pass", PROG_LB, Box::new(|_| other.clone())),
        // Katran's method: the same SYN every call (a new flow each time as
        // far as the program knows: SYNs skip the flow lookup and overwrite).
        (
            "new TCP flow (same SYN each call)",
            PROG_LB,
            Box::new(|_| syn4.clone()),
        ),
        (
            "new TCP flow (SYN, distinct clients)",
            PROG_LB,
            // A fresh client every call, across runs too: every SYN is a new flow.
            Box::new(|_| {
                new_flow_base += 1;
                Packet::tcp(client(new_flow_base), web).build()
            }),
        ),
        ("established TCP flow", PROG_LB, Box::new(|_| est4.clone())),
        ("established UDP flow", PROG_LB, Box::new(|_| udp4.clone())),
        (
            "established IPv6 TCP flow",
            PROG_LB,
            Box::new(|_| est6.clone()),
        ),
    ];
    let base_frame = est4.clone();
    let mut measured = Vec::new();
    for (name, prog, frame) in classes.iter_mut() {
        progress(name);
        measured.push(measure(
            &mut dp,
            args,
            name,
            prog,
            frame.as_mut(),
            &base_frame,
        )?);
    }
    let baseline = measured[0].baseline_ns;
    let classes = measured;

    progress("Maglev build, 1000 backends, M = 65537");
    let keys: Vec<String> = (0..1000)
        .map(|i| format!("10.1.{}.{}:80", i / 250, i % 250 + 1))
        .collect();
    let bs: Vec<MaglevBackend<'_>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| MaglevBackend {
            key: k.as_bytes(),
            id: i as u32,
            weight: 1,
        })
        .collect();
    let build_ms = maglev_build_ms(&bs)?;
    progress("Maglev disruption survey");
    let survey = maglev_survey(&bs)?;

    Ok(XdpReport {
        method: "BPF_PROG_TEST_RUN, repeat=1 per call, kernel-measured duration, pinned CPU; median of runs; net = gross - baseline",
        args: args.clone(),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        baseline_ns: baseline,
        classes,
        maglev_build_1000_backends_ms: build_ms,
        maglev_disruption: survey,
    })
}

/// The data path loaded in a private network namespace (its `lo` is the
/// test-run ingress, and backends "on lo" are forwarded with XDP_TX), on
/// CPU `cpu`, with the benchmark's three services.
fn bench_dataplane(cpu: usize) -> Result<Dataplane> {
    // SAFETY: unshare affects only this thread, which runs the whole benchmark.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    ensure!(rc == 0, "unshare(CLONE_NEWNET) needs root");
    pin_cpu(cpu)?;
    let mut dp = Dataplane::open(&Options {
        flow_table_size: 1 << 21,
        ..Options::default()
    })
    .context("loading the data path (needs root and BPF)")?;
    let desired = [
        vip("10.0.0.100", 80, 6, &["10.0.1.1", "10.0.1.2", "10.0.1.3"]),
        vip("10.0.0.100", 53, 17, &["10.0.2.1", "10.0.2.2", "10.0.2.3"]),
        vip("fd00::100", 80, 6, &["fd00:1::1", "fd00:1::2", "fd00:1::3"]),
    ];
    let mut actual = Actual::default();
    let plan = reconcile::plan_full(&actual, &desired.into_iter().collect())?;
    reconcile::apply(&mut dp, &mut actual, plan)?;
    Ok(dp)
}

/// One class: `runs` runs of the baseline and the class back to back, so
/// drift of the machine (other guests, frequency) cancels in their
/// difference; then a shorter pass with the kernel's BPF statistics on
/// (they add their own clock reads, so they stay off for the first).
fn measure(
    dp: &mut Dataplane,
    args: &XdpBenchArgs,
    name: &'static str,
    prog: &'static str,
    frame: &mut dyn FnMut(usize) -> Vec<u8>,
    base_frame: &[u8],
) -> Result<Class> {
    let (mut gross, mut base, mut net) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        let b = run_once(dp, PROG_TX, args.calls, &mut |_| base_frame.to_vec())?;
        let g = run_once(dp, prog, args.calls, frame)?;
        gross.push(g);
        base.push(b);
        net.push(g - b);
    }
    let stats = BpfStats::enable()?;
    let (t0, n0) = dp.program_stats(prog)?;
    run_once(dp, prog, args.calls, frame)?;
    let (t1, n1) = dp.program_stats(prog)?;
    drop(stats);
    Ok(Class {
        name,
        gross_ns: median(&mut gross),
        net_ns: median(&mut net.clone()),
        baseline_ns: median(&mut base),
        runs_ns: net,
        bpf_stats_ns: (t1 - t0).as_nanos() as f64 / (n1 - n0).max(1) as f64,
    })
}

/// Building a ring for `bs` at the default size: the median of 11, in ms.
fn maglev_build_ms(bs: &[MaglevBackend<'_>]) -> Result<f64> {
    let mut times = Vec::new();
    for _ in 0..11 {
        let t = Instant::now();
        let ring = maglev::build(bs, DEFAULT_RING_SIZE)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(ring);
    }
    Ok(median(&mut times))
}

/// Slots moved when one of N backends is removed, over a tenth of them,
/// relative to the ideal M/N.
fn maglev_survey(bs: &[MaglevBackend<'_>]) -> Result<Vec<Disruption>> {
    let mut survey = Vec::new();
    for (n, m) in [
        (3usize, DEFAULT_RING_SIZE),
        (10, DEFAULT_RING_SIZE),
        (20, DEFAULT_RING_SIZE),
        (100, DEFAULT_RING_SIZE),
        (1000, DEFAULT_RING_SIZE),
        (100, 1_048_573),
    ] {
        let all = &bs[..n];
        let before = maglev::build(all, m)?;
        let (mut sum, mut worst, mut tries) = (0.0, 0.0f64, 0);
        for removed in (0..n).step_by((n / 10).max(1)) {
            let rest: Vec<_> = all
                .iter()
                .copied()
                .filter(|b| b.id != removed as u32)
                .collect();
            let after = maglev::build(&rest, m)?;
            let r = maglev::changed_slots(&before, &after) as f64 / (m as f64 / n as f64);
            sum += r;
            worst = worst.max(r);
            tries += 1;
        }
        survey.push(Disruption {
            backends: n,
            ring_size: m,
            mean_ratio: sum / tries as f64,
            worst_ratio: worst,
        });
    }
    Ok(survey)
}

/// The report as a table for people.
pub fn xdp_table(r: &XdpReport) -> String {
    let mut s = format!(
        "XDP data path, ns/packet ({} runs x {} calls, CPU {}, kernel {})\n",
        r.args.runs, r.args.calls, r.args.cpu, r.kernel
    );
    s += &format!(
        "baseline (XDP_TX only, timer overhead): {:.1} ns/call\n",
        r.baseline_ns
    );
    s += &format!(
        "{:<40} {:>10} {:>10} {:>10}\n",
        "class", "gross", "net", "bpf_stats"
    );
    for c in &r.classes {
        s += &format!(
            "{:<40} {:>10.1} {:>10.1} {:>10.1}\n",
            c.name, c.gross_ns, c.net_ns, c.bpf_stats_ns
        );
    }
    s += &format!(
        "\nMaglev build, 1000 backends, M=65537: {:.2} ms (median of 11)\n",
        r.maglev_build_1000_backends_ms
    );
    s += "Maglev disruption when 1 of N backends is removed (slots moved / (M/N)):\n";
    s += &format!("{:>6} {:>9} {:>8} {:>8}\n", "N", "M", "mean", "worst");
    for d in &r.maglev_disruption {
        s += &format!(
            "{:>6} {:>9} {:>8.3} {:>8.3}\n",
            d.backends, d.ring_size, d.mean_ratio, d.worst_ratio
        );
    }
    s
}
