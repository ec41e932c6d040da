//! Every receive rule, each on an otherwise good packet.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const SRC: &str = "10.0.0.9";
const GROUP: &str = "224.0.0.18";

fn expect(version: u8) -> Expect {
    Expect {
        version,
        vrid: 51,
        siblings: vec![52],
        interval: if version == 2 { 1 } else { 100 },
        password: None,
        addresses: vec![ip("10.0.0.100")],
        own: vec![ip("10.0.0.2")],
        peers: vec![],
        unicast: false,
    }
}

fn advert(version: u8) -> Advert {
    Advert {
        version,
        vrid: 51,
        priority: 100,
        interval: if version == 2 { 1 } else { 100 },
        auth_type: 0,
        auth_data: [0; 8],
        addresses: vec![ip("10.0.0.100")],
    }
}

fn check(e: &Expect, a: &Advert, src: &str, dst: &str, ttl: u8) -> Verdict {
    let bytes = a.encode(ip(src), ip(dst));
    e.check(&Received {
        bytes: &bytes,
        src: ip(src),
        dst: ip(dst),
        ttl,
    })
}

fn reason(v: Verdict) -> Reason {
    match v {
        Verdict::Reject(r, _) => r,
        other => panic!("not rejected: {other:?}"),
    }
}

#[test]
fn a_good_advert_is_accepted() {
    for v in [2, 3] {
        let got = check(&expect(v), &advert(v), SRC, GROUP, 255);
        assert_eq!(
            got,
            Verdict::Accept {
                advert: advert(v),
                notes: vec![]
            }
        );
    }
}

#[test]
fn each_rule_rejects() {
    let e = expect(3);
    assert_eq!(reason(check(&e, &advert(3), SRC, GROUP, 254)), Reason::Ttl);
    assert_eq!(
        reason(check(&expect(2), &advert(3), SRC, GROUP, 255)),
        Reason::Version
    );
    let mut other = advert(3);
    other.vrid = 9;
    assert_eq!(reason(check(&e, &other, SRC, GROUP, 255)), Reason::Vrid);
    other.vrid = 52;
    assert_eq!(check(&e, &other, SRC, GROUP, 255), Verdict::NotOurs);
    assert_eq!(
        reason(check(&e, &advert(3), "10.0.0.2", GROUP, 255)),
        Reason::OwnAddress
    );
    let mut peers = expect(3);
    peers.peers = vec![ip("10.0.0.3")];
    assert_eq!(
        reason(check(&peers, &advert(3), SRC, GROUP, 255)),
        Reason::NotPeer
    );
    assert!(matches!(
        check(&peers, &advert(3), "10.0.0.3", GROUP, 255),
        Verdict::Accept { .. }
    ));
    assert_eq!(
        reason(check(&e, &advert(3), SRC, "10.0.0.2", 255)),
        Reason::Transport
    );
    let mut unicast = expect(3);
    unicast.unicast = true;
    assert_eq!(
        reason(check(&unicast, &advert(3), SRC, GROUP, 255)),
        Reason::Transport
    );
    assert!(
        matches!(
            check(&unicast, &advert(3), SRC, "10.0.0.2", 64),
            Verdict::Accept { .. }
        ),
        "routed unicast"
    );
}

#[test]
fn wire_errors_reject() {
    let e = expect(3);
    let good = advert(3).encode(ip(SRC), ip(GROUP));
    let rx = |bytes: &[u8]| {
        e.check(&Received {
            bytes,
            src: ip(SRC),
            dst: ip(GROUP),
            ttl: 255,
        })
    };
    let mut bad = good.clone();
    bad[7] ^= 0xff;
    assert_eq!(reason(rx(&bad)), Reason::Checksum);
    assert_eq!(reason(rx(&good[..9])), Reason::Length);
    let mut typ = good.clone();
    typ[0] = 0x32;
    assert_eq!(reason(rx(&typ)), Reason::Type);
    let mut ver = good;
    ver[0] = 0x11;
    assert_eq!(reason(rx(&ver)), Reason::Version);
}

#[test]
fn v2_authentication_and_interval() {
    let mut e = expect(2);
    e.password = Some(*b"xiaoqi\0\0");
    let mut a = advert(2);
    assert_eq!(reason(check(&e, &a, SRC, GROUP, 255)), Reason::AuthType);
    a.auth_type = AUTH_PASS;
    a.auth_data = *b"wrong\0\0\0";
    assert_eq!(reason(check(&e, &a, SRC, GROUP, 255)), Reason::AuthPassword);
    a.auth_data = *b"xiaoqi\0\0";
    assert!(matches!(
        check(&e, &a, SRC, GROUP, 255),
        Verdict::Accept { .. }
    ));
    a.interval = 2;
    assert_eq!(reason(check(&e, &a, SRC, GROUP, 255)), Reason::Interval);
    // No password configured: a PASS advert is refused too.
    let mut pass = advert(2);
    pass.auth_type = AUTH_PASS;
    assert_eq!(
        reason(check(&expect(2), &pass, SRC, GROUP, 255)),
        Reason::AuthType
    );
    // v3 learns the interval instead.
    let mut v3 = advert(3);
    v3.interval = 7;
    assert!(matches!(
        check(&expect(3), &v3, SRC, GROUP, 255),
        Verdict::Accept { .. }
    ));
}

#[test]
fn address_mismatches_are_noted_and_obeyed() {
    let e = expect(3);
    let mut a = advert(3);
    a.addresses = vec![ip("10.0.0.100"), ip("10.0.0.101")];
    assert_eq!(
        check(&e, &a, SRC, GROUP, 255),
        Verdict::Accept {
            advert: a.clone(),
            notes: vec![Reason::AddressCount]
        }
    );
    a.addresses = vec![ip("10.0.0.101")];
    assert_eq!(
        check(&e, &a, SRC, GROUP, 255),
        Verdict::Accept {
            advert: a.clone(),
            notes: vec![Reason::AddressList]
        }
    );
}

#[test]
fn ipv6_adverts() {
    let mut e = expect(3);
    e.addresses = vec![ip("2001:db8::1")];
    e.own = vec![ip("fe80::2")];
    let mut a = advert(3);
    a.addresses = vec![ip("2001:db8::1")];
    assert!(matches!(
        check(&e, &a, "fe80::9", "ff02::12", 255),
        Verdict::Accept { .. }
    ));
    assert_eq!(reason(check(&e, &a, "fe80::9", "ff02::12", 1)), Reason::Ttl);
}
