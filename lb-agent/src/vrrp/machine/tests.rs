//! Every transition of RFC 5798 §6.4, the timer arithmetic, preemption,
//! priority 0 and the tie-break, with time as an input.

use super::*;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn params(version: u8, advert_ms: u64) -> Params {
    Params {
        version,
        advert_int: MS(advert_ms),
        preempt: true,
        preempt_delay: Duration::ZERO,
        owner: false,
        start_master: false,
        address: ip("10.0.0.2"),
    }
}

fn started(p: Params, priority: u8) -> Machine {
    let mut m = Machine::new(p, priority);
    m.step(MS(0), Input::Startup);
    m
}

fn advert(from: &str, priority: u8, interval_ms: u64) -> Input {
    Input::Advert {
        from: ip(from),
        priority,
        interval: MS(interval_ms),
    }
}

fn states(actions: &[Action]) -> Vec<(State, State)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transition { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

fn effects(actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .filter(|a| !matches!(a, Action::Transition { .. }))
        .cloned()
        .collect()
}

#[test]
fn skew_and_down_interval() {
    // v3: ((256 - 100) * 1000 ms) / 256 = 609.375 ms; 3 * 1000 + skew.
    let m = started(params(3, 1000), 100);
    assert_eq!(m.skew(), Duration::from_micros(609_375));
    assert_eq!(m.down_interval(), Duration::from_micros(3_609_375));
    // At 100 ms: 60.9375 ms and 360.9375 ms.
    let m = started(params(3, 100), 100);
    assert_eq!(m.skew(), Duration::from_nanos(60_937_500));
    assert_eq!(m.down_interval(), Duration::from_nanos(360_937_500));
    // v2: the skew is in seconds whatever the interval (RFC 3768 §6.1).
    let m = started(params(2, 2000), 150);
    assert_eq!(m.skew(), Duration::from_nanos(414_062_500));
    assert_eq!(m.down_interval(), MS(6000) + m.skew());
    // The highest priority waits least.
    assert_eq!(
        started(params(3, 1000), 254).skew(),
        Duration::from_nanos(7_812_500)
    );
}

#[test]
fn startup_goes_backup_then_master_when_nobody_speaks() {
    let mut m = Machine::new(params(3, 1000), 100);
    let a = m.step(MS(0), Input::Startup);
    assert_eq!(states(&a), [(State::Init, State::Backup)]);
    assert_eq!(m.deadline(), Some(Duration::from_micros(3_609_375)));
    assert!(
        m.step(Duration::from_micros(3_609_374), Input::Tick)
            .is_empty()
    );
    let a = m.step(Duration::from_micros(3_609_375), Input::Tick);
    assert_eq!(effects(&a), [Action::Send(100), Action::TakeOver]);
    assert_eq!(states(&a), [(State::Backup, State::Master)]);
    // Master: an advert every Advertisement_Interval.
    let t = Duration::from_micros(3_609_375);
    assert_eq!(m.deadline(), Some(t + MS(1000)));
    assert_eq!(m.step(t + MS(1000), Input::Tick), [Action::Send(100)]);
    assert_eq!(m.deadline(), Some(t + MS(2000)));
}

#[test]
fn the_owner_is_master_at_once_and_the_state_hint_matters_only_to_it() {
    let mut p = params(3, 1000);
    p.owner = true;
    p.start_master = true;
    let mut m = Machine::new(p.clone(), 255);
    let a = m.step(MS(0), Input::Startup);
    assert_eq!(effects(&a), [Action::Send(255), Action::TakeOver]);
    assert_eq!(m.state(), State::Master);
    // keepalived: `state MASTER` below 255 starts as backup with the full down timer.
    let mut hint = params(3, 1000);
    hint.start_master = true;
    let m = started(hint, 200);
    assert_eq!(m.state(), State::Backup);
    assert_eq!(m.deadline(), Some(m.down_interval()));
    // The owner preempts even with nopreempt.
    p.preempt = false;
    p.start_master = false;
    let mut m = started(p, 255);
    m.step(MS(10), advert("10.0.0.9", 200, 1000));
    assert_eq!(m.master(), None, "a lower-priority advert is discarded");
}

#[test]
fn backup_follows_a_better_master_and_learns_its_interval() {
    let mut m = started(params(3, 1000), 100);
    assert!(m.step(MS(500), advert("10.0.0.9", 150, 200)).is_empty());
    assert_eq!(m.master(), Some((ip("10.0.0.9"), 150)));
    assert_eq!(m.master_adver_int(), MS(200));
    // 3 * 200 ms + (156 * 200 ms) / 256.
    assert_eq!(
        m.deadline(),
        Some(MS(500) + MS(600) + Duration::from_micros(121_875))
    );
    // v2 does not learn: every router uses its own (mismatches are dropped earlier).
    let mut v2 = started(params(2, 1000), 100);
    v2.step(MS(500), advert("10.0.0.9", 150, 3000));
    assert_eq!(v2.master_adver_int(), MS(1000));
}

#[test]
fn a_resigning_master_is_replaced_after_skew_time() {
    let mut m = started(params(3, 1000), 100);
    m.step(MS(100), advert("10.0.0.9", 150, 1000));
    assert!(m.step(MS(200), advert("10.0.0.9", 0, 1000)).is_empty());
    assert_eq!(m.deadline(), Some(MS(200) + Duration::from_micros(609_375)));
    let a = m.step(MS(200) + Duration::from_micros(609_375), Input::Tick);
    assert_eq!(states(&a), [(State::Backup, State::Master)]);
    let Action::Transition { why, .. } = &a[2] else {
        panic!("{a:?}")
    };
    assert!(why.starts_with("the master resigned (priority 0)"), "{why}");
}

#[test]
fn preemption_and_nopreempt() {
    // Preempt: a lower-priority advert is discarded, the timer runs out.
    let mut m = started(params(3, 1000), 150);
    m.step(MS(100), advert("10.0.0.9", 100, 1000));
    assert_eq!(m.deadline(), Some(m.down_interval()), "timer not restarted");
    // nopreempt: the lower-priority master is kept.
    let mut p = params(3, 1000);
    p.preempt = false;
    let mut m = started(p, 150);
    m.step(MS(100), advert("10.0.0.9", 100, 1000));
    assert_eq!(m.deadline(), Some(MS(100) + m.down_interval()));
    assert_eq!(m.master(), Some((ip("10.0.0.9"), 100)));
}

#[test]
fn preempt_delay_holds_preemption_after_start() {
    let mut p = params(3, 1000);
    p.preempt_delay = MS(5000);
    let mut m = started(p, 150);
    m.step(MS(1000), advert("10.0.0.9", 100, 1000));
    assert_eq!(
        m.deadline(),
        Some(MS(1000) + m.down_interval()),
        "accepted during the delay"
    );
    m.step(MS(4000), advert("10.0.0.9", 100, 1000));
    m.step(MS(5000), advert("10.0.0.9", 100, 1000));
    assert_eq!(
        m.deadline(),
        Some(MS(4000) + m.down_interval()),
        "discarded after it"
    );
    let a = m.step(MS(4000) + m.down_interval(), Input::Tick);
    assert_eq!(states(&a), [(State::Backup, State::Master)]);
}

fn master(p: Params, priority: u8) -> Machine {
    let mut m = started(p, priority);
    let t = m.deadline().unwrap();
    m.step(t, Input::Tick);
    assert_eq!(m.state(), State::Master);
    m
}

#[test]
fn master_steps_down_to_higher_priority_and_ties_go_to_the_higher_address() {
    let mut m = master(params(3, 1000), 100);
    let a = m.step(MS(9000), advert("10.0.0.1", 101, 500));
    assert_eq!(effects(&a), [Action::Release]);
    assert_eq!(states(&a), [(State::Master, State::Backup)]);
    assert_eq!(m.master_adver_int(), MS(500));
    // Equal priority: 10.0.0.3 > 10.0.0.2 (ours) wins, 10.0.0.1 loses.
    let mut m = master(params(3, 1000), 100);
    let a = m.step(MS(9000), advert("10.0.0.1", 100, 1000));
    assert_eq!(a, [Action::Send(100)], "we win the tie and answer at once");
    assert_eq!(m.state(), State::Master);
    let a = m.step(MS(9100), advert("10.0.0.3", 100, 1000));
    assert_eq!(states(&a), [(State::Master, State::Backup)]);
}

#[test]
fn master_answers_a_resignation_and_lower_priorities() {
    let mut m = master(params(3, 1000), 100);
    assert_eq!(
        m.step(MS(9000), advert("10.0.0.9", 0, 1000)),
        [Action::Send(100)]
    );
    assert_eq!(m.deadline(), Some(MS(10_000)));
    assert_eq!(
        m.step(MS(9500), advert("10.0.0.9", 50, 1000)),
        [Action::Send(100)]
    );
    assert_eq!(m.state(), State::Master);
}

#[test]
fn shutdown_resigns_only_as_master() {
    let mut m = master(params(3, 1000), 100);
    let a = m.step(MS(9000), Input::Shutdown);
    assert_eq!(effects(&a), [Action::Send(0), Action::Release]);
    assert_eq!(states(&a), [(State::Master, State::Stopped)]);
    assert_eq!(m.deadline(), None);
    let mut b = started(params(3, 1000), 100);
    assert_eq!(effects(&b.step(MS(10), Input::Shutdown)), []);
    assert_eq!(b.state(), State::Stopped);
    assert!(b.step(MS(20), advert("10.0.0.9", 0, 1000)).is_empty());
}

#[test]
fn fault_resigns_ignores_adverts_and_recovers_as_backup() {
    let mut m = master(params(3, 1000), 100);
    let a = m.step(MS(9000), Input::Fault(true));
    assert_eq!(effects(&a), [Action::Send(0), Action::Release]);
    assert_eq!(m.state(), State::Fault);
    assert!(m.step(MS(9100), advert("10.0.0.9", 200, 1000)).is_empty());
    assert!(m.step(MS(99_000), Input::Tick).is_empty());
    let a = m.step(MS(100_000), Input::Fault(false));
    assert_eq!(states(&a), [(State::Fault, State::Backup)]);
    assert_eq!(m.deadline(), Some(MS(100_000) + m.down_interval()));
    // The owner recovers straight to master.
    let mut p = params(3, 1000);
    p.owner = true;
    let mut o = started(p, 255);
    o.step(MS(1), Input::Fault(true));
    assert_eq!(
        effects(&o.step(MS(2), Input::Fault(false))),
        [Action::Send(255), Action::TakeOver]
    );
    // Starting with a failing tracker is FAULT at once.
    let mut f = Machine::new(params(3, 1000), 100);
    f.step(MS(0), Input::Fault(true));
    f.step(MS(0), Input::Startup);
    assert_eq!(f.state(), State::Fault);
}

#[test]
fn priority_changes_take_effect_in_the_next_advert_and_the_skew() {
    let mut m = master(params(3, 1000), 100);
    m.step(MS(9000), Input::Priority(98));
    let t = m.deadline().unwrap();
    assert_eq!(m.step(t, Input::Tick), [Action::Send(98)]);
    // A backup raised above the master discards its adverts and takes over.
    let mut b = started(params(3, 1000), 100);
    b.step(MS(100), advert("10.0.0.9", 101, 1000));
    b.step(MS(200), Input::Priority(102));
    b.step(MS(1100), advert("10.0.0.9", 101, 1000));
    assert_eq!(
        b.deadline(),
        Some(MS(100) + Duration::from_micros(3_609_375))
    );
}

#[test]
fn sync_groups_move_members_together() {
    let mut b = started(params(3, 1000), 100);
    let a = b.step(MS(50), Input::GroupMaster);
    assert_eq!(effects(&a), [Action::Send(100), Action::TakeOver]);
    let a = b.step(MS(60), Input::GroupBackup);
    assert_eq!(effects(&a), [Action::Release]);
    assert_eq!(b.state(), State::Backup);
    let a = b.step(MS(70), Input::GroupFault(true));
    assert_eq!(states(&a), [(State::Backup, State::Fault)]);
    // Its own fault and the group's are separate: both must clear.
    b.step(MS(80), Input::Fault(true));
    b.step(MS(90), Input::GroupFault(false));
    assert_eq!(b.state(), State::Fault);
    b.step(MS(95), Input::Fault(false));
    assert_eq!(b.state(), State::Backup);
    // Group inputs in other states change nothing.
    let mut m = master(params(3, 1000), 100);
    assert!(m.step(MS(9000), Input::GroupMaster).is_empty());
}

#[test]
fn adverts_before_startup_are_ignored() {
    let mut m = Machine::new(params(3, 1000), 100);
    assert!(m.step(MS(0), advert("10.0.0.9", 0, 1000)).is_empty());
    assert!(m.step(MS(0), Input::Tick).is_empty());
    assert_eq!(m.state(), State::Init);
}
