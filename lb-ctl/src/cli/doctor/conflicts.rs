//! Conflicts with what else runs on the host: keepalived and HAProxy (the
//! stack lb replaces, often still there while a site moves over), sockets
//! on the addresses lb binds or forwards, and another writer of the pin
//! directory. Pure functions of the configuration and the [`Host`].

use std::net::SocketAddr;

use lb_config::{Config, Protocol};

use super::{
    finding::{Finding, Level},
    host::Host,
    procfs::{Listener, Process},
};

/// The `comm` of lb's own processes (`lb-ctl agent`, its VRRP watchdog child).
const LB_COMMS: [&str; 2] = ["lb-ctl", "lb-vrrp-watch"];

pub fn legacy_daemons(config: &Config, host: &Host) -> Vec<Finding> {
    let pids = |comm: &str| -> Vec<u32> {
        host.processes
            .iter()
            .filter(|p| p.comm == comm)
            .map(|p| p.pid)
            .collect()
    };
    let list = |pids: &[u32]| {
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = Vec::new();
    let keepalived = pids("keepalived");
    if !keepalived.is_empty() {
        let pids = list(&keepalived);
        out.push(if config.vrrp.instances.is_empty() {
            Finding::new(
                "keepalived",
                Level::Warning,
                format!(
                    "keepalived runs (pid {pids}). Its vrrp_instance may keep owning the VIPs \
                     while lb has no `vrrp:`; its virtual_server blocks for lb's services see no \
                     packets, which lb's XDP program takes first"
                ),
            )
            .fix("once lb's `vrrp:` and services replace it: systemctl disable --now keepalived")
        } else {
            Finding::new(
                "keepalived",
                Level::Problem,
                format!(
                    "keepalived runs (pid {pids}) beside lb's VRRP instances: with the same \
                     virtual_router_id on a link, the two fight over the VIPs"
                ),
            )
            .fix("systemctl disable --now keepalived   # lb's `vrrp:` replaces its vrrp_instance")
        });
    }
    let haproxy = pids("haproxy");
    if !haproxy.is_empty() {
        out.push(Finding::new(
            "haproxy",
            Level::Info,
            format!(
                "haproxy runs (pid {}); the `listener` findings say whether it holds an \
                 address lb needs",
                list(&haproxy)
            ),
        ));
    }
    out
}

/// Sockets on addresses lb must bind (frontends, metrics, the TCP API) or
/// forwards in XDP (services).
pub fn listeners(config: &Config, host: &Host) -> Vec<Finding> {
    let binds = binds(config);
    let mut out = bind_conflicts(&binds, host);
    out.extend(service_conflicts(config, host));
    if out.is_empty() {
        out.push(Finding::new(
            "listener",
            Level::Ok,
            format!(
                "no other process listens where lb binds ({} address{}) or on its services' ports",
                binds.len(),
                if binds.len() == 1 { "" } else { "es" }
            ),
        ));
    }
    out
}

/// What lb binds itself, each with what binds it.
fn binds(config: &Config) -> Vec<(String, SocketAddr)> {
    let mut binds: Vec<(String, SocketAddr)> = config
        .frontends
        .iter()
        .flat_map(|f| {
            f.binds
                .iter()
                .map(move |b| (format!("frontend {}", f.name), b.addr))
        })
        .collect();
    let agent = &config.agent;
    binds.extend(
        agent
            .metrics_listen
            .map(|a| ("metrics_listen".to_owned(), a)),
    );
    binds.extend(agent.api_listen.map(|a| ("api_listen".to_owned(), a)));
    binds
}

/// Other processes' TCP listeners that keep lb from binding: problems.
fn bind_conflicts(binds: &[(String, SocketAddr)], host: &Host) -> Vec<Finding> {
    let mut out = Vec::new();
    for (what, addr) in binds {
        for (l, owners) in others_on(host, Protocol::Tcp, *addr) {
            out.push(
                Finding::new(
                    "listener",
                    Level::Problem,
                    format!(
                        "{} listens on {}: lb's {what} cannot bind {addr}",
                        owner_names(owners),
                        l.addr
                    ),
                )
                .about(addr.to_string())
                .fix(format!(
                    "stop it, or move lb's {what} to another address or port"
                )),
            );
        }
    }
    out
}

/// Other processes' sockets on a service's address and port: they get no
/// traffic while lb forwards it, which is expected while moving over.
fn service_conflicts(config: &Config, host: &Host) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in &config.services {
        let vip = SocketAddr::new(s.address, s.port);
        for (l, owners) in others_on(host, s.protocol, vip) {
            out.push(
                Finding::new(
                    "listener",
                    Level::Warning,
                    format!(
                        "{} listens on {}, which covers service {} ({vip}/{}): lb's XDP program \
                         forwards that traffic before the kernel sees it, so it gets none",
                        owner_names(owners),
                        l.addr,
                        s.name,
                        s.protocol
                    ),
                )
                .about(vip.to_string())
                .fix("expected while moving over; stop it once lb serves the service"),
            );
        }
    }
    out
}

/// The sockets of processes other than lb's that take `wanted`.
fn others_on(
    host: &Host,
    protocol: Protocol,
    wanted: SocketAddr,
) -> impl Iterator<Item = (&Listener, &[Process])> {
    host.listeners
        .iter()
        .filter(move |(l, owners)| {
            l.protocol == protocol && overlaps(l.addr, wanted) && !is_lb(owners)
        })
        .map(|(l, owners)| (l, owners.as_slice()))
}

/// Whether a socket bound to `held` takes `wanted`: same port, and the same
/// address or either one a wildcard.
fn overlaps(held: SocketAddr, wanted: SocketAddr) -> bool {
    held.port() == wanted.port()
        && (held.ip() == wanted.ip() || held.ip().is_unspecified() || wanted.ip().is_unspecified())
}

fn is_lb(owners: &[Process]) -> bool {
    !owners.is_empty() && owners.iter().all(|p| LB_COMMS.contains(&p.comm.as_str()))
}

fn owner_names(owners: &[Process]) -> String {
    if owners.is_empty() {
        return "a process (run as root to name it)".to_owned();
    }
    owners
        .iter()
        .map(|p| format!("{} (pid {})", p.comm, p.pid))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One writer per pin directory: who holds it now.
pub fn pin_lock(config: &Config, host: &Host) -> Finding {
    let dir = config.agent.bpffs.display();
    match &host.pin_lock {
        None => Finding::new(
            "lb_writer",
            Level::Ok,
            format!("no lb data-path writer holds {dir} (no agent runs)"),
        ),
        Some(h) if h.unit.as_deref() == Some("lb.service") => Finding::new(
            "lb_writer",
            Level::Ok,
            format!("{dir} is held by lb.service's agent (pid {})", h.pid),
        ),
        Some(h) => Finding::new(
            "lb_writer",
            Level::Warning,
            format!(
                "{dir} is held by pid {} (`{}`), outside lb.service: while it runs, \
                 `systemctl start lb` fails (one writer per pin directory)",
                h.pid, h.cmdline
            ),
        )
        .fix(format!("stop pid {} if lb.service should run lb", h.pid)),
    }
}
