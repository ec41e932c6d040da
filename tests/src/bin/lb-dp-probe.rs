//! `lb-dp-probe`: the data path's loader on its own, for tests that run it in
//! a child process (with fewer capabilities, or to hold the pin directory).
//!
//! - `lb-dp-probe open PIN_DIR IFACE`: loads or adopts the data path pinned
//!   under PIN_DIR, attaches it to IFACE (pinning the link), writes one VIP
//!   with two backends (which creates rings: outer-map batch, grace period),
//!   changes a backend (a flip), and prints `adopted=<bool> cap_eff=<hex>`.
//! - `lb-dp-probe hold PIN_DIR`: opens the data path under PIN_DIR, prints
//!   `ready`, and keeps it (and so the pin directory's writer lock) until its
//!   standard input closes.
//!
//! Exits 1 with the whole error chain on standard error when anything fails.

use std::{
    io::{Read as _, Write as _},
    net::IpAddr,
    path::PathBuf,
    process::ExitCode,
};

use anyhow::{Context as _, Result, bail};
use lb_common::{
    abi::{Addr, VipKey},
    consts::state,
};
use lb_dataplane::{
    Dataplane, Options, XdpMode,
    plan::{self, DesiredBackend, DesiredVip, NextHop},
};

fn cap_eff() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_default()
}

fn ifindex(name: &str) -> Result<u32> {
    let c = std::ffi::CString::new(name)?;
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        bail!("no interface {name}");
    }
    Ok(i)
}

fn open(pin_dir: PathBuf) -> Result<Dataplane> {
    Dataplane::open(&Options {
        pin_dir: Some(pin_dir),
        flow_table_size: 4096,
        ..Options::default()
    })
    .context("opening the data path")
}

fn vip(ifindex: u32, second_state: u32) -> DesiredVip {
    let backend = |a: &str, i: u8, s: u32| {
        let ip: IpAddr = a.parse().expect("literal");
        DesiredBackend {
            key: format!("{a}:80"),
            addr: Addr::from_ip(ip),
            port: 80,
            weight: 1,
            state: s,
            next_hop: NextHop {
                ifindex,
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 1, i],
            },
        }
    };
    DesiredVip {
        key: VipKey::new("10.0.0.100".parse().expect("literal"), 80, 6),
        flags: 0,
        ring_size: 251,
        backends: vec![
            backend("10.0.1.1", 1, state::UP),
            backend("10.0.1.2", 2, second_state),
        ],
    }
}

fn run(args: &[String]) -> Result<()> {
    match args {
        [cmd, dir, iface] if cmd == "open" => {
            let mut dp = open(PathBuf::from(dir))?;
            dp.attach(iface, XdpMode::Driver)
                .with_context(|| format!("attaching to {iface}"))?;
            let idx = ifindex(iface)?;
            let mut actual = dp.actual().context("reading the maps")?;
            for second in [state::UP, state::DRAIN] {
                let p = plan::plan_full(&actual, &[vip(idx, second)].into_iter().collect())?;
                plan::apply(&mut dp, &mut actual, p).context("writing the maps")?;
            }
            let ring = dp.ring(actual.vips.values().next().context("no VIP")?.id)?;
            if ring.as_ref().is_none_or(|r| r.len() != 251) {
                bail!("the ring did not land: {ring:?}");
            }
            println!("adopted={} cap_eff={}", dp.adopted(), cap_eff());
            Ok(())
        }
        [cmd, dir] if cmd == "hold" => {
            let _dp = open(PathBuf::from(dir))?;
            println!("ready");
            std::io::stdout().flush()?;
            let mut sink = Vec::new();
            std::io::stdin().read_to_end(&mut sink)?;
            Ok(())
        }
        _ => bail!("usage: lb-dp-probe open PIN_DIR IFACE | hold PIN_DIR"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lb-dp-probe: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
