use super::testing::{spec, specs};
use super::*;

fn ids(s: &Servers) -> Vec<(String, u32)> {
    s.iter()
        .map(|(_, s)| (s.name().to_string(), s.hash_id()))
        .collect()
}

fn named(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
    pairs.iter().map(|(n, i)| (n.to_string(), *i)).collect()
}

#[test]
fn hash_ids_are_pool_order_then_kept_by_name() {
    let (mut list, _) = specs(&[1, 1, 1]);
    let first = Servers::build(&list, None);
    assert_eq!(ids(&first), named(&[("s1", 1), ("s2", 2), ("s3", 3)]));

    // s2 leaves, s4 arrives first in the list: it takes the free id 2.
    list.remove(1);
    list.insert(0, spec("s4", 1));
    let second = Servers::build(&list, Some(&first));
    assert_eq!(ids(&second), named(&[("s4", 2), ("s1", 1), ("s3", 3)]));

    // s2 comes back: the lowest id not in use.
    list.push(spec("s2", 1));
    let third = Servers::build(&list, Some(&second));
    assert_eq!(
        ids(&third),
        named(&[("s4", 2), ("s1", 1), ("s3", 3), ("s2", 4)])
    );
}

#[test]
fn load_is_the_spec_s_shared_counters() {
    let (list, counts) = specs(&[1, 1]);
    let set = Servers::build(&list, None);
    counts[1].set(3, 2);
    let s2 = set.get(ServerId::at(1)).unwrap();
    assert_eq!((s2.load().active(), s2.load().queued()), (3, 2));
}

#[test]
fn servers_by_cookie_in_pool_order() {
    let mut list: Vec<ServerSpec> = ["a", "b", "c", "d"].iter().map(|n| spec(n, 1)).collect();
    list[0].cookie = Some("x".into());
    list[1].cookie = Some("y".into());
    list[3].cookie = Some("x".into());
    let set = Servers::build(&list, None);
    let names = |v: &[u8]| -> Vec<&str> {
        set.with_cookie(v)
            .map(|id| set.get(id).unwrap().name())
            .collect()
    };
    assert_eq!(names(b"x"), ["a", "d"]);
    assert_eq!(names(b"y"), ["b"]);
    assert!(names(b"z").is_empty() && names(b"").is_empty());
}

#[test]
fn states_and_weights_decide_traffic() {
    let cases = [
        (ServerState::Up, 1, true, true),
        (ServerState::Up, 0, false, true),
        (ServerState::Drain, 1, false, true),
        (ServerState::Down, 1, false, false),
        (ServerState::Maint, 1, false, false),
    ];
    for (state, weight, new_traffic, running) in cases {
        let set = Servers::build(
            &[ServerSpec {
                state,
                ..spec("s", weight)
            }],
            None,
        );
        let s = set.get(ServerId::at(0)).unwrap();
        assert_eq!(
            (s.takes_new_traffic(), s.is_running()),
            (new_traffic, running),
            "{state:?} weight {weight}"
        );
    }
}

#[test]
fn full_means_at_maxconn_or_others_waiting() {
    let (mut list, counts) = specs(&[1, 1]);
    list[0].maxconn = Some(2);
    let set = Servers::build(&list, None);
    let (limited, unlimited) = (
        set.get(ServerId::at(0)).unwrap(),
        set.get(ServerId::at(1)).unwrap(),
    );
    counts[0].set(1, 0);
    assert!(!limited.is_full());
    counts[0].set(2, 0);
    assert!(limited.is_full());
    counts[0].set(0, 1);
    assert!(limited.is_full());
    counts[1].set(1000, 50);
    assert!(!unlimited.is_full());
}

#[test]
fn find_and_usable_count() {
    let (mut list, _) = specs(&[1, 1, 0]);
    list[1].state = ServerState::Drain;
    let set = Servers::build(&list, None);
    assert_eq!(set.find("s2"), Some(ServerId::at(1)));
    assert_eq!(set.find("nope"), None);
    assert_eq!(set.usable_count(), 1);
    assert_eq!(set.len(), 3);
}
