//! The direct-routing lab: client, load balancer and backends on one Linux bridge, each in its own
//! network namespace (docs/testing.md, "The netns rig").
//!
//! ```text
//!   client (eth0) ─┐                         ┌─ (eth0) b1   VIPs on lo, arp_ignore=1/arp_announce=2
//!                  ├── vclient ─ br0 ─ vb1 ──┤
//!   lb     (eth0) ─┘     vlb ─┘   (sw)  vb2 ─┴─ (eth0) b2 …
//!   VIPs on eth0: the LB answers ARP/NDP for them; XDP on its eth0 does the forwarding.
//! ```
//!
//! Addresses: IPv4 10.77.0.0/16 — lb .0.2, client .0.10, backend `bN` .0.(100+N), VIP 10.77.100.1,
//! client aliases 10.77.1.1… (on-link, so backends answer them directly). IPv6 fd77::/64 — lb ::2,
//! client ::10, `bN` ::(100+N) written in decimal digits (b1 = fd77::101, b12 = fd77::112),
//! VIP fd77::100:1, client aliases fd77::1:1…. Every interface `eth0` has MAC 02:77:00:00:00:XX
//! with XX the last IPv4 octet (in hex).
//!
//! Namespaces are named `<prefix>-sw`, `<prefix>-client`, `<prefix>-lb`, `<prefix>-bN`; the
//! bridge-side veth of host `X` is `vX` in `<prefix>-sw`. Nothing is attached to any interface:
//! the caller owns XDP (see [`Lab::lb_peer`]).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context as _, Result, ensure};

use crate::http::HttpBackend;
use crate::netns::{self, Mac, NetNs};

/// Prefix of the long-lived rig made by `cargo xtask rig up` ([`Lab::up_persistent`]).
pub const RIG_PREFIX: &str = "lbrig";
/// The one interface of every host namespace.
pub const IFNAME: &str = "eth0";
/// The bridge in the `sw` namespace.
pub const BRIDGE: &str = "br0";

/// The IPv4 VIP, owned by the LB.
pub const VIP4: Ipv4Addr = Ipv4Addr::new(10, 77, 100, 1);
/// The IPv6 VIP (`fd77::100:1`), owned by the LB.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0x100, 1);
/// Prefix length of the shared IPv4 subnet (10.77.0.0/16).
pub const PREFIX4: u8 = 16;
/// Prefix length of the shared IPv6 subnet (fd77::/64).
pub const PREFIX6: u8 = 64;

/// Most backends the address plan has room for (10.77.0.101–10.77.0.250).
pub const MAX_BACKENDS: usize = 150;
/// Most client aliases the address plan has room for (10.77.1.1–10.77.98.254).
pub const MAX_CLIENT_ALIASES: usize = 98 * 254;

/// What to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabSpec {
    /// Number of backends `b1..bN` (1 to [`MAX_BACKENDS`]).
    pub backends: usize,
    /// Extra source addresses on the client's eth0 (IPv4, and IPv6 if `ipv6`).
    pub client_aliases: usize,
    /// Configure the IPv6 addresses and VIP too.
    pub ipv6: bool,
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            backends: 3,
            client_aliases: 0,
            ipv6: true,
        }
    }
}

impl LabSpec {
    fn validate(&self) -> Result<()> {
        ensure!(
            (1..=MAX_BACKENDS).contains(&self.backends),
            "backends must be 1..={MAX_BACKENDS}, not {}",
            self.backends
        );
        ensure!(
            self.client_aliases <= MAX_CLIENT_ALIASES,
            "client_aliases must be at most {MAX_CLIENT_ALIASES}, not {}",
            self.client_aliases
        );
        Ok(())
    }
}

/// The LB's IPv4 address.
pub const LB_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
/// The LB's IPv6 address.
pub const LB_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 2);
/// The client's primary IPv4 address.
pub const CLIENT_V4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
/// The client's primary IPv6 address.
pub const CLIENT_V6: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x10);

/// IPv4 address of backend `bN` (`n` from 1).
pub fn backend_v4(n: usize) -> Ipv4Addr {
    assert!(
        (1..=MAX_BACKENDS).contains(&n),
        "backend number {n} out of range"
    );
    Ipv4Addr::new(10, 77, 0, (100 + n) as u8)
}

/// IPv6 address of backend `bN` (`n` from 1): the IPv4 octet's decimal digits as the last group.
pub fn backend_v6(n: usize) -> Ipv6Addr {
    assert!(
        (1..=MAX_BACKENDS).contains(&n),
        "backend number {n} out of range"
    );
    let group = u16::from_str_radix(&(100 + n).to_string(), 16).expect("3 decimal digits are hex");
    Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, group)
}

/// IPv4 client alias number `k` (from 0): 10.77.1.1, …, 10.77.1.254, 10.77.2.1, …
pub fn client_alias_v4(k: usize) -> Ipv4Addr {
    assert!(k < MAX_CLIENT_ALIASES, "client alias {k} out of range");
    Ipv4Addr::new(10, 77, (1 + k / 254) as u8, (1 + k % 254) as u8)
}

/// IPv6 client alias number `k` (from 0): fd77::1:1, fd77::1:2, …
pub fn client_alias_v6(k: usize) -> Ipv6Addr {
    assert!(k < MAX_CLIENT_ALIASES, "client alias {k} out of range");
    Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 1, (k + 1) as u16)
}

/// One machine of the lab: a namespace with `eth0` whose peer is a port of the bridge.
#[derive(Debug)]
pub struct Host {
    /// `client`, `lb`, `b1`, …
    pub name: String,
    /// Its namespace.
    pub ns: NetNs,
    /// Primary IPv4 address of `eth0`.
    pub ipv4: Ipv4Addr,
    /// Primary IPv6 address of `eth0`, if the lab has IPv6.
    pub ipv6: Option<Ipv6Addr>,
    /// MAC of `eth0`.
    pub mac: Mac,
    /// Index of `eth0` inside [`Self::ns`].
    pub ifindex: u32,
    /// The bridge-side end of `eth0`'s veth, in the `sw` namespace (`v<name>`).
    pub peer: String,
    /// Index of [`Self::peer`] inside the `sw` namespace.
    pub peer_ifindex: u32,
}

impl Host {
    /// The host's primary address of the same family as `ipv6` asks.
    pub fn ip(&self, ipv6: bool) -> IpAddr {
        match (ipv6, self.ipv6) {
            (false, _) => self.ipv4.into(),
            (true, Some(v6)) => v6.into(),
            (true, None) => panic!(
                "host {} has no IPv6 address (LabSpec::ipv6 is false)",
                self.name
            ),
        }
    }
}

/// The DR topology; every namespace is removed on drop (unless made by
/// [`Lab::up_persistent`] or [`Lab::attach`]).
#[derive(Debug)]
pub struct Lab {
    prefix: String,
    spec: LabSpec,
    client: Host,
    lb: Host,
    backends: Vec<Host>,
    /// Dropped last: removing the host namespaces first removes their veths from the bridge.
    sw: NetNs,
}

impl Lab {
    /// Builds the lab under a fresh [`netns::unique_prefix`]. Leftovers of test processes that died
    /// without cleaning up are removed first ([`netns::cleanup_orphans`]).
    pub fn new(spec: LabSpec) -> Result<Lab> {
        if let Err(e) = netns::cleanup_orphans() {
            eprintln!("lb-tests: removing orphaned namespaces: {e:#}");
        }
        Lab::with_prefix(&netns::unique_prefix(), spec)
    }

    /// Builds the lab with namespaces named `<prefix>-…`; fails if any already exists. On failure
    /// everything created so far is removed.
    pub fn with_prefix(prefix: &str, spec: LabSpec) -> Result<Lab> {
        spec.validate()?;
        build(prefix, spec).with_context(|| format!("building lab {prefix:?}"))
    }

    /// `cargo xtask rig up`: removes any lab under `prefix` (normally [`RIG_PREFIX`]), builds a
    /// new one and leaves it in place when the returned handle is dropped.
    pub fn up_persistent(prefix: &str, spec: LabSpec) -> Result<Lab> {
        Lab::down(prefix)?;
        let mut lab = Lab::with_prefix(prefix, spec)?;
        lab.persist();
        Ok(lab)
    }

    /// `cargo xtask rig down`: removes every namespace `<prefix>-…`; returns their names.
    pub fn down(prefix: &str) -> Result<Vec<String>> {
        netns::cleanup_stale(prefix)
    }

    /// A handle on a lab left by [`Lab::up_persistent`] (possibly by another process); the
    /// namespaces stay when it is dropped. The spec is read back from what exists.
    pub fn attach(prefix: &str) -> Result<Lab> {
        let open = |name: &str| NetNs::open(&format!("{prefix}-{name}"));
        let sw = open("sw")?;
        let client = open("client")?;
        let global6 = client.ip(&["-o", "-6", "addr", "show", "dev", IFNAME, "scope", "global"])?;
        let ipv6 = !global6.trim().is_empty();
        // `2: eth0    inet 10.77.1.1/16 scope global secondary eth0 …`
        let addrs4: HashSet<Ipv4Addr> = client
            .ip(&["-o", "-4", "addr", "show", "dev", IFNAME])?
            .lines()
            .filter_map(|l| l.split_whitespace().skip_while(|w| *w != "inet").nth(1))
            .filter_map(|a| a.split('/').next()?.parse().ok())
            .collect();
        let client_aliases = (0..MAX_CLIENT_ALIASES)
            .take_while(|&k| addrs4.contains(&client_alias_v4(k)))
            .count();
        let mut backends = 0;
        while netns::exists(&format!("{prefix}-b{}", backends + 1)) {
            backends += 1;
        }
        let spec = LabSpec {
            backends,
            client_aliases,
            ipv6,
        };
        spec.validate()
            .with_context(|| format!("lab {prefix:?} as found"))?;
        let v6 = |a: Ipv6Addr| ipv6.then_some(a);
        let client = describe_host(&sw, client, "client", CLIENT_V4, v6(CLIENT_V6))?;
        let lb = describe_host(&sw, open("lb")?, "lb", LB_V4, v6(LB_V6))?;
        let backends = (1..=backends)
            .map(|n| {
                let name = format!("b{n}");
                describe_host(&sw, open(&name)?, &name, backend_v4(n), v6(backend_v6(n)))
            })
            .collect::<Result<_>>()?;
        Ok(Lab {
            prefix: prefix.to_owned(),
            spec,
            client,
            lb,
            backends,
            sw,
        })
    }

    /// Leaves every namespace in place when the lab is dropped.
    pub fn persist(&mut self) {
        self.sw.persist();
        for h in self.hosts_mut() {
            h.ns.persist();
        }
    }

    /// The prefix of every namespace name.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What was built.
    pub fn spec(&self) -> LabSpec {
        self.spec
    }

    /// The namespace holding the bridge.
    pub fn sw(&self) -> &NetNs {
        &self.sw
    }

    /// The client.
    pub fn client(&self) -> &Host {
        &self.client
    }

    /// The load balancer (XDP goes on its `eth0`).
    pub fn lb(&self) -> &Host {
        &self.lb
    }

    /// The backends, `b1` first.
    pub fn backends(&self) -> &[Host] {
        &self.backends
    }

    /// Backend by name (`"b2"`); panics if there is none.
    pub fn backend(&self, name: &str) -> &Host {
        self.backends
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("lab {} has no backend {name:?}", self.prefix))
    }

    /// `["b1", "b2", …]`.
    pub fn backend_names(&self) -> Vec<String> {
        self.backends.iter().map(|b| b.name.clone()).collect()
    }

    /// Client, LB and backends.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        [&self.client, &self.lb].into_iter().chain(&self.backends)
    }

    fn hosts_mut(&mut self) -> impl Iterator<Item = &mut Host> {
        [&mut self.client, &mut self.lb]
            .into_iter()
            .chain(&mut self.backends)
    }

    /// Names of all the lab's namespaces.
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.sw.name())
            .chain(self.hosts().map(|h| h.ns.name()))
            .map(str::to_owned)
            .collect()
    }

    /// The IPv4 VIP.
    pub fn vip4(&self) -> Ipv4Addr {
        VIP4
    }

    /// The IPv6 VIP (configured only if the spec asked for IPv6).
    pub fn vip6(&self) -> Ipv6Addr {
        VIP6
    }

    /// The VIP of one family.
    pub fn vip(&self, ipv6: bool) -> IpAddr {
        if ipv6 { VIP6.into() } else { VIP4.into() }
    }

    /// The client's IPv4 aliases (not including its primary address).
    pub fn client_aliases4(&self) -> Vec<Ipv4Addr> {
        (0..self.spec.client_aliases).map(client_alias_v4).collect()
    }

    /// The client's IPv6 aliases (empty without IPv6).
    pub fn client_aliases6(&self) -> Vec<Ipv6Addr> {
        let n = if self.spec.ipv6 {
            self.spec.client_aliases
        } else {
            0
        };
        (0..n).map(client_alias_v6).collect()
    }

    /// The bridge-side end of the LB's veth: `(sw namespace, interface name)`.
    ///
    /// Frames the LB sends with `XDP_TX` (or redirects) into its veth are dropped unless the *peer*
    /// has an XDP program (veth gotcha 1 in docs/testing.md): attach a trivial `XDP_PASS` program
    /// here before expecting forwarded traffic. Real NICs need nothing of the kind.
    pub fn lb_peer(&self) -> (&NetNs, &str) {
        (&self.sw, &self.lb.peer)
    }

    /// Starts an [`HttpBackend`] answering with its name on `port` in every backend.
    pub fn start_http(&self, port: u16) -> Result<Vec<HttpBackend>> {
        self.backends
            .iter()
            .map(|b| HttpBackend::start(&b.ns, &b.name, port))
            .collect()
    }
}

/// The kernel's neighbour tables (ARP and NDP) are shared by every network
/// namespace, and their hard limit (`gc_thresh3`, 1024 by default) counts the
/// entries of all of them: each backend keeps one per client alias it answers,
/// so a lab with many aliases (or several labs at once) overflows it and SYN-ACKs
/// silently go nowhere ("neighbor table overflow!" in dmesg). The limits live
/// only in the initial namespace; raise them (never lower) to fit.
fn ensure_neighbour_room(aliases: usize) -> Result<()> {
    let want = (4 * aliases + 4096).max(1024);
    for family in ["ipv4", "ipv6"] {
        for (key, need) in [("gc_thresh2", want / 2), ("gc_thresh3", want)] {
            let path = format!("/proc/sys/net/{family}/neigh/default/{key}");
            let now: usize = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {path}"))?
                .trim()
                .parse()
                .with_context(|| format!("parsing {path}"))?;
            if now < need {
                std::fs::write(&path, need.to_string())
                    .with_context(|| format!("raising {path} to {need}"))?;
            }
        }
    }
    Ok(())
}

fn build(prefix: &str, spec: LabSpec) -> Result<Lab> {
    ensure_neighbour_room(spec.client_aliases)?;
    let sw = NetNs::new(&format!("{prefix}-sw"))?;
    // Veth gotcha 3 (docs/testing.md): with br_netfilter loaded, every new namespace starts with
    // bridge-nf-call-*=1 and the bridge would run bridged frames through netfilter (dropping
    // malformed IPv4, reassembling fragments) before the LB sees them. The keys are absent when the
    // module is not loaded, in which case there is nothing to turn off.
    if sw.try_run(|| std::path::Path::new("/proc/sys/net/bridge").exists())? {
        for table in ["iptables", "ip6tables", "arptables"] {
            sw.sysctl(&format!("net.bridge.bridge-nf-call-{table}"), "0")?;
        }
    }
    // The switch has no addresses; keep its ports from sending router solicitations and MLD.
    sw.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
    sw.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
    // STP off: ports forward at once. Snooping off: NDP multicast is flooded, whatever MLD does.
    ip(
        &sw,
        &format!("link add {BRIDGE} type bridge stp_state 0 forward_delay 0 mcast_snooping 0"),
    )?;
    ip(&sw, &format!("link set {BRIDGE} up"))?;

    let v6 = spec.ipv6;
    let new_host = |name: &str, ipv4: Ipv4Addr, ipv6: Ipv6Addr| -> Result<Host> {
        let ipv6 = v6.then_some(ipv6);
        let ns =
            create_host(prefix, name, &sw, ipv4, ipv6).with_context(|| format!("host {name}"))?;
        describe_host(&sw, ns, name, ipv4, ipv6)
    };
    let client = new_host("client", CLIENT_V4, CLIENT_V6)?;
    let lb = new_host("lb", LB_V4, LB_V6)?;
    let backends = (1..=spec.backends)
        .map(|n| new_host(&format!("b{n}"), backend_v4(n), backend_v6(n)))
        .collect::<Result<Vec<_>>>()?;

    // Veth gotcha 2 (docs/testing.md): a veth hands packets over with partial checksums
    // (CHECKSUM_PARTIAL), which XDP_TX does not complete, so the backend would drop the forwarded
    // SYN. Turning TX checksum offload off on the sender makes it checksum in software; off on the
    // bridge port towards the LB, the bridge completes the checksum of whatever it hands the LB,
    // whoever sent it (verified with a DR XDP program: either one alone suffices, even with the
    // client's TSO on). Both are off here, as a real NIC would only ever deliver complete
    // checksums.
    client.ns.exec(&["ethtool", "-K", IFNAME, "tx", "off"])?;
    sw.exec(&["ethtool", "-K", &lb.peer, "tx", "off"])?;

    // Client: source aliases.
    let mut aliases: Vec<String> = (0..spec.client_aliases)
        .map(|k| {
            format!(
                "address replace {}/{PREFIX4} dev {IFNAME}",
                client_alias_v4(k)
            )
        })
        .collect();
    if v6 {
        aliases.extend((0..spec.client_aliases).map(|k| {
            format!(
                "address replace {}/{PREFIX6} dev {IFNAME} nodad",
                client_alias_v6(k)
            )
        }));
    }
    client
        .ns
        .ip_batch(&aliases)
        .context("adding client aliases")?;

    // LB: owns the VIPs on eth0, so it answers ARP and NDP for them. Forwarding is XDP's job,
    // never the kernel's.
    lb.ns.sysctl("net.ipv4.ip_forward", "0")?;
    lb.ns.sysctl("net.ipv6.conf.all.forwarding", "0")?;
    ip(&lb.ns, &format!("address replace {VIP4}/32 dev {IFNAME}"))?;
    if v6 {
        ip(
            &lb.ns,
            &format!("address replace {VIP6}/128 dev {IFNAME} nodad"),
        )?;
    }

    // Backends (LVS-DR): the VIPs on lo so they accept forwarded packets, without answering ARP
    // for them (arp_ignore=1: only for addresses of the receiving interface) nor using them as
    // ARP source (arp_announce=2). IPv6 needs nothing: Linux answers NDP only for addresses of
    // the receiving interface.
    for b in &backends {
        for scope in ["all", IFNAME] {
            b.ns.sysctl(&format!("net.ipv4.conf.{scope}.arp_ignore"), "1")?;
            b.ns.sysctl(&format!("net.ipv4.conf.{scope}.arp_announce"), "2")?;
        }
        ip(&b.ns, &format!("address replace {VIP4}/32 dev lo"))?;
        if v6 {
            ip(&b.ns, &format!("address replace {VIP6}/128 dev lo nodad"))?;
        }
    }

    Ok(Lab {
        prefix: prefix.to_owned(),
        spec,
        client,
        lb,
        backends,
        sw,
    })
}

/// Creates host namespace `<prefix>-<name>` with `eth0` up and its primary addresses; `eth0` is
/// a veth whose peer `v<name>` is a port of the bridge.
fn create_host(
    prefix: &str,
    name: &str,
    sw: &NetNs,
    ipv4: Ipv4Addr,
    ipv6: Option<Ipv6Addr>,
) -> Result<NetNs> {
    let ns = NetNs::new(&format!("{prefix}-{name}"))?;
    // Addresses must be usable at once: no duplicate address detection, link-local included
    // (a tentative link-local address cannot source NDP).
    for scope in ["all", "default"] {
        ns.sysctl(&format!("net.ipv6.conf.{scope}.accept_dad"), "0")?;
        ns.sysctl(
            &format!("net.ipv6.conf.{scope}.disable_ipv6"),
            if ipv6.is_some() { "0" } else { "1" },
        )?;
    }
    let peer = format!("v{name}");
    let mac = Mac([0x02, 0x77, 0, 0, 0, ipv4.octets()[3]]).to_string();
    // Created from the switch's side with the host end placed straight into its namespace, so no
    // interface name ever appears in (or can collide in) the root namespace.
    let ns_name = ns.name();
    ip(
        sw,
        &format!("link add {peer} type veth peer name {IFNAME} address {mac} netns {ns_name}"),
    )?;
    ip(sw, &format!("link set {peer} master {BRIDGE} up"))?;
    ip(
        &ns,
        &format!("address replace {ipv4}/{PREFIX4} dev {IFNAME}"),
    )?;
    if let Some(ipv6) = ipv6 {
        ip(
            &ns,
            &format!("address replace {ipv6}/{PREFIX6} dev {IFNAME} nodad"),
        )?;
    }
    ip(&ns, &format!("link set {IFNAME} up"))?;
    Ok(ns)
}

/// `ip -n <ns>` with a command line of space-separated words (none of the lab's contain spaces).
fn ip(ns: &NetNs, cmd: &str) -> Result<String> {
    ns.ip(&cmd.split_whitespace().collect::<Vec<_>>())
}

/// Reads back what the rest of the tests need to know about a wired host.
fn describe_host(
    sw: &NetNs,
    ns: NetNs,
    name: &str,
    ipv4: Ipv4Addr,
    ipv6: Option<Ipv6Addr>,
) -> Result<Host> {
    let peer = format!("v{name}");
    Ok(Host {
        name: name.to_owned(),
        mac: ns.mac(IFNAME)?,
        ifindex: ns.ifindex(IFNAME)?,
        peer_ifindex: sw.ifindex(&peer)?,
        peer,
        ipv4,
        ipv6,
        ns,
    })
}
