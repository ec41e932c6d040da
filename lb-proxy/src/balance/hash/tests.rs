//! Hash functions against HAProxy 2.6.12's own: its `sdbm`, `djb2`, `wt6`
//! and `crc32` converters (with `(1)`: avalanche) run the same hash.c
//! functions the balancers use; the values were read back from it.

use super::*;

/// (input, sdbm, sdbm+avalanche, djb2, djb2+aval, wt6, wt6+aval, crc32, crc32+aval)
const VECTORS: [(&str, [u32; 8]); 7] = [
    (
        "",
        [
            0, 2874071335, 5381, 3719394183, 4187620192, 2385687481, 0, 2874071335,
        ],
    ),
    (
        "a",
        [
            97, 1830748055, 177670, 3548763807, 1900802597, 1986649387, 3904355907, 1288200982,
        ],
    ),
    (
        "ab",
        [
            6363201, 3352188731, 5863208, 282820760, 314091001, 988008184, 2659403885, 854450000,
        ],
    ),
    (
        "123456789",
        [
            1755344949, 3400502718, 902675330, 2717138294, 2225171485, 4053691039, 3421780262,
            1130417534,
        ],
    ),
    (
        "/index.html",
        [
            858007926, 4217574924, 3776231887, 1889807916, 822151038, 2986733765, 3928116034,
            571229468,
        ],
    ),
    (
        "/static/app.js",
        [
            2582574728, 2181295577, 1357955415, 2290240341, 4114462162, 651004554, 2786655757,
            3934370962,
        ],
    ),
    (
        "user42",
        [
            956198665, 253765262, 556066410, 3250504791, 2769745836, 1969511451, 2083503798,
            2703474008,
        ],
    ),
];

#[test]
fn hash_functions_give_haproxys_values() {
    let functions = [
        HashFunction::Sdbm,
        HashFunction::Djb2,
        HashFunction::Wt6,
        HashFunction::Crc32,
    ];
    for (input, expected) in VECTORS {
        for (k, function) in functions.iter().enumerate() {
            for (a, avalanche) in [false, true].into_iter().enumerate() {
                let h = Hasher {
                    function: *function,
                    avalanche,
                };
                assert_eq!(
                    h.hash(&[input.as_bytes()]),
                    expected[2 * k + a],
                    "{function:?} avalanche {avalanche} of {input:?}"
                );
            }
        }
    }
}

#[test]
fn parts_hash_as_their_concatenation() {
    let h = Hasher::for_type(HashType::Consistent);
    assert_eq!(
        h.hash(&[b"/stat", b"ic/app", b".js"]),
        h.hash(&[b"/static/app.js"])
    );
}

#[test]
fn default_hashers_per_hash_type() {
    assert_eq!(
        Hasher::for_type(HashType::MapBased),
        Hasher {
            function: HashFunction::Sdbm,
            avalanche: false
        }
    );
    assert_eq!(
        Hasher::for_type(HashType::Consistent),
        Hasher {
            function: HashFunction::Sdbm,
            avalanche: true
        }
    );
}

#[test]
fn addresses_hash_as_haproxy_reads_them() {
    let plain = Hasher::for_type(HashType::MapBased);
    assert_eq!(plain.hash_addr("127.0.0.1".parse().unwrap()), 0x7f00_0001);
    assert_eq!(
        plain.hash_addr("::ffff:10.1.2.3".parse().unwrap()),
        0x0a01_0203
    );
    // IPv6: its four 32-bit words XORed.
    assert_eq!(
        plain.hash_addr("2001:db8::1:0:0:1".parse().unwrap()),
        0x2001_0db8 ^ 0x0001_0000 ^ 0x0000_0001
    );
    let aval = Hasher::for_type(HashType::Consistent);
    assert_eq!(
        aval.hash_addr("127.0.0.1".parse().unwrap()),
        full_hash(0x7f00_0001)
    );
}

#[test]
fn balance_param_splits_on_ampersands_only() {
    let cases: [(&str, Option<&str>); 7] = [
        ("user=alice", Some("alice")),
        ("a=1&user=bob&user=eve", Some("bob")),
        ("user=", Some("")),
        ("users=x", None),
        ("x=1;user=dave", None),
        ("user", None),
        ("a=1&user=c;d", Some("c;d")),
    ];
    for (query, want) in cases {
        assert_eq!(
            balance_param(query.as_bytes(), b"user"),
            want.map(str::as_bytes),
            "{query}"
        );
    }
}

#[test]
fn first_value_of_a_header_line() {
    let cases = [
        ("alice", "alice"),
        (" alice , bob", "alice"),
        ("\"a,b\", c", "\"a,b\""),
        ("\"a\\\",b\",c", "\"a\\\",b\""),
        ("", ""),
        (", x", ""),
    ];
    for (line, want) in cases {
        assert_eq!(first_value(line.as_bytes()), want.as_bytes(), "{line:?}");
    }
}

#[test]
fn keys_come_from_what_the_balance_reads() {
    let head = hyper::Request::get("/p/q?user=bob&z=1")
        .header("x-key", "  k1, k2")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let client = "192.0.2.7".parse().unwrap();
    assert_eq!(Input::None.key(client, Some(&head)), HashKey::Absent);
    assert_eq!(Input::Source.key(client, None), HashKey::Source(client));
    assert_eq!(Input::Uri.key(client, Some(&head)), HashKey::Uri(&head.uri));
    assert_eq!(Input::Uri.key(client, None), HashKey::Absent);
    assert_eq!(
        Input::UrlParam("user".into()).key(client, Some(&head)),
        HashKey::Value(b"bob")
    );
    assert_eq!(
        Input::UrlParam("nope".into()).key(client, Some(&head)),
        HashKey::Absent
    );
    let hdr = HeaderName::from_static("x-key");
    assert_eq!(
        Input::Header(hdr).key(client, Some(&head)),
        HashKey::Value(b"k1")
    );
    let other = HeaderName::from_static("x-other");
    assert_eq!(
        Input::Header(other).key(client, Some(&head)),
        HashKey::Absent
    );
}

#[test]
fn uri_key_hashes_the_target_before_the_query() {
    let h = Hasher::for_type(HashType::MapBased);
    let uri = |s: &str| s.parse::<Uri>().unwrap();
    let hash = |s: &str| HashKey::Uri(&uri(s)).hash(h);
    assert_eq!(hash("/index.html?x=1"), Some(858007926));
    assert_eq!(
        hash("http://example.com/a?b"),
        Some(h.hash(&[b"http://example.com/a"]))
    );
    assert_eq!(hash("example.com:443"), Some(h.hash(&[b"example.com:443"])));
    assert_eq!(hash("*"), Some(h.hash(&[b"*"])));
}
