use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use super::*;

fn server(name: &str, maxconn: Option<u32>) -> Arc<Link> {
    let addr = "127.0.0.1:1".parse().expect("an address");
    Arc::new(Link::new(name, addr, maxconn))
}

/// The slot a waiter was handed, if any.
fn woken(ticket: &mut Ticket) -> Option<Wake> {
    ticket.rx.try_recv().ok()
}

fn granted_on(wake: Option<Wake>) -> Option<String> {
    match wake? {
        Wake::Slot(grant) => Some(grant.link.name().to_owned()),
        Wake::Redispatch => Some("redispatch".into()),
    }
}

fn usable(_: &Arc<Link>) -> bool {
    true
}

#[test]
fn without_maxconn_every_request_gets_a_slot_at_once() {
    let q = Queues::default();
    let s = server("s", None);
    let slots: Vec<Active> = (0..100).map(|_| q.acquire(&s).expect("a slot")).collect();
    assert_eq!(s.active(), 100);
    for a in slots {
        q.release(&s, a, true);
    }
    assert_eq!(s.active(), 0);
}

#[test]
fn past_maxconn_requests_wait_and_a_release_hands_the_slot_over() {
    let q = Queues::default();
    let s = server("s", Some(2));
    let first = q.acquire(&s).expect("a slot");
    let _second = q.acquire(&s).expect("a slot");
    let mut third = q.acquire(&s).expect_err("third waits");
    assert_eq!((s.active(), s.queued()), (2, 1));
    assert!(woken(&mut third).is_none());
    q.release(&s, first, true);
    let Some(Wake::Slot(grant)) = woken(&mut third) else {
        panic!("handed the slot")
    };
    // The slot went from one request to the next without being freed.
    assert_eq!((s.active(), s.queued()), (2, 0));
    drop(grant);
    assert_eq!(s.active(), 1);
}

#[test]
fn a_newcomer_waits_behind_those_already_waiting() {
    let q = Queues::default();
    let s = server("s", Some(1));
    let held = q.acquire(&s).expect("a slot");
    let _first = q.acquire(&s).expect_err("waits");
    drop(held); // freed without handing over, as if racing
    assert!(q.acquire(&s).is_err(), "first come, first served");
}

#[test]
fn the_oldest_of_server_and_pool_queue_goes_first() {
    let q = Queues::default();
    let s = server("s", Some(1));
    let held = q.acquire(&s).expect("a slot");
    let mut pool_first = q.wait_any();
    let mut own_second = q.acquire(&s).expect_err("waits");
    q.release(&s, held, true);
    let Some(Wake::Slot(grant)) = woken(&mut pool_first) else {
        panic!("pool waiter first")
    };
    assert!(woken(&mut own_second).is_none());
    assert_eq!(q.pool_len(), 0);
    q.release(&s, grant.active, true);
    assert_eq!(granted_on(woken(&mut own_second)).as_deref(), Some("s"));
}

#[test]
fn a_server_not_taking_balanced_requests_serves_only_its_own_queue() {
    let q = Queues::default();
    let s = server("s", Some(1));
    let held = q.acquire(&s).expect("a slot");
    let mut pooled = q.wait_any();
    q.release(&s, held, false);
    assert!(woken(&mut pooled).is_none());
    assert_eq!(s.active(), 0);
    q.grab(&s);
    let Some(Wake::Slot(grant)) = woken(&mut pooled) else {
        panic!("served once usable")
    };
    assert_eq!((grant.link.name(), s.active()), ("s", 1));
}

#[test]
fn grab_takes_pool_waiters_up_to_maxconn() {
    let q = Queues::default();
    let s = server("s", Some(2));
    let mut t: Vec<Ticket> = (0..3).map(|_| q.wait_any()).collect();
    q.grab(&s);
    let wakes: Vec<Option<Wake>> = t.iter_mut().map(woken).collect();
    assert_eq!(
        (s.active(), q.pool_len()),
        (2, 1),
        "two slots handed, one waiter left"
    );
    let got: Vec<_> = wakes.into_iter().map(granted_on).collect();
    assert_eq!(got, [Some("s".into()), Some("s".into()), None]);
    assert_eq!(s.active(), 0, "dropped grants free their slots");
}

#[test]
fn leaving_removes_the_waiter_and_its_count() {
    let q = Queues::default();
    let s = server("s", Some(1));
    let held = q.acquire(&s).expect("a slot");
    let mut t = q.acquire(&s).expect_err("waits");
    q.leave(&mut t, usable);
    assert_eq!(s.queued(), 0);
    q.release(&s, held, true);
    assert_eq!(s.active(), 0, "nobody left to hand the slot to");
}

#[test]
fn a_slot_that_reached_a_leaving_waiter_is_given_back() {
    let q = Queues::default();
    let s = server("s", Some(1));
    let held = q.acquire(&s).expect("a slot");
    let mut t = q.acquire(&s).expect_err("waits");
    q.release(&s, held, true);
    // Woken, but gives up before reading its wake-up (a timeout raced).
    q.leave(&mut t, usable);
    assert_eq!(s.active(), 0);
}

#[test]
fn a_waiter_gone_without_leaving_is_skipped() {
    let q = Queues::default();
    let s = server("s", Some(1));
    let held = q.acquire(&s).expect("a slot");
    let gone = q.acquire(&s).expect_err("waits");
    let mut next = q.acquire(&s).expect_err("waits");
    drop(gone);
    q.release(&s, held, true);
    assert_eq!(granted_on(woken(&mut next)).as_deref(), Some("s"));
    assert_eq!(
        (s.active(), s.queued()),
        (0, 0),
        "the grant was dropped unread"
    );
}

#[test]
fn redistribute_wakes_a_down_servers_waiters_to_choose_again() {
    let q = Queues::default();
    let s = server("s", Some(1));
    let _held = q.acquire(&s).expect("a slot");
    let mut t = q.acquire(&s).expect_err("waits");
    q.redistribute("s");
    assert_eq!(granted_on(woken(&mut t)).as_deref(), Some("redispatch"));
    assert_eq!(s.queued(), 0);
}

/// Threads race to take and give back slots of one server: it never has
/// more than `maxconn` at once, and every request is served.
#[test]
fn maxconn_holds_under_contention() {
    const MAX: u32 = 3;
    let q = Arc::new(Queues::default());
    let s = server("s", Some(MAX));
    let busy = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (q, s, busy, peak) = (q.clone(), s.clone(), busy.clone(), peak.clone());
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    let active = match q.acquire(&s) {
                        Ok(active) => active,
                        Err(t) => match t.rx.blocking_recv() {
                            Ok(Wake::Slot(grant)) => grant.active,
                            other => panic!("woken with {other:?}"),
                        },
                    };
                    let now = busy.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    std::hint::spin_loop();
                    busy.fetch_sub(1, SeqCst);
                    q.release(&s, active, true);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no thread panicked");
    }
    assert!(peak.load(SeqCst) <= MAX, "peak {}", peak.load(SeqCst));
    assert_eq!((s.active(), s.queued()), (0, 0));
}
