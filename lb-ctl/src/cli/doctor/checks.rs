//! The host checks: kernel, BTF, bpffs, each configured interface's XDP
//! support and program, sysctls, memory, and the advice for DR backends.
//! Pure functions of the configuration and the [`Host`] read before.

use std::{collections::BTreeMap, net::IpAddr};

use lb_common::{
    abi::{FlowSlotV4, FlowSlotV6},
    consts::PROG_LB,
};
use lb_config::{Config, InterfaceConfig, Mode, RingSize, XdpMode};

use super::{
    finding::{Finding, Level},
    host::Host,
};

/// The oldest kernel lb loads on: BPF load-acquire/store-release
/// (docs/datapath.md, "Requirements").
pub const MIN_KERNEL: (u32, u32) = (6, 15);
/// Since 5.11 BPF memory is charged to the memory cgroup, not to
/// `RLIMIT_MEMLOCK` (kernel commit "bpf: eliminate rlimit-based memory accounting").
const MEMCG_ACCOUNTING: (u32, u32) = (5, 11);

/// `NETDEV_XDP_ACT_*` (`linux/netdev.h`).
const XDP_ACT: [(u64, &str); 7] = [
    (1, "basic"),
    (2, "redirect"),
    (4, "ndo-xmit"),
    (8, "xsk-zerocopy"),
    (16, "hw-offload"),
    (32, "rx-sg"),
    (64, "ndo-xmit-sg"),
];
const XDP_ACT_BASIC: u64 = 1;

pub fn kernel(host: &Host) -> Finding {
    let release = &host.kernel_release;
    let (want_major, want_minor) = MIN_KERNEL;
    match super::procfs::kernel_version(release) {
        Some(v) if v >= MIN_KERNEL => Finding::new(
            "kernel",
            Level::Ok,
            format!("Linux {release} (lb needs {want_major}.{want_minor} or later)"),
        ),
        Some(_) => Finding::new(
            "kernel",
            Level::Problem,
            format!(
                "Linux {release}: lb's XDP program uses BPF load-acquire/store-release, \
                 which the verifier accepts from {want_major}.{want_minor} on"
            ),
        )
        .fix(format!(
            "boot a Linux {want_major}.{want_minor} or later kernel"
        )),
        None => Finding::new(
            "kernel",
            Level::Warning,
            format!("cannot read a version from the release {release:?}"),
        ),
    }
}

pub fn btf(host: &Host) -> Finding {
    if host.vmlinux_btf {
        Finding::new("btf", Level::Ok, "/sys/kernel/btf/vmlinux is there")
    } else {
        Finding::new(
            "btf",
            Level::Warning,
            "no /sys/kernel/btf/vmlinux: this kernel was built without BTF \
             (CONFIG_DEBUG_INFO_BTF); lb was only ever run on kernels with it",
        )
        .fix("use a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's are)")
    }
}

pub fn bpffs(config: &Config, host: &Host) -> Finding {
    let pin_dir = &config.agent.bpffs;
    match &host.pin_fs {
        Ok((at, true)) => Finding::new(
            "bpffs",
            Level::Ok,
            format!(
                "{} is on a bpffs (checked at {})",
                pin_dir.display(),
                at.display()
            ),
        ),
        Ok((at, false)) => {
            let mount_at = if pin_dir.starts_with("/sys/fs/bpf") {
                "/sys/fs/bpf".into()
            } else {
                pin_dir.display().to_string()
            };
            Finding::new(
                "bpffs",
                Level::Warning,
                format!(
                    "{} is not a bpffs: the agent mounts one at {mount_at} when it starts \
                     (the reason the unit keeps CAP_SYS_ADMIN); pins live as long as that mount",
                    at.display()
                ),
            )
            .fix(format!(
                "mount -t bpf bpf {mount_at}   # or let the agent do it"
            ))
        }
        Err(e) => Finding::new("bpffs", Level::Warning, format!("could not check: {e}")),
    }
}

/// Existence, XDP support and attached program of every configured interface.
pub fn interfaces(config: &Config, host: &Host) -> Vec<Finding> {
    let links = match &host.links {
        Ok(l) => l,
        Err(e) => return vec![Finding::new("interface", Level::Warning, e.clone())],
    };
    let mut out = Vec::new();
    for iface in &config.interfaces {
        let Some(link) = links.get(&iface.name) else {
            out.push(
                Finding::new(
                    "interface",
                    Level::Problem,
                    "does not exist in this network namespace; the agent attaches to every \
                     interface under `interfaces:` and fails to start without it",
                )
                .about(&iface.name)
                .fix("create it, or remove it from `interfaces:` (`ip link` lists what exists)"),
            );
            continue;
        };
        out.push(xdp_support(iface, link.ifindex, host));
        out.push(xdp_program(iface, link, host));
    }
    out
}

fn xdp_support(iface: &InterfaceConfig, ifindex: u32, host: &Host) -> Finding {
    let name = &iface.name;
    let bits = match &host.xdp_features {
        Ok(Some(map)) => map.get(&ifindex).copied().unwrap_or(0),
        Ok(None) => {
            return Finding::new(
                "xdp_mode",
                Level::Warning,
                "this kernel cannot say which XDP actions the driver supports (netdev netlink family missing)",
            )
            .about(name);
        }
        Err(e) => return Finding::new("xdp_mode", Level::Warning, e.clone()).about(name),
    };
    let native = bits & XDP_ACT_BASIC != 0;
    let listed = XDP_ACT
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ");
    match (iface.xdp_mode, native) {
        (XdpMode::Native, true) => Finding::new(
            "xdp_mode",
            Level::Ok,
            format!("native XDP supported by the driver ({listed})"),
        ),
        (XdpMode::Native, false) => Finding::new(
            "xdp_mode",
            Level::Problem,
            "configured `xdp_mode: native`, but the driver has no native XDP: attaching fails",
        )
        .fix(format!(
            "set `xdp_mode: generic` for {name} (any driver; slower: the kernel builds an skb first), \
             or use a NIC whose driver supports XDP"
        )),
        (XdpMode::Generic, true) => Finding::new(
            "xdp_mode",
            Level::Warning,
            format!(
                "configured `xdp_mode: generic`, though the driver runs XDP natively ({listed}): \
                 generic mode costs an skb per packet"
            ),
        )
        .fix(format!("set `xdp_mode: native` for {name}")),
        (XdpMode::Generic, false) => Finding::new(
            "xdp_mode",
            Level::Info,
            "generic XDP (the driver has no native XDP): works, at the cost of an skb per packet",
        ),
    }
    .about(name)
}

fn xdp_program(iface: &InterfaceConfig, link: &super::netlink::LinkInfo, host: &Host) -> Finding {
    let name = &iface.name;
    let Some(att) = link.xdp else {
        return Finding::new(
            "xdp_program",
            Level::Ok,
            format!("no XDP program attached; the agent attaches {PROG_LB}"),
        )
        .about(name);
    };
    let prog = match &host.program_names {
        Ok(names) => names.get(&att.prog_id).cloned(),
        Err(_) => None,
    };
    let what = format!(
        "{} (id {}, {} mode)",
        prog.as_deref().unwrap_or("a program"),
        att.prog_id,
        att.mode.as_str()
    );
    match prog.as_deref() {
        Some(PROG_LB) => Finding::new(
            "xdp_program",
            Level::Ok,
            format!("lb's data path is attached: {what}"),
        ),
        Some(_) => Finding::new(
            "xdp_program",
            Level::Problem,
            format!(
                "another XDP program is attached: {what}; the kernel takes one program per \
                 interface, so lb cannot attach"
            ),
        )
        .fix(format!(
            "if nothing needs it: `ip link set dev {name} xdp off` (attached over netlink), or \
             `bpftool link detach id <ID>` with the link `bpftool link` lists for it"
        )),
        None => Finding::new(
            "xdp_program",
            Level::Warning,
            format!("an XDP program is attached ({what}); naming it needs root"),
        ),
    }
    .about(name)
}

/// Strict reverse-path filtering on an interface lb uses.
pub fn rp_filter(config: &Config, host: &Host) -> Vec<Finding> {
    let value = |key: &str| host.sysctls.get(key).and_then(|v| v.parse::<u8>().ok());
    let all = value("net.ipv4.conf.all.rp_filter");
    // A missing interface has no sysctls; the `interface` check reports it.
    let exists = |name: &str| host.links.as_ref().map_or(true, |l| l.contains_key(name));
    config
        .interfaces
        .iter()
        .filter(|iface| exists(&iface.name))
        .map(|iface| {
            let own = value(&format!("net.ipv4.conf.{}.rp_filter", iface.name));
            // The kernel applies the larger of `all` and the interface's own value.
            let effective = all.max(own);
            let f = match effective {
                Some(1) => Finding::new(
                    "rp_filter",
                    Level::Problem,
                    format!(
                        "strict reverse-path filtering (all={}, {}={}): packets lb hands to the \
                         kernel are dropped when the route back to their source leaves by another \
                         interface — ICMP and L7 traffic to VIPs on a VRRP macvlan (`use_vmac`), \
                         `via_service` check replies, anything arriving on one leg of a multi-homed LB",
                        all.unwrap_or(0),
                        iface.name,
                        own.unwrap_or(0)
                    ),
                )
                .fix(format!(
                    "sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{0}.rp_filter=2\n\
                     (loose mode, systemd's default; persist it in /etc/sysctl.d/)",
                    iface.name
                )),
                Some(v) => Finding::new(
                    "rp_filter",
                    Level::Ok,
                    format!("rp_filter={v} ({})", if v == 0 { "off" } else { "loose" }),
                ),
                None => Finding::new("rp_filter", Level::Warning, "could not read rp_filter"),
            };
            f.about(&iface.name)
        })
        .collect()
}

/// What every DR backend must do itself, as commands to run on it.
pub fn dr_backends(config: &Config) -> Vec<Finding> {
    // backend address -> (its names, the VIP addresses it must hold)
    let mut needs: BTreeMap<IpAddr, (Vec<String>, Vec<IpAddr>)> = BTreeMap::new();
    for service in config.services.iter().filter(|s| s.mode == Mode::Dr) {
        let Some(pool) = config.pool(&service.pool) else {
            continue;
        };
        for b in &pool.backends {
            let entry = needs.entry(b.address).or_default();
            let name = format!("{}/{}", pool.name, b.name);
            if !entry.0.contains(&name) {
                entry.0.push(name);
            }
            if !entry.1.contains(&service.address) {
                entry.1.push(service.address);
            }
        }
    }
    if needs.is_empty() {
        return vec![Finding::new(
            "dr_backend",
            Level::NotApplicable,
            "no direct-routing services",
        )];
    }
    needs
        .into_iter()
        .map(|(addr, (names, vips))| {
            Finding::new(
                "dr_backend",
                Level::Info,
                format!(
                    "direct routing: run these on {addr} ({}); the doctor cannot check other hosts",
                    names.join(", ")
                ),
            )
            .about(addr.to_string())
            .fix(dr_commands(&vips))
        })
        .collect()
}

/// The VIPs on `lo` and, for IPv4, no ARP answers or ARP sources for them
/// (`arp_ignore=1`, `arp_announce=2`, as LVS-DR real servers have always had).
fn dr_commands(vips: &[IpAddr]) -> String {
    let mut lines = Vec::new();
    if vips.iter().any(IpAddr::is_ipv4) {
        lines.push(
            "sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2".to_owned(),
        );
    }
    for vip in vips {
        lines.push(match vip {
            IpAddr::V4(v) => format!("ip addr add {v}/32 dev lo"),
            IpAddr::V6(v) => format!("ip -6 addr add {v}/128 dev lo"),
        });
    }
    lines.push("(make them persistent: /etc/sysctl.d/, the network configuration)".to_owned());
    lines.join("\n")
}

/// Kernel forwarding, and the transparent-proxy sysctls lb does not need.
pub fn forwarding(host: &Host) -> Vec<Finding> {
    let ip_forward = host.sysctls.get("net.ipv4.ip_forward").map(String::as_str);
    let forward = match ip_forward {
        Some("0") => Finding::new(
            "ip_forward",
            Level::Ok,
            "off: forwarding is the XDP program's job, the kernel routes nothing",
        ),
        Some(v) => Finding::new(
            "ip_forward",
            Level::Info,
            format!(
                "net.ipv4.ip_forward={v}: lb does not need it; with it on, a VRRP backup's \
                 kernel routes what reaches it"
            ),
        ),
        None => Finding::new(
            "ip_forward",
            Level::Warning,
            "could not read net.ipv4.ip_forward",
        ),
    };
    let transparent = Finding::new(
        "transparent_proxy",
        Level::NotApplicable,
        "lb's L7 proxy has no transparent mode (it connects from the host's own addresses), \
         so no IP_TRANSPARENT routing or sysctls are needed",
    );
    vec![forward, transparent]
}

/// The data path's big maps against the memory available (and, on kernels
/// before memory-cgroup accounting, against `RLIMIT_MEMLOCK`).
pub fn memory(config: &Config, host: &Host) -> Finding {
    let need = map_bytes(config);
    let mib = |b: u64| b.div_ceil(1 << 20);
    let version = super::procfs::kernel_version(&host.kernel_release);
    let memcg = version.is_some_and(|v| v >= MEMCG_ACCOUNTING);
    let limit = match host.memlock {
        None => "unlimited".to_owned(),
        Some(l) => format!("{} MiB", mib(l)),
    };
    if !memcg && host.memlock.is_some_and(|l| l < need) {
        return Finding::new(
            "memlock",
            Level::Problem,
            format!(
                "RLIMIT_MEMLOCK is {limit}; this kernel charges BPF maps to it and the \
                 data path needs about {} MiB",
                mib(need)
            ),
        )
        .fix("LimitMEMLOCK=infinity in the unit (lb.service has it), or `ulimit -l unlimited`");
    }
    match host.mem_available {
        Some(avail) if avail < need => Finding::new(
            "memlock",
            Level::Problem,
            format!(
                "the data path's maps need about {} MiB; {} MiB are available",
                mib(need),
                mib(avail)
            ),
        )
        .fix("lower `agent.flow_table_size`, or add memory"),
        avail => Finding::new(
            "memlock",
            Level::Ok,
            format!(
                "the data path's maps need about {} MiB ({} available); BPF memory is charged \
                 to the memory cgroup{}, RLIMIT_MEMLOCK here is {limit}",
                mib(need),
                avail.map_or("? MiB".into(), |a| format!("{} MiB", mib(a))),
                if memcg { " (Linux 5.11+)" } else { "" },
            ),
        ),
    }
}

/// Flow tables (both families) and two rings per service, in bytes: the
/// maps that grow with the configuration; the rest are a few KiB.
pub fn map_bytes(config: &Config) -> u64 {
    let slots = size_of::<FlowSlotV4>() + size_of::<FlowSlotV6>();
    let flows = u64::from(config.agent.flow_table_size) * slots as u64;
    let rings: u64 = config
        .services
        .iter()
        .map(|s| {
            let backends = config.pool(&s.pool).map_or(0, |p| p.backends.len());
            let m = match s.ring_size {
                RingSize::Auto => lb_common::ring_size::auto(backends),
                RingSize::Fixed(m) => m,
            };
            2 * u64::from(m) * 4
        })
        .sum();
    flows + rings
}
