//! `cargo xtask demo`: the load balancer working, in one command. Builds the
//! lab, starts lb on it with the real `lb-ctl`, opens connections from many
//! client addresses and shows who served them; tears everything down after,
//! Ctrl-C included.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::{Result, bail};

use crate::{
    agent::Agent,
    http::{HttpBackend, http_get},
    lab::{Lab, LabSpec},
    netns,
};

/// Namespaces of the demo: `lbdemo-client`, `lbdemo-lb`, `lbdemo-b1`…
pub const DEMO_PREFIX: &str = "lbdemo";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The demo's configuration after `agent:`: one IPv4 and one IPv6 service
/// over the three backends (pools `web` and `web6`: each backend's IPv4 and
/// IPv6 addresses). `cargo xtask rig up` writes the same.
pub fn config_body(lab: &Lab) -> String {
    let mut y = String::from("interfaces:\n  - name: eth0\npools:\n");
    for (name, ipv6) in [("web", false), ("web6", true)] {
        y += &format!("  {name}:\n    backends:\n");
        for b in lab.backends() {
            y += &format!(
                "      - name: {}\n        address: {}\n",
                b.name,
                b.ip(ipv6)
            );
        }
    }
    y += "services:\n";
    for (name, ipv6) in [("web", false), ("web6", true)] {
        y += &format!(
            "  - name: {name}\n    address: {}\n    port: 80\n    protocol: tcp\n    hash: source\n    pool: {name}\n",
            lab.vip(ipv6)
        );
    }
    y
}

/// Opens `per_client` connections from each client address to the VIP and
/// prints who served how many; returns the connections per backend.
fn traffic(
    lab: &Lab,
    http: &[HttpBackend],
    ipv6: bool,
    per_client: usize,
) -> Result<BTreeMap<String, u64>> {
    let vip = SocketAddr::new(lab.vip(ipv6), 80);
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
    let before: Vec<u64> = http.iter().map(|h| h.connections()).collect();
    let mut clients_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut sticky = 0;
    for &src in &sources {
        let mut seen = Vec::new();
        for _ in 0..per_client {
            if stopping() {
                bail!("interrupted");
            }
            seen.push(http_get(
                &lab.client().ns,
                Some(src),
                vip,
                Duration::from_secs(5),
            )?);
        }
        seen.dedup();
        sticky += usize::from(seen.len() == 1);
        *clients_of.entry(seen[0].clone()).or_default() += 1;
    }
    let counts: BTreeMap<String, u64> = http
        .iter()
        .zip(&before)
        .map(|(h, b)| (h.name().to_owned(), h.connections() - b))
        .collect();
    let total: u64 = counts.values().sum();
    println!(
        "      {:<8} {:>12} {:>8} {:>9}",
        "backend", "connections", "share", "clients"
    );
    for (name, n) in &counts {
        println!(
            "      {:<8} {:>12} {:>7.1}% {:>9}",
            name,
            n,
            100.0 * *n as f64 / total.max(1) as f64,
            clients_of.get(name).copied().unwrap_or(0)
        );
    }
    println!(
        "      {sticky} of {} clients stayed on one backend for all their connections (source hashing)",
        sources.len()
    );
    Ok(counts)
}

/// Prints what `lb-ctl ARGS` prints, indented, as the operator would see it.
fn show(agent: &Agent, args: &[&str]) -> Result<()> {
    println!("      $ lb-ctl {}", args.join(" "));
    let out = agent.ctl(args);
    if !out.status.success() {
        bail!(
            "lb-ctl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        println!("      {line}");
    }
    Ok(())
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
    println!(
        "[1/6] building the lab: client, lb and 3 backends in network namespaces ({DEMO_PREFIX}-*)"
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
    println!(
        "[2/6] starting the agent: lb-ctl --netns {} agent --config <demo dir>/lb.yaml",
        lab.lb().ns.name()
    );
    let agent = Agent::start(&lab, &config_body(&lab))?;
    let result = (|| -> Result<()> {
        show(&agent, &["status"])?;
        println!(
            "[3/6] {} clients x {} connections to http://{}/",
            clients,
            connections_per_client,
            SocketAddr::new(lab.vip4().into(), 80)
        );
        traffic(&lab, &http, false, connections_per_client)?;
        println!("[4/6] the same over IPv6, to http://[{}]/", lab.vip6());
        traffic(&lab, &http, true, connections_per_client)?;
        println!("[5/6] draining b2: open connections may finish, new ones go elsewhere");
        show(&agent, &["backend", "drain", "web", "b2"])?;
        let after = traffic(&lab, &http, false, 1)?;
        if after.get("b2").copied().unwrap_or(0) != 0 {
            bail!("b2 got new connections while drained");
        }
        show(&agent, &["stats"])?;
        Ok(())
    })();
    println!(
        "[6/6] tearing down: lb-ctl teardown (detaches and unpins the data path), and the namespaces"
    );
    let torn = agent.ctl(&["teardown"]);
    drop(agent);
    drop(lab);
    result?;
    if !torn.status.success() {
        bail!("teardown: {}", String::from_utf8_lossy(&torn.stderr));
    }
    println!("done.");
    Ok(())
}
