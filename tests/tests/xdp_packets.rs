//! Packet tests: frames through the real XDP program with `BPF_PROG_TEST_RUN`,
//! table-driven: input bytes → expected action, reason and output bytes.
//!
//! Each test loads its own copy of the data path (private maps, nothing pinned)
//! inside its own network namespace, configured through the real reconciler.
//! Needs root (CI runs it as root).

use std::net::{IpAddr, SocketAddr};

use lb_common::{
    abi::{Addr, BackendId},
    consts::{PROG_LB, Reason, state, vip_flags, xdp_action},
    hash::{flow_hash, ring_slot},
};
use lb_dataplane::{
    Dataplane, Options,
    plan::{self as reconcile, Actual, DesiredBackend, DesiredVip, NextHop},
};
use lb_tests::packet::{
    ACK, DEFAULT_DST_MAC, DEFAULT_SRC_MAC, FIN, IcmpErr, Ipv6ExtKind, Packet, RST, with_macs,
};

const LB_MAC: [u8; 6] = [0x02, 0x1b, 0, 0, 0, 1];

struct Harness {
    dp: Dataplane,
    actual: Actual,
    vips: Vec<DesiredVip>,
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sh(cmd: &str) {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: a valid NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(i, 0, "no interface {name}");
    i
}

fn vip(addr: &str, port: u16, proto: u8, flags: u32, backends: &[(&str, u32)]) -> DesiredVip {
    DesiredVip {
        key: lb_common::abi::VipKey::new(ip(addr), port, proto),
        flags,
        ring_size: 65537,
        backends: backends
            .iter()
            .enumerate()
            .map(|(i, &(a, ifindex))| DesiredBackend {
                key: format!("{a}:{port}"),
                addr: Addr::from_ip(ip(a)),
                port,
                weight: 1,
                state: state::UP,
                next_hop: NextHop {
                    ifindex,
                    src_mac: LB_MAC,
                    dst_mac: [0x02, 0xbe, 0, 0, port as u8, i as u8 + 1],
                },
            })
            .collect(),
    }
}

/// A fresh network namespace (lo = ifindex 1, the test-run ingress, plus a veth
/// as redirect target) and a data path with seven VIPs.
fn harness() -> Harness {
    // SAFETY: unshare affects only this thread, which runs the whole test.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "unshare(CLONE_NEWNET) needs root");
    sh(
        "ip link set lo up && ip link add lbt0 type veth peer name lbt1 && ip link set lbt0 up && ip link set lbt1 up",
    );
    let other = ifindex("lbt0");
    let dp = Dataplane::open(&Options {
        flow_table_size: 4096,
        ..Options::default()
    })
    .expect("loading the data path (needs root and BPF)");
    let vips = vec![
        vip(
            "10.0.0.100",
            80,
            6,
            0,
            &[("10.0.1.1", 1), ("10.0.1.2", 1), ("10.0.1.3", 1)],
        ),
        vip("10.0.0.100", 53, 17, 0, &[("10.0.2.1", 1), ("10.0.2.2", 1)]),
        vip(
            "fd00::100",
            443,
            6,
            0,
            &[("fd00:1::1", 1), ("fd00:1::2", 1)],
        ),
        vip(
            "fd00::100",
            53,
            17,
            0,
            &[("fd00:2::1", 1), ("fd00:2::2", 1)],
        ),
        vip(
            "10.0.0.200",
            0,
            6,
            vip_flags::HASH_SRC_PORT,
            &[("10.0.3.1", 1), ("10.0.3.2", 1)],
        ),
        vip("10.0.0.101", 80, 6, 0, &[("10.0.4.1", other)]),
        vip("10.0.0.102", 80, 6, 0, &[]),
    ];
    // BPF_PROG_TEST_RUN runs frames as received on the namespace's
    // loopback (index 1): register the MAC the test frames are sent to, so
    // every case below also passes the destination-MAC check.
    let mut dp = dp;
    dp.register_rx_mac(1, DEFAULT_DST_MAC).unwrap();
    let mut h = Harness {
        dp,
        actual: Actual::default(),
        vips,
    };
    h.reconcile();
    h
}

impl Harness {
    fn reconcile(&mut self) {
        let desired: reconcile::Desired = self.vips.iter().cloned().collect();
        let plan = reconcile::plan_full(&self.actual, &desired).unwrap();
        reconcile::apply(&mut self.dp, &mut self.actual, plan).unwrap();
    }

    fn set_state(&mut self, backend: &str, s: u32) {
        let a = Addr::from_ip(ip(backend));
        for v in &mut self.vips {
            for b in &mut v.backends {
                if b.addr == a {
                    b.state = s;
                }
            }
        }
        self.reconcile();
    }

    fn id_of(&self, backend: &str) -> BackendId {
        let a = Addr::from_ip(ip(backend));
        *self
            .actual
            .backends
            .iter()
            .find(|(_, b)| b.addr == a)
            .unwrap()
            .0
    }

    /// The backend the ring gives `src:sport` at `vip`, computed in userspace
    /// with the shared hash from the ring read back out of the kernel.
    fn predicted(&self, vip: (&str, u16, u8), src: SocketAddr) -> BackendId {
        let key = lb_common::abi::VipKey::new(ip(vip.0), vip.1, vip.2);
        let v = self.actual.vips[&key];
        let ring = self.dp.ring(v.id).unwrap().unwrap();
        let sport = if v.flags & vip_flags::HASH_SRC_PORT != 0 {
            src.port().to_be()
        } else {
            0
        };
        ring[ring_slot(
            flow_hash(&Addr::from_ip(src.ip()), sport),
            ring.len() as u32,
        ) as usize]
    }

    /// Runs one frame; checks the action, the reason counter (exactly this one
    /// moved, by one) and the output bytes.
    fn check(&mut self, name: &str, frame: &[u8], want: Want) {
        let before = self.dp.reasons().unwrap();
        let out = self.dp.test_run(PROG_LB, frame).unwrap();
        let after = self.dp.reasons().unwrap();
        let moved: Vec<(&str, u64)> = after
            .iter()
            .map(|(k, v)| (*k, v - before[k]))
            .filter(|(_, d)| *d != 0)
            .collect();
        let (action, reason, expect_frame) = match want {
            Want::Forward(reason, id) | Want::Redirect(reason, id) => {
                let b = self.actual.backends[&id];
                let action = if matches!(want, Want::Redirect(..)) {
                    xdp_action::REDIRECT
                } else {
                    xdp_action::TX
                };
                (action, reason, with_macs(frame, b.src_mac, b.dst_mac))
            }
            Want::Pass(r) => (xdp_action::PASS, r, frame.to_vec()),
            Want::Drop(r) => (xdp_action::DROP, r, frame.to_vec()),
        };
        assert_eq!(
            out.action, action,
            "{name}: action (reasons moved: {moved:?})"
        );
        assert_eq!(moved, vec![(reason.name(), 1)], "{name}: reason counters");
        assert_eq!(out.frame, expect_frame, "{name}: output frame");
    }
}

#[derive(Clone, Copy, Debug)]
enum Want {
    Forward(Reason, BackendId),
    Redirect(Reason, BackendId),
    Pass(Reason),
    Drop(Reason),
}

const WEB: (&str, u16, u8) = ("10.0.0.100", 80, 6);
const DNS: (&str, u16, u8) = ("10.0.0.100", 53, 17);
const WEB6: (&str, u16, u8) = ("fd00::100", 443, 6);
const DNS6: (&str, u16, u8) = ("fd00::100", 53, 17);

#[test]
fn single_packets_get_the_verdict_the_policy_names() {
    let mut h = harness();
    let c4 = sock("192.0.2.10:40000");
    let c6 = sock("[2001:db8::10]:40000");
    let web = sock("10.0.0.100:80");
    let web6 = sock("[fd00::100]:443");
    let syn = Packet::tcp(c4, web);
    let l = syn.layers();
    let tx = |h: &Harness, vip, src| Want::Forward(Reason::Tx, h.predicted(vip, src));

    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        // Hits on every kind of VIP.
        ("v4 tcp syn to vip", syn.build(), tx(&h, WEB, c4)),
        (
            "v4 tcp with payload",
            Packet::tcp(sock("192.0.2.11:1"), web)
                .tcp_flags(ACK)
                .payload(b"GET / HTTP/1.1\r\n\r\n")
                .build(),
            tx(&h, WEB, sock("192.0.2.11:1")),
        ),
        (
            "v4 udp to vip",
            Packet::udp(c4, sock("10.0.0.100:53"))
                .payload(b"dns")
                .build(),
            tx(&h, DNS, c4),
        ),
        (
            "v6 tcp syn to vip",
            Packet::tcp(c6, web6).build(),
            tx(&h, WEB6, c6),
        ),
        (
            "v6 udp to vip",
            Packet::udp(c6, sock("[fd00::100]:53"))
                .payload(b"dns")
                .build(),
            tx(&h, DNS6, c6),
        ),
        (
            "v6 udp to a non-vip port",
            Packet::udp(c6, sock("[fd00::100]:54")).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "v6 tcp through hop-by-hop and dest-opts headers",
            Packet::tcp(sock("[2001:db8::11]:5"), web6)
                .ipv6_ext(Ipv6ExtKind::HopByHop, 8)
                .ipv6_ext(Ipv6ExtKind::DestOpts, 16)
                .build(),
            tx(&h, WEB6, sock("[2001:db8::11]:5")),
        ),
        (
            "802.1Q tagged v4 syn (tag kept)",
            Packet::tcp(sock("192.0.2.12:7"), web).vlan(42).build(),
            tx(&h, WEB, sock("192.0.2.12:7")),
        ),
        (
            "v4 with options is forwarded intact",
            Packet::tcp(sock("192.0.2.13:7"), web)
                .ipv4_options(&[0x94, 0x04, 0, 0])
                .build(),
            tx(&h, WEB, sock("192.0.2.13:7")),
        ),
        (
            "wildcard-port vip, port 8080",
            Packet::tcp(c4, sock("10.0.0.200:8080")).build(),
            Want::Forward(Reason::Tx, h.predicted(("10.0.0.200", 0, 6), c4)),
        ),
        (
            "backend behind another interface",
            Packet::tcp(c4, sock("10.0.0.101:80")).build(),
            Want::Redirect(Reason::Redirect, h.id_of("10.0.4.1")),
        ),
        // Not ours: untouched.
        ("arp", arp_frame(), Want::Pass(Reason::PassNotIp)),
        (
            "double-tagged (a second tag is not IP)",
            double_tagged(&Packet::tcp(c4, web).vlan(1).build()),
            Want::Pass(Reason::PassNotIp),
        ),
        (
            "v4 tcp to a non-vip port of a vip address",
            Packet::tcp(c4, sock("10.0.0.100:81")).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "v4 udp to the tcp-only vip port",
            Packet::udp(c4, web).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "v4 to another address",
            Packet::tcp(c4, sock("10.9.9.9:80")).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "v6 to another address",
            Packet::tcp(c6, sock("[fd00::999]:443")).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "gre-like other protocol to vip address",
            other_proto_frame(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "icmp echo to vip (the LB host answers)",
            Packet::icmp_echo(c4.ip(), ip("10.0.0.100")).build(),
            Want::Pass(Reason::PassIcmp),
        ),
        (
            "icmpv6 echo to vip",
            Packet::icmp_echo(c6.ip(), ip("fd00::100")).build(),
            Want::Pass(Reason::PassIcmp),
        ),
        (
            "icmp echo to another address",
            Packet::icmp_echo(c4.ip(), ip("10.9.9.9")).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "icmpv6 echo to another address",
            Packet::icmp_echo(c6.ip(), ip("fd00::999")).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        // No backend.
        (
            "vip without backends",
            Packet::tcp(c4, sock("10.0.0.102:80")).build(),
            Want::Drop(Reason::DropNoBackend),
        ),
        // Fragments.
        (
            "v4 first fragment to vip",
            Packet::udp(c4, sock("10.0.0.100:53"))
                .ipv4_fragment(true, 0)
                .build(),
            Want::Drop(Reason::DropFragment),
        ),
        (
            "v4 later fragment to vip",
            Packet::udp(c4, sock("10.0.0.100:53"))
                .ipv4_fragment(false, 185)
                .build(),
            Want::Drop(Reason::DropFragment),
        ),
        (
            "v4 fragment to another address",
            Packet::udp(c4, sock("10.9.9.9:53"))
                .ipv4_fragment(true, 0)
                .build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "v6 fragment header to vip",
            Packet::tcp(c6, web6).ipv6_fragment(0, true).build(),
            Want::Drop(Reason::DropFragment),
        ),
        (
            "v6 fragment to another address",
            Packet::tcp(c6, sock("[fd00::999]:443"))
                .ipv6_fragment(0, true)
                .build(),
            Want::Pass(Reason::PassNotVip),
        ),
        // Malformed IP to a VIP: dropped, never forwarded.
        (
            "bad ipv4 header checksum",
            Packet::tcp(c4, web).bad_ip_checksum().build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "ihl below 5",
            Packet::tcp(c4, web).ihl_override(4).build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "ip version 5 in an ipv4 frame",
            Packet::tcp(c4, web).ip_version_override(5).build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "total length beyond the frame",
            Packet::tcp(c4, web).ip_total_len_override(1500).build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "total length shorter than the header",
            Packet::tcp(c4, web).ip_total_len_override(12).build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "ipv6 version 4 in an ipv6 frame",
            Packet::tcp(c6, web6).ip_version_override(4).build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "ipv6 payload length beyond the frame",
            Packet::tcp(c6, web6).ipv6_payload_len_override(900).build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        // Malformed L4 to a VIP.
        (
            "tcp data offset below 5",
            Packet::tcp(c4, web).tcp_doff_override(4).build(),
            Want::Drop(Reason::DropMalformedL4),
        ),
        (
            "tcp data offset past the packet",
            Packet::tcp(c4, web).tcp_doff_override(15).build(),
            Want::Drop(Reason::DropMalformedL4),
        ),
        (
            "udp length below 8",
            Packet::udp(c4, sock("10.0.0.100:53"))
                .udp_len_override(6)
                .build(),
            Want::Drop(Reason::DropMalformedL4),
        ),
        (
            "udp length past the packet",
            Packet::udp(c4, sock("10.0.0.100:53"))
                .udp_len_override(400)
                .build(),
            Want::Drop(Reason::DropMalformedL4),
        ),
        // The same malformations elsewhere are the host's business.
        (
            "bad checksum to another address",
            Packet::tcp(c4, sock("10.9.9.9:80"))
                .bad_ip_checksum()
                .build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "ihl below 5 to another address",
            Packet::tcp(c4, sock("10.9.9.9:80")).ihl_override(4).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        // Truncated at every layer.
        // (BPF_PROG_TEST_RUN refuses frames shorter than an Ethernet header,
        // as NICs do: the shortest frame XDP can see carries one.)
        (
            "ethernet header and nothing else",
            syn.build_truncated(14),
            Want::Pass(Reason::PassUnparsed),
        ),
        (
            "truncated vlan tag",
            Packet::tcp(c4, web).vlan(7).build_truncated(16),
            Want::Pass(Reason::PassUnparsed),
        ),
        (
            "truncated ipv4 header",
            syn.build_truncated(l.l3 + 12),
            Want::Pass(Reason::PassUnparsed),
        ),
        (
            "truncated ipv6 header",
            Packet::tcp(c6, web6).build_truncated(l.l3 + 30),
            Want::Pass(Reason::PassUnparsed),
        ),
        (
            "ports cut off (vip address)",
            syn.build_truncated(l.l4 + 2),
            Want::Drop(Reason::DropMalformedL4),
        ),
        (
            "ports cut off (other address)",
            Packet::tcp(c4, sock("10.9.9.9:80")).build_truncated(l.l4 + 2),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "tcp header cut after the ports",
            syn.build_truncated(l.l4 + 10),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "v6 tcp header cut after the ports",
            {
                let p = Packet::tcp(c6, web6);
                let n = p.layers().l4 + 10;
                p.build_truncated(n)
            },
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "udp header cut after the ports",
            {
                let p = Packet::udp(c4, sock("10.0.0.100:53"));
                let n = p.layers().l4 + 6;
                p.build_truncated(n)
            },
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "icmp header cut, ip length beyond the frame (vip address)",
            {
                let p = Packet::icmp_echo(c4.ip(), ip("10.0.0.100"));
                let n = p.layers().l4 + 3;
                p.build_truncated(n)
            },
            Want::Drop(Reason::DropMalformedIp),
        ),
        // IPv4 options are checksummed too.
        (
            "v4 with 40 bytes of options is forwarded intact",
            Packet::tcp(sock("192.0.2.14:7"), web)
                .ipv4_options(&[1; 40])
                .build(),
            tx(&h, WEB, sock("192.0.2.14:7")),
        ),
        (
            "v4 with options and a bad checksum",
            Packet::tcp(c4, web)
                .ipv4_options(&[0x94, 0x04, 0, 0])
                .bad_ip_checksum()
                .build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
    ];
    for (name, frame, want) in cases {
        h.check(name, &frame, want);
    }
}

/// A TCP segment whose IP total length is honest about a frame cut inside the
/// TCP header is an L4 problem; the cases above that cut the frame but keep
/// the original total length are IP problems. Both are dropped.
#[test]
fn truncation_inside_l4_with_consistent_ip_length_is_an_l4_error() {
    let mut h = harness();
    let c4 = sock("192.0.2.10:40000");
    let p = Packet::tcp(c4, sock("10.0.0.100:80"));
    let l = p.layers();
    let cut = (l.l4 + 12 - l.l3) as u16;
    let frame = p
        .clone()
        .ip_total_len_override(cut)
        .build_truncated(l.l4 + 12);
    h.check(
        "tcp header cut, ip length agrees",
        &frame,
        Want::Drop(Reason::DropMalformedL4),
    );
}

/// A VRRP backup (or any node) gets frames flooded to it that were sent to
/// another node's MAC: it passes them (the kernel drops them as not its
/// own), established flow or not, unless they are sent to its own MAC or to
/// a virtual MAC it holds as master.
#[test]
fn frames_to_another_nodes_mac_are_passed_unless_to_a_held_virtual_mac() {
    let mut h = harness();
    let vmacs = h.dp.take_vmacs().expect("the virtual-MAC map");
    let c4 = sock("192.0.2.20:40000");
    let c6 = sock("[2001:db8::20]:40000");
    let (web, web6) = (sock("10.0.0.100:80"), sock("[fd00::100]:443"));
    let to = |src, dst, mac| Packet::tcp(src, dst).macs(DEFAULT_SRC_MAC, mac);
    let master = [0x02, 0x99, 0, 0, 0, 7];
    let vmac4 = lb_common::rx::vmac(51, false);
    let vmac6 = lb_common::rx::vmac(51, true);
    let other = Want::Pass(Reason::PassOtherHost);
    let ours = Want::Forward(Reason::Tx, h.predicted(WEB, c4));
    h.check(
        "syn to our MAC",
        &to(c4, web, DEFAULT_DST_MAC).build(),
        ours,
    );
    let ack = |mac| to(c4, web, mac).tcp_flags(ACK).build();
    h.check("established flow, another node's MAC", &ack(master), other);
    h.check("established flow, broadcast", &ack([0xff; 6]), other);
    h.check("established flow, a VMAC not held", &ack(vmac4), other);
    h.check(
        "not a VIP, another node's MAC: the host's business",
        &to(c4, sock("10.9.9.9:80"), master).build(),
        Want::Pass(Reason::PassNotVip),
    );

    vmacs.set(1, 51, false, true).unwrap();
    assert!(vmacs.holds(1, 51, false).unwrap());
    h.check("master of VRID 51: its VMAC", &ack(vmac4), ours);
    h.check(
        "the IPv6 router of VRID 51 is not held",
        &to(c6, web6, vmac6).build(),
        other,
    );
    h.check(
        "VRID 52 is not held",
        &ack(lb_common::rx::vmac(52, false)),
        other,
    );
    vmacs.set(1, 51, true, true).unwrap();
    h.check(
        "master of IPv6 VRID 51 too",
        &to(c6, web6, vmac6).build(),
        Want::Forward(Reason::Tx, h.predicted(WEB6, c6)),
    );
    vmacs.set(1, 51, false, false).unwrap();
    h.check("back to backup: its VMAC passed", &ack(vmac4), other);
    h.check(
        "and our own MAC still forwarded",
        &ack(DEFAULT_DST_MAC),
        ours,
    );
}

#[test]
fn established_flows_survive_drain_and_are_rehashed_when_down() {
    let mut h = harness();
    // Find a client the ring sends to 10.0.1.2, so we can drain it.
    let victim = h.id_of("10.0.1.2");
    let client = (1..)
        .map(|i| sock(&format!("192.0.2.{}:{}", i % 250 + 1, 30000 + i)))
        .find(|c| h.predicted(WEB, *c) == victim)
        .unwrap();
    let web = sock("10.0.0.100:80");
    h.check(
        "syn creates the flow",
        &Packet::tcp(client, web).build(),
        Want::Forward(Reason::Tx, victim),
    );
    h.check(
        "ack follows it",
        &Packet::tcp(client, web).tcp_flags(ACK).build(),
        Want::Forward(Reason::Tx, victim),
    );

    h.set_state("10.0.1.2", state::DRAIN);
    assert_ne!(
        h.predicted(WEB, client),
        victim,
        "a drained backend is out of the ring"
    );
    h.check(
        "drained: the open flow continues",
        &Packet::tcp(client, web).tcp_flags(ACK).build(),
        Want::Forward(Reason::Tx, victim),
    );
    let newcomer = h.predicted(WEB, client);
    h.check(
        "drained: a new syn from the same client goes elsewhere",
        &Packet::tcp(client, web).build(),
        Want::Forward(Reason::Tx, newcomer),
    );

    // Put the flow back on the drained backend, then take it down.
    h.set_state("10.0.1.2", state::UP);
    h.check(
        "undrained: syn back on it",
        &Packet::tcp(client, web).build(),
        Want::Forward(Reason::Tx, victim),
    );
    h.set_state("10.0.1.2", state::DOWN);
    let rehashed = h.predicted(WEB, client);
    assert_ne!(rehashed, victim);
    h.check(
        "down: the open flow is re-hashed",
        &Packet::tcp(client, web).tcp_flags(ACK).build(),
        Want::Forward(Reason::Tx, rehashed),
    );
    h.set_state("10.0.1.2", state::UP);
    h.check(
        "and stays on its new backend after recovery",
        &Packet::tcp(client, web).tcp_flags(ACK).build(),
        Want::Forward(Reason::Tx, rehashed),
    );

    let flows = h.dp.flows().unwrap();
    let f = flows.iter().find(|f| f.sport == client.port()).unwrap();
    assert_eq!(f.flow.backend, rehashed);

    // Maintenance is an administrative down: out of the ring, and the open
    // flow is re-hashed.
    let rehashed_addr = h.actual.backends[&rehashed].addr.to_ip().to_string();
    h.set_state(&rehashed_addr, state::MAINT);
    let after_maint = h.predicted(WEB, client);
    assert_ne!(
        after_maint, rehashed,
        "a backend in maint is out of the ring"
    );
    h.check(
        "maint: the open flow is re-hashed",
        &Packet::tcp(client, web).tcp_flags(ACK).build(),
        Want::Forward(Reason::Tx, after_maint),
    );
    h.check(
        "maint: a new syn avoids it too",
        &Packet::tcp(sock("192.0.2.251:9"), web).build(),
        Want::Forward(Reason::Tx, h.predicted(WEB, sock("192.0.2.251:9"))),
    );
    assert_ne!(h.predicted(WEB, sock("192.0.2.251:9")), rehashed);
    h.set_state(&rehashed_addr, state::UP);
    h.check(
        "back from maint: the flow stays where maint sent it",
        &Packet::tcp(client, web).tcp_flags(ACK).build(),
        Want::Forward(Reason::Tx, after_maint),
    );
    h.check(
        "fin marks the flow closing",
        &Packet::tcp(client, web).tcp_flags(FIN | ACK).build(),
        Want::Forward(Reason::Tx, after_maint),
    );
    let f =
        h.dp.flows()
            .unwrap()
            .into_iter()
            .find(|f| f.sport == client.port())
            .unwrap();
    assert_ne!(f.flow.flags & lb_common::consts::flow_flags::FIN, 0);
    assert_eq!(f.flow.backend, after_maint);
}

#[test]
fn udp_and_ipv6_flows_stick_through_ring_changes() {
    let mut h = harness();
    for (vip, src, dst, backends) in [
        (
            DNS,
            "192.0.2.77:5353",
            "10.0.0.100:53",
            ["10.0.2.1", "10.0.2.2"],
        ),
        (
            WEB6,
            "[2001:db8::77]:5353",
            "[fd00::100]:443",
            ["fd00:1::1", "fd00:1::2"],
        ),
    ] {
        let (src, dst) = (sock(src), sock(dst));
        let pkt = |p: Packet| if vip.2 == 17 { p } else { p.tcp_flags(ACK) };
        let mk = || {
            pkt(if vip.2 == 17 {
                Packet::udp(src, dst)
            } else {
                Packet::tcp(src, dst)
            })
            .build()
        };
        let first = h.predicted(vip, src);
        h.check("first packet", &mk(), Want::Forward(Reason::Tx, first));
        let first_addr = backends.iter().find(|b| h.id_of(b) == first).unwrap();
        h.set_state(first_addr, state::DRAIN);
        h.check(
            "after drain, the flow stays",
            &mk(),
            Want::Forward(Reason::Tx, first),
        );
        h.set_state(first_addr, state::UP);
    }
}

#[test]
fn icmp_errors_reach_the_backend_of_the_flow_they_quote() {
    let mut h = harness();
    let client = sock("192.0.2.50:41000");
    let web = sock("10.0.0.100:80");
    let be = h.predicted(WEB, client);
    h.check(
        "flow",
        &Packet::tcp(client, web).build(),
        Want::Forward(Reason::Tx, be),
    );
    // Drain that backend: the ring now points elsewhere, the flow table does not.
    let addr = h.actual.backends[&be].addr.to_ip().to_string();
    h.set_state(&addr, state::DRAIN);
    let quoted = Packet::tcp(web, client).tcp_flags(ACK).payload(&[0u8; 64]);
    let err = Packet::icmp_error(
        ip("198.51.100.1"),
        web.ip(),
        IcmpErr::FragNeeded { mtu: 1400 },
        &quoted,
    );
    h.check(
        "frag needed follows the flow",
        &err.build(),
        Want::Forward(Reason::IcmpForwarded, be),
    );
    let ttl = Packet::icmp_error(ip("198.51.100.1"), web.ip(), IcmpErr::TimeExceeded, &quoted);
    h.check(
        "time exceeded too",
        &ttl.build(),
        Want::Forward(Reason::IcmpForwarded, be),
    );

    // IPv6 packet-too-big, for a flow not in the table: the ring decides.
    let c6 = sock("[2001:db8::50]:41000");
    let web6 = sock("[fd00::100]:443");
    let quoted6 = Packet::tcp(web6, c6).tcp_flags(ACK);
    let ptb = Packet::icmp_error(
        ip("2001:db8:ffff::1"),
        web6.ip(),
        IcmpErr::PacketTooBig { mtu: 1280 },
        &quoted6,
    );
    h.check(
        "packet too big",
        &ptb.build(),
        Want::Forward(Reason::IcmpForwarded, h.predicted(WEB6, c6)),
    );
    // An ICMP error creates no flow.
    assert!(
        h.dp.flows()
            .unwrap()
            .iter()
            .all(|f| f.sport != 41000 || !f.src.to_ip().is_ipv6())
    );
}

#[test]
fn counters_count_packets_bytes_and_new_flows() {
    let mut h = harness();
    let web = sock("10.0.0.100:80");
    let client = sock("192.0.2.90:1234");
    let be = h.predicted(WEB, client);
    let syn = Packet::tcp(client, web).build();
    let ack = Packet::tcp(client, web)
        .tcp_flags(ACK)
        .payload(&[7u8; 100])
        .build();
    h.check("syn", &syn, Want::Forward(Reason::Tx, be));
    h.check("ack", &ack, Want::Forward(Reason::Tx, be));
    h.check(
        "rst",
        &Packet::tcp(client, web).tcp_flags(RST).build(),
        Want::Forward(Reason::Tx, be),
    );
    let vip_id = h.actual.vips[&lb_common::abi::VipKey::new(ip("10.0.0.100"), 80, 6)].id;
    let ip_bytes = (syn.len() - 14) * 2 + (ack.len() - 14);
    for c in [
        h.dp.vip_counters(vip_id).unwrap(),
        h.dp.backend_counters(be).unwrap(),
    ] {
        assert_eq!(c.packets, 3);
        assert_eq!(c.bytes, ip_bytes as u64);
        assert_eq!(c.new_flows, 1);
    }
}

/// ICMP to a VIP address is checked before anything is forwarded: the outer
/// IP header, the ICMP header, and the quoted packet, which must have been
/// sent by a VIP from this address. What fails is dropped, each under its
/// reason; non-errors are the LB host's.
#[test]
fn icmp_to_a_vip_address_is_checked_before_it_is_forwarded() {
    let mut h = harness();
    let c4 = sock("192.0.2.60:41000");
    let c6 = sock("[2001:db8::60]:41000");
    let web = sock("10.0.0.100:80");
    let web6 = sock("[fd00::100]:443");
    let router = ip("198.51.100.1");
    let router6 = ip("2001:db8:ffff::1");
    let frag = IcmpErr::FragNeeded { mtu: 1400 };
    let quoted = Packet::tcp(web, c4).tcp_flags(ACK);
    let err = |q: &Packet| Packet::icmp_error(router, web.ip(), frag, q);
    let err6 =
        |q: &Packet| Packet::icmp_error(router6, web6.ip(), IcmpErr::PacketTooBig { mtu: 1280 }, q);
    let good = err(&quoted);
    let l = good.layers();
    let quoted_ip = {
        let f = quoted.build();
        f[quoted.layers().l3..].to_vec()
    };
    let fwd =
        |h: &Harness, vip, client| Want::Forward(Reason::IcmpForwarded, h.predicted(vip, client));

    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        ("well-formed frag needed", good.build(), fwd(&h, WEB, c4)),
        (
            "wrong outer checksum",
            good.clone().bad_ip_checksum().build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "outer total length 1400 in a 70-byte frame",
            good.clone().ip_total_len_override(1400).build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "outer ihl below 5",
            good.clone().ihl_override(4).build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "truncated icmp header (ip length agrees)",
            {
                let p = Packet::icmp_echo(c4.ip(), web.ip());
                let at = p.layers();
                p.ip_total_len_override((at.l4 + 4 - at.l3) as u16)
                    .build_truncated(at.l4 + 4)
            },
            Want::Drop(Reason::DropIcmpMalformed),
        ),
        (
            "quote cut before the ports",
            err(&quoted).payload(&quoted_ip[..20]).build(),
            Want::Drop(Reason::DropIcmpMalformed),
        ),
        (
            "quote cut inside the ip header",
            err(&quoted).payload(&quoted_ip[..12]).build(),
            Want::Drop(Reason::DropIcmpMalformed),
        ),
        (
            "quoted packet not ipv4",
            {
                let mut q = quoted_ip.clone();
                q[0] = 0x65;
                err(&quoted).payload(&q[..28]).build()
            },
            Want::Drop(Reason::DropIcmpMalformed),
        ),
        (
            "quoted packet sent from another vip address",
            err(&Packet::tcp(sock("10.0.0.101:80"), c4)).build(),
            Want::Drop(Reason::DropIcmpMalformed),
        ),
        (
            "quoted packet not a vip flow (other port)",
            err(&Packet::tcp(sock("10.0.0.100:9999"), c4)).build(),
            Want::Drop(Reason::DropIcmpNotVipFlow),
        ),
        (
            "quoted packet not a vip flow (icmp echo reply)",
            err(&Packet::icmp_echo(web.ip(), c4.ip())).build(),
            Want::Drop(Reason::DropIcmpNotVipFlow),
        ),
        (
            "quoted packet not a vip flow (udp to the tcp vip port)",
            err(&Packet::udp(web, c4)).build(),
            Want::Drop(Reason::DropIcmpNotVipFlow),
        ),
        (
            "time exceeded quoting a vip flow",
            Packet::icmp_error(router, web.ip(), IcmpErr::TimeExceeded, &quoted).build(),
            fwd(&h, WEB, c4),
        ),
        (
            "echo to the vip address",
            Packet::icmp_echo(c4.ip(), web.ip()).build(),
            Want::Pass(Reason::PassIcmp),
        ),
        (
            "echo to a non-vip address",
            Packet::icmp_echo(c4.ip(), ip("10.9.9.9")).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "frag needed to a non-vip address",
            Packet::icmp_error(
                router,
                ip("10.9.9.9"),
                frag,
                &Packet::tcp(sock("10.9.9.9:80"), c4),
            )
            .build(),
            Want::Pass(Reason::PassNotVip),
        ),
        // IPv6.
        (
            "well-formed packet too big",
            err6(&Packet::tcp(web6, c6).tcp_flags(ACK)).build(),
            fwd(&h, WEB6, c6),
        ),
        (
            "v6 payload length beyond the frame",
            err6(&Packet::tcp(web6, c6))
                .ipv6_payload_len_override(1400)
                .build(),
            Want::Drop(Reason::DropMalformedIp),
        ),
        (
            "v6 quote cut before the ports",
            {
                let q = Packet::tcp(web6, c6);
                let f = q.build();
                err6(&q).payload(&f[q.layers().l3..q.layers().l4]).build()
            },
            Want::Drop(Reason::DropIcmpMalformed),
        ),
        (
            "v6 quoted packet sent from another address",
            err6(&Packet::tcp(sock("[fd00::101]:443"), c6)).build(),
            Want::Drop(Reason::DropIcmpMalformed),
        ),
        (
            "v6 quoted packet not a vip flow",
            err6(&Packet::tcp(sock("[fd00::100]:444"), c6)).build(),
            Want::Drop(Reason::DropIcmpNotVipFlow),
        ),
        (
            "icmpv6 echo to the vip address",
            Packet::icmp_echo(c6.ip(), web6.ip()).build(),
            Want::Pass(Reason::PassIcmp),
        ),
    ];
    assert_eq!(l.len, 70, "the frag-needed frame of the length case");
    for (name, frame, want) in cases {
        h.check(name, &frame, want);
    }
    // None of them created a flow.
    assert!(h.dp.flows().unwrap().iter().all(|f| f.sport != 41000));
}

/// IPv6 to a VIP: the data path walks up to four extension headers; a longer
/// chain, or IPsec (AH, ESP), hides the ports and is dropped.
#[test]
fn ipv6_extension_header_chains_at_and_past_the_limit() {
    use Ipv6ExtKind::{DestOpts, HopByHop, Routing};
    let mut h = harness();
    let web6 = sock("[fd00::100]:443");
    let other = sock("[fd00::999]:443");
    let c = |i: u16| SocketAddr::new(ip("2001:db8::70"), 42000 + i);
    let chain = |p: Packet, n: usize| {
        [HopByHop, DestOpts, Routing, DestOpts, DestOpts, DestOpts]
            .into_iter()
            .take(n)
            .fold(p, |p, k| p.ipv6_ext(k, 8))
    };
    let tx = |h: &Harness, src| Want::Forward(Reason::Tx, h.predicted(WEB6, src));
    let cases: Vec<(&str, Vec<u8>, Want)> = vec![
        (
            "one header",
            chain(Packet::tcp(c(1), web6), 1).build(),
            tx(&h, c(1)),
        ),
        (
            "four headers (the limit)",
            chain(Packet::tcp(c(4), web6), 4).build(),
            tx(&h, c(4)),
        ),
        (
            "five headers",
            chain(Packet::tcp(c(5), web6), 5).build(),
            Want::Drop(Reason::DropIpv6Ext),
        ),
        (
            "six headers",
            chain(Packet::tcp(c(6), web6), 6).build(),
            Want::Drop(Reason::DropIpv6Ext),
        ),
        (
            "four headers, then a fragment header",
            chain(Packet::tcp(c(7), web6), 4)
                .ipv6_fragment(0, true)
                .build(),
            Want::Drop(Reason::DropFragment),
        ),
        (
            "ah",
            Packet::tcp(c(8), web6).ipv6_ah().build(),
            Want::Drop(Reason::DropIpv6Ext),
        ),
        (
            "esp",
            Packet::tcp(c(9), web6).ipv6_esp().build(),
            Want::Drop(Reason::DropIpv6Ext),
        ),
        (
            "hop-by-hop, then ah",
            chain(Packet::tcp(c(10), web6), 1).ipv6_ah().build(),
            Want::Drop(Reason::DropIpv6Ext),
        ),
        (
            "five headers to another address",
            chain(Packet::tcp(c(11), other), 5).build(),
            Want::Pass(Reason::PassNotVip),
        ),
        (
            "esp to another address",
            Packet::tcp(c(12), other).ipv6_esp().build(),
            Want::Pass(Reason::PassNotVip),
        ),
    ];
    for (name, frame, want) in cases {
        h.check(name, &frame, want);
    }
}

/// A second 802.1Q tag after the first (QinQ): one tag is all we parse.
fn double_tagged(tagged: &[u8]) -> Vec<u8> {
    let mut f = tagged[..16].to_vec();
    f.extend_from_slice(&[0, 2, 0x81, 0x00]);
    f.extend_from_slice(&tagged[16..]);
    f
}

fn arp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[
        0x02, 0, 0, 0, 0, 1, 192, 0, 2, 10, 0, 0, 0, 0, 0, 0, 10, 0, 0, 100,
    ]);
    f.resize(60, 0);
    f
}

/// IPv4 protocol 47 (GRE) to a VIP address: not balanced, passed to the host.
fn other_proto_frame() -> Vec<u8> {
    let mut f = Packet::udp(sock("192.0.2.10:1"), sock("10.0.0.100:53")).build();
    f[14 + 9] = 47;
    f[14 + 10] = 0;
    f[14 + 11] = 0;
    let c = lb_tests::packet::ipv4_checksum(&f[14..34]);
    f[14 + 10..14 + 12].copy_from_slice(&c.to_be_bytes());
    f
}

/// The flow table keeps four flows per bucket; a fifth takes the slot of the
/// least recently seen one, and the others keep their backends.
#[test]
fn a_full_bucket_gives_way_to_its_least_recently_seen_flow() {
    use lb_common::abi::{FLOW_WAYS, FlowKeyV4, flow_bucket_v4};
    let mut h = harness();
    let mask = h.dp.config().unwrap().flow_mask_v4;
    let web = sock("10.0.0.100:80");
    let key = |c: SocketAddr| FlowKeyV4 {
        src: Addr::from_ip(c.ip()).0[3],
        dst: Addr::from_ip(web.ip()).0[3],
        sport: c.port().to_be(),
        dport: web.port().to_be(),
        proto: 6,
        _pad: 0,
        _pad2: 0,
    };
    // Five clients whose flows share one bucket.
    let first = sock("192.0.2.99:1000");
    let bucket = flow_bucket_v4(&key(first)) & mask;
    let clients: Vec<SocketAddr> = (1000..u16::MAX)
        .map(|p| SocketAddr::new(first.ip(), p))
        .filter(|c| flow_bucket_v4(&key(*c)) & mask == bucket)
        .take(FLOW_WAYS as usize + 1)
        .collect();
    assert_eq!(clients.len(), FLOW_WAYS as usize + 1);
    // Seen at seconds 100, 101, ... on the data path's clock.
    for (i, c) in clients.iter().enumerate() {
        let mut cfg = h.dp.config().unwrap();
        cfg.now = 100 + i as u32;
        h.dp.set_config(cfg).unwrap();
        let be = h.predicted(WEB, *c);
        h.check(
            "syn",
            &Packet::tcp(*c, web).build(),
            Want::Forward(Reason::Tx, be),
        );
    }
    let held: Vec<u16> =
        h.dp.flows()
            .unwrap()
            .into_iter()
            .filter(|f| f.dport == 80 && f.src == Addr::from_ip(first.ip()))
            .map(|f| f.sport)
            .collect();
    assert_eq!(held.len(), FLOW_WAYS as usize, "{held:?}");
    assert!(
        !held.contains(&clients[0].port()),
        "the oldest flow made room: {held:?}"
    );
    for c in &clients[1..] {
        assert!(held.contains(&c.port()), "{c} kept its slot: {held:?}");
    }
}

/// What `drain --wait` needs: the slots of one backend's flows, found in
/// one scan, then re-read one by one; a slot whose flow went (or was
/// replaced by another flow) reads as nothing.
#[test]
fn flow_slots_of_a_backend_are_found_once_and_rechecked_in_place() {
    use std::collections::BTreeSet;
    let mut h = harness();
    let web = sock("10.0.0.100:80");
    let target = h.id_of("10.0.1.2");
    let clients: Vec<SocketAddr> = (1..)
        .map(|i| sock(&format!("192.0.2.{}:{}", i % 250 + 1, 20000 + i)))
        .filter(|c| h.predicted(WEB, *c) == target)
        .take(5)
        .collect();
    for c in &clients {
        h.check(
            "syn",
            &Packet::tcp(*c, web).build(),
            Want::Forward(Reason::Tx, target),
        );
    }
    let other = h.id_of("10.0.1.1");
    let slots = h.dp.flow_slots_of(&BTreeSet::from([target]));
    assert_eq!(slots.len(), clients.len());
    for s in &slots {
        let e = h.dp.read_flow_slot(s).expect("still there");
        assert_eq!(e.flow.backend, target);
        assert!(clients.iter().any(|c| c.port() == e.sport));
    }
    assert!(h.dp.flow_slots_of(&BTreeSet::from([other])).is_empty());

    // A FIN shows up in place; taking the backend down re-hashes the flow
    // (same slot, same 5-tuple, another backend).
    h.check(
        "fin",
        &Packet::tcp(clients[0], web).tcp_flags(FIN | ACK).build(),
        Want::Forward(Reason::Tx, target),
    );
    let fin = slots
        .iter()
        .find_map(|s| {
            h.dp.read_flow_slot(s)
                .filter(|e| e.sport == clients[0].port())
        })
        .unwrap();
    assert_ne!(fin.flow.flags & lb_common::consts::flow_flags::FIN, 0);
    h.set_state("10.0.1.2", state::DOWN);
    let rehashed = h.predicted(WEB, clients[1]);
    h.check(
        "ack after down",
        &Packet::tcp(clients[1], web).tcp_flags(ACK).build(),
        Want::Forward(Reason::Tx, rehashed),
    );
    let moved = slots
        .iter()
        .filter_map(|s| h.dp.read_flow_slot(s))
        .find(|e| e.sport == clients[1].port())
        .unwrap();
    assert_eq!(moved.flow.backend, rehashed);

    // Purged flows read as gone.
    h.dp.purge_flows(&BTreeSet::from([target])).unwrap();
    let left: Vec<_> = slots
        .iter()
        .filter_map(|s| h.dp.read_flow_slot(s))
        .collect();
    assert_eq!(left.len(), 1, "only the re-hashed flow stays: {left:?}");
    assert_eq!(left[0].flow.backend, rehashed);
}

/// Addresses that share a bit of the VIP-address bitmap: removing one keeps
/// the bit (and the other's traffic); removing both clears it.
#[test]
fn a_shared_prefilter_bit_stays_set_until_its_last_address_goes() {
    use lb_common::abi::vip_filter_bit;
    let mut h = harness();
    let a = Addr::from_ip(ip("10.0.0.101"));
    let twin = (1u32..)
        .map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0a63_0000 + i)))
        .find(|t| vip_filter_bit(&Addr::from_ip(*t)) == vip_filter_bit(&a))
        .unwrap();
    let twin_s = twin.to_string();
    h.vips.push(vip(&twin_s, 80, 6, 0, &[("10.0.5.1", 1)]));
    h.reconcile();
    let c = sock("192.0.2.33:3333");
    let to_twin = Packet::tcp(c, SocketAddr::new(twin, 80)).build();
    let fwd = Want::Forward(Reason::Tx, h.id_of("10.0.5.1"));
    h.check("twin forwarded", &to_twin, fwd);
    // 10.0.0.101's VIP goes: the bit stays for the twin.
    h.vips.retain(|v| v.key.addr != a);
    h.reconcile();
    h.check("twin still forwarded", &to_twin, fwd);
    h.check(
        "the removed address is passed",
        &Packet::tcp(c, sock("10.0.0.101:80")).build(),
        Want::Pass(Reason::PassNotVip),
    );
    h.vips.retain(|v| v.key.addr != Addr::from_ip(twin));
    h.reconcile();
    h.check("twin gone", &to_twin, Want::Pass(Reason::PassNotVip));
    assert!(h.dp.vip_addrs().unwrap().iter().all(|(x, _)| *x != a));
}
