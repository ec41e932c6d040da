//! `source:` on pools and `proxy.defaults`: parsed, inherited, turned off,
//! checked against the servers' family, each mistake at its line:col.

use super::{errors, ok};
use crate::proxy::{Source, UseSrc};

/// Pool `web` with `source: SOURCE` at line 3 (value at column 13), one
/// backend at ADDR, used by frontend `main`; `defaults` lines after.
fn config(source: &str, addr: &str, defaults: &str) -> String {
    format!(
        "pools:\n  web:\n    source: {source}\n    backends:\n      - {{address: {addr}, port: 80}}\nfrontends:\n  main:\n    bind: \"*:8080\"\n    default_backend: web\n{defaults}"
    )
}

fn pool_source(text: &str) -> Option<Source> {
    ok(text).config.pools[0].proxy.source
}

#[test]
fn a_pool_source_is_read_and_others_inherit_the_defaults() {
    let s = pool_source(&config("\"0.0.0.0 usesrc clientip\"", "192.0.2.10", ""));
    assert_eq!(s.and_then(|s| s.usesrc), Some(UseSrc::ClientIp));
    let defaults = "proxy:\n  defaults:\n    source: 192.0.2.1\n";
    let text = config("null", "192.0.2.10", defaults);
    assert_eq!(pool_source(&text), None, "null turns the inherited one off");
    let text = config("false", "192.0.2.10", defaults);
    assert_eq!(pool_source(&text), None, "so does false");
    let inherited = defaults.replace("192.0.2.1", "\"192.0.2.1 usesrc client\"");
    let text = format!(
        "pools:\n  web:\n    backends:\n      - {{address: 192.0.2.10, port: 80}}\n{inherited}"
    );
    let got = ok(&text).config;
    assert_eq!(got.pools[0].proxy.source, got.proxy.defaults.pool.source);
    assert_eq!(
        got.pools[0].proxy.source.and_then(|s| s.usesrc),
        Some(UseSrc::Client)
    );
}

#[test]
fn a_wrong_source_is_refused_at_its_value() {
    for (value, says) in [
        ("\"192.0.2.1:1-9\"", "port ranges"),
        (
            "\"0.0.0.0 usesrc hdr_ip(x-forwarded-for)\"",
            "not supported",
        ),
        ("www.example.com", "not an IP address"),
        ("true", "usesrc"),
    ] {
        let e = errors(&config(value, "192.0.2.10", ""));
        assert!(
            e.iter()
                .any(|(l, c, m)| (*l, *c) == (3, 13) && m.contains(says)),
            "{value}: {e:?}"
        );
    }
}

#[test]
fn a_fixed_source_must_be_of_the_servers_family() {
    let e = errors(&config("\"2001:db8::1\"", "192.0.2.10", ""));
    assert!(
        e.iter()
            .any(|(l, c, m)| (*l, *c) == (3, 5) && m.contains("server's family")),
        "{e:?}"
    );
    // The client's address is the kernel's business, per connection.
    ok(&config("\"0.0.0.0 usesrc clientip\"", "2001:db8::10", ""));
}

#[test]
fn a_fixed_port_is_said_to_allow_one_connection_per_server() {
    let w = ok(&config("\"192.0.2.1:2000\"", "192.0.2.10", "")).warnings;
    assert!(
        w.iter()
            .any(|d| d.line == 3 && d.message.contains("port 2000 is fixed")),
        "{w:?}"
    );
    assert!(
        ok(&config("192.0.2.1", "192.0.2.10", ""))
            .warnings
            .is_empty()
    );
}
