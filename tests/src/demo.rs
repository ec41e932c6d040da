//! `cargo xtask demo`: the load balancer working, in one command. Builds the
//! lab, starts lb on it with the real `lb-ctl`, opens connections from many
//! client addresses and shows who served them; tears everything down after,
//! Ctrl-C included.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    http::http_get,
    lab::{Lab, LabSpec},
    lb::PeerPass,
    netns,
};

/// Namespaces of the demo: `lbdemo-client`, `lbdemo-lb`, `lbdemo-b1`…
pub const DEMO_PREFIX: &str = "lbdemo";
/// Where the demo's data path is pinned.
pub const DEMO_BPFFS: &str = "/sys/fs/bpf/lb-demo";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Runs `lb-ctl` (the binary next to this one unless `LB_CTL` says otherwise).
fn lb_ctl(args: &[&str]) -> Result<String> {
    let bin = std::env::var_os("LB_CTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("lb-ctl")))
                .unwrap_or_else(|| PathBuf::from("lb-ctl"))
        });
    let out = Command::new(&bin)
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "lb-ctl {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The demo's configuration: one IPv4 and one IPv6 VIP over the three backends.
fn write_config(lab: &Lab, dir: &Path) -> Result<PathBuf> {
    let mut y = format!(
        "# Written by `cargo xtask demo`.\nagent:\n  bpffs: {DEMO_BPFFS}\n  flow_table_size: 65536\ninterfaces:\n  - name: eth0\nvips:\n"
    );
    for (name, ipv6) in [("web", false), ("web6", true)] {
        y += &format!(
            "  - name: {name}\n    address: {}\n    port: 80\n    protocol: tcp\n    hash: source\n    backends:\n",
            lab.vip(ipv6)
        );
        for b in lab.backends() {
            y += &format!(
                "      - name: {}\n        address: {}\n        weight: 1\n",
                b.name,
                b.ip(ipv6)
            );
        }
    }
    let path = dir.join("lb.yaml");
    std::fs::write(&path, y).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn run(clients: usize, connections_per_client: usize) -> Result<()> {
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let stale = netns::cleanup_stale(DEMO_PREFIX)?;
    if !stale.is_empty() {
        println!("removed {} namespaces left by an earlier demo", stale.len());
    }
    let _ = lb_ctl(&["teardown", "--bpffs", DEMO_BPFFS]);

    println!(
        "[1/5] building the lab: client, lb and 3 backends in network namespaces ({DEMO_PREFIX}-*)"
    );
    let lab = Lab::with_prefix(
        DEMO_PREFIX,
        LabSpec {
            backends: 3,
            client_aliases: clients,
            ipv6: true,
        },
    )?;
    let http = lab.start_http(80)?;
    println!(
        "      backends {} serve HTTP on the VIP, answering with their name",
        lab.backends()
            .iter()
            .map(|b| format!("{} ({})", b.name, b.ipv4))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let dir = tempdir()?;
    let config = write_config(&lab, &dir)?;
    println!(
        "[2/5] starting lb: lb-ctl --netns {} apply -c {}",
        lab.lb().ns.name(),
        config.display()
    );
    let _peer = PeerPass::attach(&lab)?;
    let result = (|| -> Result<()> {
        let applied = lb_ctl(&[
            "--netns",
            lab.lb().ns.name(),
            "apply",
            "-c",
            config.to_str().unwrap_or_default(),
        ])?;
        print!("      {applied}");

        for ipv6 in [false, true] {
            if stopping() {
                bail!("interrupted");
            }
            let vip = lab.vip(ipv6);
            let sources: Vec<IpAddr> = if ipv6 {
                lab.client_aliases6()
                    .into_iter()
                    .map(IpAddr::from)
                    .collect()
            } else {
                lab.client_aliases4()
                    .into_iter()
                    .map(IpAddr::from)
                    .collect()
            };
            println!(
                "[{}/5] {} clients x {} connections to http://{}/",
                if ipv6 { 4 } else { 3 },
                sources.len(),
                connections_per_client,
                SocketAddr::new(vip, 80)
            );
            let before: Vec<u64> = http.iter().map(|h| h.connections()).collect();
            let mut per_backend: BTreeMap<String, (usize, usize)> = BTreeMap::new();
            let mut sticky = 0;
            for &src in &sources {
                let mut seen = Vec::new();
                for _ in 0..connections_per_client {
                    if stopping() {
                        bail!("interrupted");
                    }
                    let who = http_get(
                        &lab.client().ns,
                        Some(src),
                        SocketAddr::new(vip, 80),
                        Duration::from_secs(5),
                    )?;
                    seen.push(who);
                }
                seen.dedup();
                if seen.len() == 1 {
                    sticky += 1;
                }
                for (i, who) in seen.iter().enumerate() {
                    let e = per_backend.entry(who.clone()).or_default();
                    e.1 += usize::from(i == 0);
                }
            }
            let total: u64 = http
                .iter()
                .zip(&before)
                .map(|(h, b)| h.connections() - b)
                .sum();
            println!(
                "      {:<8} {:>12} {:>8} {:>9}",
                "backend", "connections", "share", "clients"
            );
            for (h, b) in http.iter().zip(&before) {
                let n = h.connections() - b;
                let clients = per_backend.get(h.name()).map(|e| e.1).unwrap_or(0);
                println!(
                    "      {:<8} {:>12} {:>7.1}% {:>9}",
                    h.name(),
                    n,
                    100.0 * n as f64 / total.max(1) as f64,
                    clients
                );
            }
            println!(
                "      {sticky} of {} clients stayed on one backend for all their connections (source hashing)",
                sources.len()
            );
        }
        Ok(())
    })();
    println!("[5/5] tearing down: lb-ctl teardown --bpffs {DEMO_BPFFS}, and the namespaces");
    let torn = lb_ctl(&["teardown", "--bpffs", DEMO_BPFFS]);
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    torn?;
    println!("done.");
    Ok(())
}

fn tempdir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("lb-demo-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}
