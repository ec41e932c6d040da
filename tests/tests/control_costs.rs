//! What control operations cost at 1,000 VIPs, through the real reconciler
//! and data path: a cold start creates every ring in one outer-map update
//! (one grace period), a backend state change makes none and writes just its
//! two entries, and removing every VIP frees every ring in
//! one more. The times are printed; `cargo xtask bench control` measures them.
//! Needs root.

use std::{
    collections::BTreeSet,
    net::IpAddr,
    time::{Duration, Instant},
};

use lb_common::{
    abi::{Addr, VipKey},
    consts::{DEFAULT_RING_SIZE, MAX_VIPS, state},
};
use lb_dataplane::{
    Dataplane, Options,
    plan::{self, Actual, Desired, DesiredBackend, DesiredVip, NextHop},
};

fn vip(i: u32, ring_size: u32, drained: bool) -> DesiredVip {
    let addr: IpAddr = format!("10.{}.{}.1", i / 250, i % 250).parse().unwrap();
    DesiredVip {
        key: VipKey::new(addr, 80, 6),
        flags: 0,
        ring_size,
        backends: (0..3u8)
            .map(|b| {
                let a: IpAddr = format!("10.{}.{}.{}", 100 + i / 250, i % 250, b + 2)
                    .parse()
                    .unwrap();
                DesiredBackend {
                    key: format!("{a}:80"),
                    addr: Addr::from_ip(a),
                    port: 80,
                    weight: 1,
                    state: if drained && b == 0 {
                        state::DRAIN
                    } else {
                        state::UP
                    },
                    next_hop: NextHop {
                        ifindex: 1,
                        src_mac: [2, 0, 0, 0, 0, 1],
                        dst_mac: [2, 0, 0, 0, 1, b],
                    },
                }
            })
            .collect(),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn a_thousand_vips_cost_one_grace_period_and_a_drain_none() {
    // SAFETY: unshare affects only this thread, which runs the whole test.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "unshare(CLONE_NEWNET) needs root");
    let mut dp = Dataplane::open(&Options {
        flow_table_size: 4096,
        ..Options::default()
    })
    .expect("loading the data path");
    // VIP 0 has a full-size ring; the others small ones (memory).
    let n = 1000u32;
    assert!(n <= MAX_VIPS);
    let size = |i: u32| if i == 0 { DEFAULT_RING_SIZE } else { 251 };
    let mut desired: Desired = (0..n).map(|i| vip(i, size(i), false)).collect();
    let mut actual = Actual::default();

    let t = Instant::now();
    let p = plan::plan_full(&actual, &desired).unwrap();
    plan::apply(&mut dp, &mut actual, p).unwrap();
    let cold = t.elapsed();
    assert_eq!(actual.vips.len(), n as usize);
    assert_eq!(
        dp.outer_map_updates(),
        1,
        "2,000 rings installed in one batch"
    );

    // Drain and undrain VIP 0's first backend a few times, as the agent
    // would on API requests (each after the previous one's grace period).
    let touched = BTreeSet::from([vip(0, 0, false).key]);
    let mut times = Vec::new();
    for round in 0..6 {
        std::thread::sleep(Duration::from_millis(40));
        desired.set(vip(0, DEFAULT_RING_SIZE, round % 2 == 0));
        let t = Instant::now();
        let p = plan::plan(&actual, &desired, &touched).unwrap();
        let writes = plan::apply(&mut dp, &mut actual, p).unwrap();
        times.push(t.elapsed());
        assert_eq!(writes, 2, "a ring and a backend");
    }
    assert_eq!(dp.outer_map_updates(), 1, "a drain installs no ring");
    let drain = median(times.clone());

    let t = Instant::now();
    for i in 0..n {
        desired.remove(&vip(i, 0, false).key);
    }
    let p = plan::plan_full(&actual, &desired).unwrap();
    plan::apply(&mut dp, &mut actual, p).unwrap();
    let removal = t.elapsed();
    assert!(actual.vips.is_empty());
    assert_eq!(dp.outer_map_updates(), 2, "every ring freed in one batch");

    eprintln!(
        "cold start of {n} VIPs {cold:?}; drain/undrain at M={DEFAULT_RING_SIZE} median \
         {drain:?} ({times:?}); removal of all {removal:?}; {} grace periods",
        dp.grace_periods()
    );
}
