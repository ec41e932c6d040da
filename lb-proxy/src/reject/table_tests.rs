use super::*;

const P: u64 = 10_000;

fn v4(s: &str) -> Source {
    Source::of(s.parse().unwrap())
}

#[test]
fn the_previous_period_fades_out_over_the_current_one() {
    let mut f = Freq::default();
    for i in 0..10 {
        assert_eq!(f.add(20_000 + i * 100, P), i as u32 + 1);
    }
    // At the next boundary the whole previous count still weighs...
    f.rotate(30_000, P);
    assert_eq!(f.rate(30_000, P), 10);
    // ...half of it at mid-period, plus what this period brought.
    assert_eq!(f.add(35_000, P), 1 + 5);
    f.rotate(39_000, P);
    assert_eq!(f.rate(39_000, P), 1 + 1);
    // A period without events leaves only the last one's share, and a
    // single event is read whole rather than as 0.75 rounded down...
    f.rotate(42_500, P);
    assert_eq!(f.rate(42_500, P), 1);
    let mut few = Freq::default();
    (0..4).for_each(|_| _ = few.add(0, P));
    few.rotate(17_500, P);
    assert_eq!(few.rate(17_500, P), 1, "4 events * 25%");
    // ...and after two, nothing.
    let mut g = Freq::default();
    g.add(0, P);
    g.rotate(25_000, P);
    assert_eq!(g.rate(25_000, P), 0);
}

#[test]
fn a_steady_rate_reads_as_itself() {
    // 2 events a second, for a minute: HAProxy reads 20 per 10 s (±1
    // while the previous period is weighed in).
    let mut f = Freq::default();
    let mut last = 0;
    for i in 0..120u64 {
        last = f.add(i * 500, P);
        if i >= 20 {
            assert!((19..=21).contains(&last), "at {} ms: {last}", i * 500);
        }
    }
    assert!((19..=21).contains(&last));
}

#[test]
fn connections_count_per_source_and_stay_open_until_closed() {
    let t = RateTable::new(1000, P);
    let (a, b) = (v4("192.0.2.1"), v4("192.0.2.2"));
    for n in 1..=3 {
        let seen = t.connect(a, 1_000);
        assert_eq!(
            seen,
            Seen {
                conn_rate: n,
                conn_cur: n
            }
        );
    }
    assert_eq!(
        t.connect(b, 1_000),
        Seen {
            conn_rate: 1,
            conn_cur: 1
        }
    );
    t.close(a);
    t.close(a);
    let seen = t.connect(a, 2_000);
    assert_eq!(
        seen,
        Seen {
            conn_rate: 4,
            conn_cur: 2
        }
    );
    assert_eq!(t.request(a, 2_000), 1);
    assert_eq!(t.request(a, 2_001), 2);
    assert_eq!(t.request(b, 2_001), 1, "another source has its own rate");
    // Closing more than was opened (after the source was forgotten) is harmless.
    for _ in 0..5 {
        t.close(b);
    }
    assert_eq!(t.connect(b, 3_000).conn_cur, 1);
}

#[test]
fn ipv6_sources_are_grouped_by_their_64() {
    let s = |a: &str| Source::of(a.parse().unwrap());
    assert_eq!(s("2001:db8:1:2::1"), s("2001:db8:1:2:ffff::9"));
    assert_ne!(s("2001:db8:1:2::1"), s("2001:db8:1:3::1"));
    assert_eq!(s("::ffff:192.0.2.1"), s("192.0.2.1"), "IPv4-mapped is IPv4");
    assert_ne!(s("192.0.2.1"), s("192.0.2.2"));
    let t = RateTable::new(100, P);
    t.request(s("2001:db8::1"), 0);
    assert_eq!(t.request(s("2001:db8::2"), 0), 2);
}

#[test]
fn a_full_table_forgets_the_least_recently_seen_source() {
    let t = RateTable::new(4, P);
    assert_eq!(t.shards.len(), 1, "a small table is one shard");
    let ip = |n: u8| Source::of(std::net::Ipv4Addr::new(10, 0, 0, n).into());
    for n in 1..=4 {
        t.request(ip(n), 0);
    }
    t.request(ip(1), 1); // 1 is now the most recently seen
    t.request(ip(5), 2); // forgets 2
    assert_eq!(t.len(), 4);
    assert_eq!(t.request(ip(1), 3), 3, "1 was kept");
    assert_eq!(t.request(ip(2), 3), 1, "2 was forgotten and starts again");
}

#[test]
fn a_full_table_keeps_sources_with_open_connections() {
    let t = RateTable::new(3, P);
    let ip = |n: u8| Source::of(std::net::Ipv4Addr::new(10, 0, 1, n).into());
    t.connect(ip(1), 0); // oldest, but open
    t.request(ip(2), 0);
    t.request(ip(3), 0);
    t.request(ip(4), 1); // forgets 2, not 1
    assert_eq!(t.connect(ip(1), 2).conn_cur, 2, "1 was kept");
    assert_eq!(t.request(ip(2), 3), 1, "2 was forgotten");
}

#[test]
fn memory_is_bounded_however_many_sources_come() {
    let t = RateTable::new(10_000, P);
    let cap = t.capacity();
    assert!((10_000..10_000 + MAX_SHARDS).contains(&cap), "{cap}");
    for n in 0..50_000u32 {
        t.connect(Source::of(std::net::Ipv4Addr::from(n).into()), 0);
    }
    assert!(t.len() <= cap, "{} > {cap}", t.len());
    assert!(t.len() >= 9_000, "the table is used: {}", t.len());
}
