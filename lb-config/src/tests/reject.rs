//! A frontend's `src_deny`, `src_allow` and `rate_limit`: the model they
//! build (files read), and each mistake at its line:col.

use std::time::Duration;

use super::ok;
use super::proxy_errors::{check, front};
use crate::proxy::*;

fn net(s: &str) -> IpNet {
    s.parse().expect("test network")
}

#[test]
fn lists_and_limits_build_the_model() {
    let dir = std::env::temp_dir().join(format!("lb-config-reject-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("blocklist");
    std::fs::write(
        &file,
        "# bots\n198.51.100.7\n\n2001:db8::/32  # a provider\n",
    )
    .unwrap();
    let c = ok(&front(&format!(
        "    src_deny: [203.0.113.0/24, {}]\n    src_allow: [0.0.0.0/0]\n    rate_limit:\n      conn_rate: 20\n      http_req_rate: 100\n      reply: close\n",
        file.display()
    )));
    std::fs::remove_dir_all(&dir).unwrap();
    let r = &c.config.frontends[0].reject;
    assert_eq!(
        r.src_deny,
        vec![
            net("203.0.113.0/24"),
            net("198.51.100.7/32"),
            net("2001:db8::/32")
        ]
    );
    assert_eq!(r.src_allow, Some(vec![net("0.0.0.0/0")]));
    assert_eq!(
        r.rate_limit,
        Some(RateLimit {
            period: DEFAULT_RATE_PERIOD,
            conn_rate: Some(20),
            http_req_rate: Some(100),
            conn_cur: None,
            table_size: DEFAULT_RATE_TABLE_SIZE,
            reply: RateReply::Close,
        })
    );
    let plain = ok(&front(""));
    assert!(plain.config.frontends[0].reject.is_empty());
}

#[test]
fn a_tcp_frontend_limits_connections_only() {
    let c = ok(&front(
        "    mode: tcp\n    rate_limit: {period: 1m, conn_cur: 5, table_size: 10}\n",
    ));
    let limit = c.config.frontends[0].reject.rate_limit.clone().unwrap();
    assert_eq!(
        (limit.period, limit.conn_cur, limit.table_size, limit.reply),
        (Duration::from_secs(60), Some(5), 10, DEFAULT_RATE_REPLY)
    );
}

#[test]
fn a_reply_without_a_request_rate_is_warned() {
    let c = ok(&front("    rate_limit: {conn_rate: 5, reply: 403}\n"));
    let w = &c.warnings[0];
    assert_eq!((w.line, w.col), (9, 32), "{w}");
    assert!(w.message.contains("never sent"), "{w}");
}

#[test]
fn mistakes_are_placed() {
    let rate = |keys: &str| front(&format!("    rate_limit:\n{keys}"));
    let missing = "/nonexistent/lb-blocklist";
    let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
        (
            "not a network",
            front("    src_deny: [203.0.113.0/33]\n"),
            (9, 16),
            "`/33`: the prefix length is 0..=32",
        ),
        (
            "a relative file",
            front("    src_deny: [blocklist]\n"),
            (9, 16),
            "`blocklist` is not an IP address; an entry is an address",
        ),
        (
            "a missing file",
            front(&format!("    src_allow: [{missing}]\n")),
            (9, 17),
            "cannot read `/nonexistent/lb-blocklist`",
        ),
        (
            "an empty allow list",
            front("    src_allow: []\n"),
            (9, 16),
            "an empty `src_allow` refuses every client",
        ),
        (
            "no limit",
            rate("      period: 10s\n"),
            (9, 5),
            "`rate_limit` sets no limit",
        ),
        (
            "a zero rate",
            rate("      conn_rate: 0\n"),
            (10, 18),
            "conn_rate 0 is out of range 1..=100000000",
        ),
        (
            "a period too short",
            rate("      conn_rate: 5\n      period: 500ms\n"),
            (11, 15),
            "rate_limit.period must be between 1s and 1h",
        ),
        (
            "a table too large",
            rate("      conn_cur: 5\n      table_size: 20000000\n"),
            (11, 19),
            "table_size 20000000 is out of range 1..=10000000",
        ),
        (
            "a reply that is no deny status",
            rate("      http_req_rate: 5\n      reply: 302\n"),
            (11, 14),
            "`reply` is `close` (no answer) or a status: one of 200, 400",
        ),
        (
            "an unknown key",
            rate("      conn_cur: 5\n      conn_rat: 5\n"),
            (11, 7),
            "unknown key `conn_rat`",
        ),
        (
            "requests in tcp mode",
            front("    mode: tcp\n    rate_limit:\n      http_req_rate: 5\n"),
            (11, 7),
            "`rate_limit.http_req_rate` applies to HTTP frontends",
        ),
    ];
    check(cases);
}

#[test]
fn bad_lines_of_a_file_name_the_file_and_line() {
    let file = std::env::temp_dir().join(format!("lb-config-badlist-{}", std::process::id()));
    std::fs::write(&file, "10.0.0.0/8\nnot-an-address\n").unwrap();
    let text = front(&format!("    src_deny:\n      - {}\n", file.display()));
    let got = super::errors(&text);
    std::fs::remove_file(&file).unwrap();
    let want = format!(
        "{}:2: `not-an-address` is not an IP address",
        file.display()
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (10, 9), "{got:?}");
    assert!(got[0].2.contains(&want), "{got:?}");
}

#[test]
fn the_reference_shows_every_key_with_its_default_and_range() {
    let doc = crate::model::DEFAULTS_DOC;
    let d = DEFAULT_RATE_PERIOD.as_secs();
    for text in [
        "# src_deny: []".to_owned(),
        "# src_allow:".to_owned(),
        "# rate_limit:".to_owned(),
        format!("#   period: {d}s"),
        "#   conn_rate:".to_owned(),
        "#   http_req_rate:".to_owned(),
        "#   conn_cur:".to_owned(),
        format!("#   table_size: {DEFAULT_RATE_TABLE_SIZE}"),
        format!("#   reply: {DEFAULT_RATE_REPLY}"),
        format!("{}..={}", RATE_LIMIT_RANGE.start(), RATE_LIMIT_RANGE.end()),
        format!(
            "{}..={}",
            RATE_TABLE_SIZE_RANGE.start(),
            RATE_TABLE_SIZE_RANGE.end()
        ),
        format!(
            "{}s..={}h",
            RATE_PERIOD_RANGE.start().as_secs(),
            RATE_PERIOD_RANGE.end().as_secs() / 3600
        ),
    ] {
        assert!(doc.contains(&text), "reference.yaml lacks {text:?}");
    }
}
