//! The stats page's access log in the real agent (`stats.log`): each
//! request is one HAProxy httplog line, named as HAProxy names its stats
//! (`admin_status admin_status/<STATS>`, `LR--`), sent at `info`, so that a
//! target at `err` (the seed's `log 127.0.0.1 local0 err`) takes none of
//! them. Needs root.

use lb_tests::stats::{ADMIN, StatsLab, URI, stats_section};
use lb_tests::syslog::{next_line, receiver};

/// The line's fields after the syslog header, the date left out.
fn fields(line: &str) -> Vec<String> {
    let (_, fields) = line.split_once(": ").expect("a `lb[pid]: ` tag");
    let mut w: Vec<String> = fields.trim_end().split(' ').map(str::to_owned).collect();
    assert!(w[1].starts_with('['), "{line}");
    w.remove(1);
    w
}

#[test]
fn page_views_are_info_lines_an_err_target_never_takes() {
    let lab = StatsLab::lab().unwrap();
    let rx = receiver(&lab.lb().ns);
    let port = rx.local_addr().unwrap().port();
    // Both targets send to the one socket, the `err` one first: a line it
    // took would come before the `info` target's copy of it.
    let stats = format!(
        "{}  name: admin_status
  log:
    - {{address: \"127.0.0.1:{port}\", facility: local1, level: err}}
    - {{address: \"127.0.0.1:{port}\", facility: local0, level: info}}
",
        stats_section()
    );
    let s = StatsLab::start_in(lab, &stats).unwrap();
    let client = s.lab.client().ip(false).to_string();
    // A view, a view without credentials, and last a path outside the
    // page: every line up to the last one's has come when it has.
    assert_eq!(s.get(URI, Some(ADMIN)).status, 200);
    assert_eq!(s.get(URI, None).status, 401);
    assert_eq!(s.get("/elsewhere", Some(ADMIN)).status, 404);
    let lines: Vec<String> = (0..3).map(|_| next_line(&rx)).collect();
    for line in &lines {
        // local0 (16) * 8 + info (6); local1.err would be <139>.
        assert!(line.starts_with("<134>"), "{lines:#?}");
    }
    let want = [
        (
            "admin_status/<STATS>",
            "200",
            "GET /haproxy-status HTTP/1.1",
        ),
        (
            "admin_status/<STATS>",
            "401",
            "GET /haproxy-status HTTP/1.1",
        ),
        ("admin_status/<NOSRV>", "404", "GET /elsewhere HTTP/1.1"),
    ];
    for (line, (server, status, request)) in lines.iter().zip(want) {
        let w = fields(line);
        assert!(w[0].starts_with(&format!("{client}:")), "{line}");
        assert_eq!(
            (w[1].as_str(), w[2].as_str()),
            ("admin_status", server),
            "{line}"
        );
        assert_eq!(w[4], status, "{line}");
        assert_eq!(&w[6..9], ["-", "-", "LR--"], "{line}");
        assert!(
            line.trim_end().ends_with(&format!("\"{request}\"")),
            "{line}"
        );
    }
    let bytes: u64 = fields(&lines[0])[5].parse().unwrap();
    assert!(bytes > 1000, "the page's head and body: {}", lines[0]);
}
