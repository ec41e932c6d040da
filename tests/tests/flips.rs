//! Flips under traffic: one thread runs the XDP program on VIP packets
//! without pause (`BPF_PROG_TEST_RUN`), while this one changes backend
//! states, weights, next-hop MACs, ring sizes and the set of VIPs thousands of
//! times through the real reconciler. No packet may ever get a wrong verdict,
//! or the MAC of a backend that is not its VIP's, and the internal-error
//! counter must not move. Needs root.

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use lb_common::{
    abi::{Addr, VipKey},
    consts::{PROG_LB, Reason, state, xdp_action},
};
use lb_dataplane::{
    Dataplane, Options,
    plan::{self, Actual, Desired, DesiredBackend, DesiredVip, NextHop},
};
use lb_tests::packet::{ACK, Packet};

/// VIPs 0..4 are always there (IPv4 0..3, IPv6 3); VIP 4 comes and goes.
const VIPS: usize = 5;
const BACKENDS: usize = 4;
const ROUNDS: usize = 1200;

fn vip_addr(v: usize) -> SocketAddr {
    if v == 3 {
        "[fd00::100]:443".parse().unwrap()
    } else {
        format!("10.0.0.{}:80", 100 + v).parse().unwrap()
    }
}

fn backend_addr(v: usize, b: usize) -> IpAddr {
    if v == 3 {
        format!("fd00:1::{}", b + 1).parse().unwrap()
    } else {
        format!("10.0.{}.{}", v + 1, b + 1).parse().unwrap()
    }
}

/// A backend's MAC says whose it is: `02:be:<vip>:<backend>:<generation>:00`.
fn mac(v: usize, b: usize, generation: u8) -> [u8; 6] {
    [0x02, 0xbe, v as u8, b as u8, generation, 0]
}

/// Our MAC towards it carries the same generation, in another 8-byte word of
/// the backend entry: a packet that read a mix of two versions shows two
/// generations.
fn lb_mac(generation: u8) -> [u8; 6] {
    [0x02, 0x1b, 0, 0, generation, 1]
}

/// What round `r` wants of VIP `v`: one backend drained, down, in maint or
/// weighted up in turn (never all out), a MAC generation, a ring size.
fn desired_vip(v: usize, r: usize) -> DesiredVip {
    let vip = vip_addr(v);
    let turn = (r / VIPS) % BACKENDS;
    DesiredVip {
        key: VipKey::new(vip.ip(), vip.port(), 6),
        flags: 0,
        ring_size: if (r / 97).is_multiple_of(2) { 251 } else { 257 },
        backends: (0..BACKENDS)
            .map(|b| DesiredBackend {
                key: format!("{}:{}", backend_addr(v, b), vip.port()),
                addr: Addr::from_ip(backend_addr(v, b)),
                port: vip.port(),
                weight: if b == turn && r.is_multiple_of(3) {
                    3
                } else {
                    1
                },
                state: if b == turn {
                    [state::UP, state::DRAIN, state::DOWN, state::MAINT][r % 4]
                } else {
                    state::UP
                },
                next_hop: NextHop {
                    ifindex: 1,
                    src_mac: lb_mac((r / 2) as u8),
                    dst_mac: mac(v, b, (r / 2) as u8),
                },
            })
            .collect(),
    }
}

#[test]
fn flips_under_traffic_never_misroute_a_packet() {
    // SAFETY: unshare affects only this thread, which runs the whole test.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "unshare(CLONE_NEWNET) needs root");
    let out = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut dp = Dataplane::open(&Options {
        flow_table_size: 1 << 14,
        ..Options::default()
    })
    .expect("loading the data path");
    let mut actual = Actual::default();
    let mut desired: Desired = (0..VIPS).map(|v| desired_vip(v, 0)).collect();
    let p = plan::plan_full(&actual, &desired).unwrap();
    plan::apply(&mut dp, &mut actual, p).unwrap();
    let before = dp.reasons().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let wrong: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut runner = dp.test_runner(PROG_LB).unwrap();
    let traffic = {
        let (stop, sent, wrong) = (stop.clone(), sent.clone(), wrong.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = (i % VIPS as u64) as usize;
                let vip = vip_addr(v);
                let client = if vip.is_ipv4() {
                    SocketAddr::new(
                        IpAddr::from([192, 0, 2, (i / 5 % 200) as u8 + 1]),
                        10_000 + (i % 5000) as u16,
                    )
                } else {
                    SocketAddr::new(
                        format!("2001:db8::{:x}", i % 1000 + 1).parse().unwrap(),
                        10_000 + (i % 5000) as u16,
                    )
                };
                // SYNs ask the ring; ACKs mostly follow flows.
                let p = Packet::tcp(client, vip);
                let frame = if i.is_multiple_of(3) {
                    p.build()
                } else {
                    p.tcp_flags(ACK).build()
                };
                let (action, out) = runner.run(&frame).unwrap();
                let verdict = match (action, out.get(..12)) {
                    (xdp_action::TX, Some(m)) => {
                        let ours = m[0..2] == [0x02, 0xbe] && m[2] == v as u8;
                        let one_version = m[6..12] == lb_mac(m[4]);
                        let rest_intact = out.get(12..) == frame.get(12..);
                        (ours && one_version && rest_intact)
                            .then_some(())
                            .ok_or_else(|| format!("MACs {:02x?}", &m[..12]))
                    }
                    // The VIP that comes and goes may be absent.
                    (xdp_action::PASS, _) if v == 4 => Ok(()),
                    (a, _) => Err(format!("action {a}")),
                };
                if let Err(e) = verdict {
                    let mut w = wrong.lock().unwrap();
                    if w.len() < 20 {
                        w.push(format!("packet {i} to VIP {v} ({vip}): {e}"));
                    }
                }
                i += 1;
                sent.store(i, Ordering::Relaxed);
            }
        })
    };

    let t0 = Instant::now();
    let mut writes = 0;
    let mut vip4_present = true;
    for r in 1..=ROUNDS {
        let v = r % 4;
        desired.set(desired_vip(v, r));
        let mut touched = std::collections::BTreeSet::from([desired_vip(v, r).key]);
        // Every 10th round the fifth VIP comes or goes (a VIP-table flip,
        // ring creation or removal).
        if r % 10 == 0 {
            let k = desired_vip(4, r).key;
            if vip4_present {
                desired.remove(&k);
            } else {
                desired.set(desired_vip(4, r));
            }
            vip4_present = !vip4_present;
            touched.insert(k);
        }
        let p = plan::plan(&actual, &desired, &touched).unwrap();
        writes += plan::apply(&mut dp, &mut actual, p).unwrap();
    }
    let changing = t0.elapsed();
    // Then only next hops, as fast as grace periods allow: every backend in
    // turn gets a new MAC generation (each waits only for its own previous
    // flip's grace period).
    let t1 = Instant::now();
    let mut churn = 0u32;
    let permanent: Vec<u32> = (0..4)
        .map(|v| actual.vips[&desired_vip(v, 0).key].id)
        .collect();
    while t1.elapsed() < Duration::from_secs(2) {
        for (&id, b) in actual.backends.iter() {
            if !permanent.contains(&b.vip) {
                continue;
            }
            let generation = 200u8.wrapping_add(churn as u8);
            let mut nb = *b;
            nb.dst_mac[4] = generation;
            nb.src_mac = lb_mac(generation);
            dp.set_backend(id, nb).unwrap();
            churn += 1;
        }
    }
    writes += churn as usize;
    // Let traffic run on what the last round left.
    std::thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();

    let after = dp.reasons().unwrap();
    let moved: BTreeMap<&str, u64> = after
        .iter()
        .map(|(k, n)| (*k, n - before[k]))
        .filter(|(_, d)| *d != 0)
        .collect();
    let sent = sent.load(Ordering::Relaxed);
    eprintln!(
        "{ROUNDS} rounds, {writes} map writes in {changing:?}, {sent} packets, {} grace \
         periods; reasons: {moved:?}",
        dp.grace_periods()
    );
    assert!(writes > 3 * ROUNDS, "thousands of flips: {writes}");
    let wrong = wrong.lock().unwrap();
    assert!(
        wrong.is_empty(),
        "{} wrong verdicts: {wrong:#?}",
        wrong.len()
    );
    assert_eq!(moved.get(Reason::DropInternal.name()), None, "{moved:?}");
    assert_eq!(
        moved.keys().copied().collect::<Vec<_>>(),
        vec![Reason::PassNotVip.name(), Reason::Tx.name()],
        "only forwarded packets, and packets to the absent VIP"
    );
    assert!(sent > 10_000, "traffic ran alongside: {sent} packets");
}
