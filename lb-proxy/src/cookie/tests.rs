//! Cookie rules against HAProxy 2.6: the expected headers are those Debian's
//! haproxy 2.6.12 sent to the servers and the clients for the same requests.

use hyper::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lb_config::proxy::{CookieConfig, CookieMode};

use super::{CookieRules, Persisted, Reply, SetCookie};
use crate::servers::testing::{allocations, spec};
use crate::servers::{ServerId, ServerSpec, ServerState, Servers};

fn rules(name: &str, mode: CookieMode, flags: &str) -> CookieRules {
    CookieRules::new(&CookieConfig {
        name: name.into(),
        mode,
        indirect: flags.contains("indirect"),
        nocache: flags.contains("nocache"),
        httponly: flags.contains("httponly"),
        secure: flags.contains("secure"),
    })
}

/// s1, s2, s3 with cookies c1, c2, c3, and s4 without one.
fn servers(states: &[ServerState]) -> Servers {
    let specs: Vec<ServerSpec> = (1..=4)
        .map(|i| ServerSpec {
            cookie: (i < 4).then(|| format!("c{i}")),
            state: states.get(i - 1).copied().unwrap_or(ServerState::Up),
            ..spec(&format!("s{i}"), 1)
        })
        .collect();
    Servers::build(&specs, None)
}

fn id(n: usize) -> ServerId {
    ServerId::at(n - 1)
}

fn cookies(lines: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for l in lines {
        h.append(header::COOKIE, HeaderValue::from_str(l).unwrap());
    }
    h
}

fn lines(h: &HeaderMap, name: header::HeaderName) -> Vec<String> {
    h.get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The request side: what persistence says and the `Cookie` lines left.
fn request(r: &CookieRules, set: &Servers, sent: &[&str]) -> (Persisted, Vec<String>) {
    let mut h = cookies(sent);
    let p = r.on_request(&mut h, set);
    (p, lines(&h, header::COOKIE))
}

#[test]
fn insert_indirect_reads_and_removes_our_cookie() {
    let r = rules("SERVERID", CookieMode::Insert, "indirect nocache");
    let set = servers(&[ServerState::Up, ServerState::Up, ServerState::Down]);
    let cases: [(&[&str], Persisted, &[&str]); 9] = [
        (&[], Persisted::No, &[]),
        (&["SERVERID=c1"], Persisted::To(id(1)), &[]),
        (
            &["a=1; SERVERID=c1; b=2"],
            Persisted::To(id(1)),
            &["a=1; b=2"],
        ),
        (&["SERVERID=c3"], Persisted::Down(id(3)), &[]),
        (&["SERVERID=c9"], Persisted::Invalid, &[]),
        (
            &["SERVERID=c3", "x=1; SERVERID=c2"],
            Persisted::To(id(2)),
            &["x=1"],
        ),
        (&["SERVERID=\"c2\""], Persisted::Invalid, &[]),
        (
            &["a = 1 ;  SERVERID = c2 ; b=2"],
            Persisted::To(id(2)),
            &["a=1; b=2"],
        ),
        (
            &["SERVERID=c1; $Path=/; a=1"],
            Persisted::To(id(1)),
            &["a=1"],
        ),
    ];
    for (sent, persisted, left) in cases {
        assert_eq!(
            request(&r, &set, sent),
            (persisted, left.iter().map(|s| s.to_string()).collect()),
            "{sent:?}"
        );
    }
}

#[test]
fn a_request_without_our_cookie_is_left_as_it_is() {
    let r = rules("SERVERID", CookieMode::Insert, "indirect");
    let set = servers(&[]);
    let sent = ["a = 1 ; b=2", "c=3"];
    assert_eq!(
        request(&r, &set, &sent),
        (Persisted::No, sent.iter().map(|s| s.to_string()).collect())
    );
}

#[test]
fn read_insert_and_rewrite_keep_the_cookie_in_the_request() {
    let set = servers(&[]);
    for (mode, flags) in [
        (CookieMode::Read, ""),
        (CookieMode::Read, "indirect"),
        (CookieMode::Insert, ""),
        (CookieMode::Rewrite, ""),
    ] {
        let r = rules("SERVERID", mode, flags);
        let sent = ["SERVERID=c1; $Path=/; a=1"];
        assert_eq!(
            request(&r, &set, &sent),
            (Persisted::To(id(1)), vec![sent[0].to_string()]),
            "{mode:?} {flags}"
        );
    }
}

#[test]
fn persistence_honours_running_servers_only() {
    let r = rules("SERVERID", CookieMode::Read, "");
    let cases = [
        (ServerState::Up, Persisted::To(id(1))),
        (ServerState::Drain, Persisted::To(id(1))),
        (ServerState::Down, Persisted::Down(id(1))),
        (ServerState::Maint, Persisted::Down(id(1))),
    ];
    for (state, want) in cases {
        assert_eq!(
            request(&r, &servers(&[state]), &["SERVERID=c1"]).0,
            want,
            "{state:?}"
        );
    }
    // Weight 0 is still running: its sticky clients stay.
    let mut specs: Vec<ServerSpec> = vec![ServerSpec {
        cookie: Some("c1".into()),
        ..spec("s1", 0)
    }];
    specs.push(spec("s2", 1));
    let set = Servers::build(&specs, None);
    assert_eq!(request(&r, &set, &["SERVERID=c1"]).0, Persisted::To(id(1)));
}

#[test]
fn a_shared_cookie_value_goes_to_the_first_running_server() {
    let specs: Vec<ServerSpec> = ["a", "b", "c"]
        .iter()
        .map(|n| ServerSpec {
            cookie: Some("shared".into()),
            ..spec(n, 1)
        })
        .collect();
    let r = rules("SERVERID", CookieMode::Read, "");
    assert_eq!(
        request(&r, &Servers::build(&specs, None), &["SERVERID=shared"]).0,
        Persisted::To(id(1))
    );
    let mut specs = specs;
    specs[0].state = ServerState::Down;
    assert_eq!(
        request(&r, &Servers::build(&specs, None), &["SERVERID=shared"]).0,
        Persisted::To(id(2))
    );
}

#[test]
fn cookie_syntax_variants() {
    let r = rules("SERVERID", CookieMode::Read, "");
    let set = servers(&[]);
    let cases: [(&str, Persisted); 8] = [
        ("a=1, SERVERID=c2", Persisted::To(id(2))),
        ("SERVERID=c1|AbCdE|FgHiJ", Persisted::To(id(1))),
        ("SERVERID=", Persisted::Invalid),
        ("SERVERID", Persisted::No),
        ("serverid=c1", Persisted::No),
        ("XSERVERID=c1; SERVERIDX=c2", Persisted::No),
        ("q=\"x;SERVERID=c1\"; SERVERID=c3", Persisted::To(id(3))),
        ("SERVERID=c9; SERVERID=c2", Persisted::To(id(2))),
    ];
    for (line, want) in cases {
        assert_eq!(request(&r, &set, &[line]).0, want, "{line}");
    }
}

#[test]
fn prefix_strips_the_crumb_from_the_application_cookie() {
    let r = rules("JSESSIONID", CookieMode::Prefix, "");
    let set = servers(&[]);
    let cases: [(&str, Persisted, &str); 4] = [
        (
            "JSESSIONID=c2~abc123; x=1",
            Persisted::To(id(2)),
            "JSESSIONID=abc123; x=1",
        ),
        ("JSESSIONID=abc123", Persisted::Invalid, "JSESSIONID=abc123"),
        ("JSESSIONID=c9~zzz", Persisted::Invalid, "JSESSIONID=zzz"),
        (
            "a=b; JSESSIONID=c1~x~y",
            Persisted::To(id(1)),
            "a=b; JSESSIONID=x~y",
        ),
    ];
    for (line, persisted, left) in cases {
        assert_eq!(
            request(&r, &set, &[line]),
            (persisted, vec![left.to_string()]),
            "{line}"
        );
    }
}

/// The response side: the `Set-Cookie` and `Cache-Control` lines after the rules.
fn respond(
    r: &CookieRules,
    set: &Servers,
    server: usize,
    direct: bool,
    method: Method,
    status: u16,
    sent: &[(&str, &str)],
) -> Vec<String> {
    respond_done(r, set, server, direct, method, status, sent).1
}

/// [`respond`], and what the rules say they did.
fn respond_done(
    r: &CookieRules,
    set: &Servers,
    server: usize,
    direct: bool,
    method: Method,
    status: u16,
    sent: &[(&str, &str)],
) -> (SetCookie, Vec<String>) {
    let mut h = HeaderMap::new();
    for (n, v) in sent {
        h.append(
            header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let reply = Reply {
        server: set.get(id(server)).unwrap(),
        direct,
        method: &method,
        status: StatusCode::from_u16(status).unwrap(),
    };
    let done = r.on_response(reply, &mut h);
    let mut out: Vec<String> = lines(&h, header::SET_COOKIE)
        .into_iter()
        .map(|l| format!("set-cookie: {l}"))
        .collect();
    out.extend(
        lines(&h, header::CACHE_CONTROL)
            .into_iter()
            .map(|l| format!("cache-control: {l}")),
    );
    (done, out)
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn insert_sets_the_cookie_unless_the_request_came_by_it() {
    let set = servers(&[]);
    let r = rules("SERVERID", CookieMode::Insert, "indirect");
    assert_eq!(
        respond(&r, &set, 2, false, Method::GET, 200, &[]),
        strings(&["set-cookie: SERVERID=c2; path=/"])
    );
    assert!(respond(&r, &set, 2, true, Method::GET, 200, &[]).is_empty());
    let r = rules("SERVERID", CookieMode::Insert, "httponly secure");
    assert_eq!(
        respond(&r, &set, 1, false, Method::POST, 500, &[]),
        strings(&["set-cookie: SERVERID=c1; path=/; HttpOnly; Secure"])
    );
}

#[test]
fn a_server_without_cookie_value_leaves_the_client_cookie_alone() {
    // HAProxy 2.6 would send `SERVERID=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/`.
    let r = rules("SERVERID", CookieMode::Insert, "indirect nocache");
    assert!(
        respond(
            &r,
            &servers(&[]),
            4,
            false,
            Method::GET,
            200,
            &[("etag", "x")]
        )
        .is_empty()
    );
}

#[test]
fn insert_replaces_the_application_cookie_of_our_name() {
    let set = servers(&[]);
    let r = rules("SERVERID", CookieMode::Insert, "indirect nocache");
    let app = [
        ("set-cookie", "SERVERID=app; path=/"),
        ("set-cookie", "other=1"),
    ];
    assert_eq!(
        respond(&r, &set, 3, false, Method::GET, 200, &app),
        strings(&["set-cookie: other=1", "set-cookie: SERVERID=c3; path=/"])
    );
    assert_eq!(
        respond(&r, &set, 1, true, Method::GET, 200, &app),
        strings(&["set-cookie: other=1"])
    );
}

#[test]
fn rewrite_and_prefix_change_the_application_cookie() {
    let set = servers(&[]);
    let r = rules("SERVERID", CookieMode::Rewrite, "");
    let app = [
        ("set-cookie", "SERVERID=app; path=/"),
        ("set-cookie", "other=1"),
    ];
    let want = strings(&["set-cookie: SERVERID=c1; path=/", "set-cookie: other=1"]);
    assert_eq!(respond(&r, &set, 1, false, Method::GET, 200, &app), want);
    assert_eq!(respond(&r, &set, 1, true, Method::GET, 200, &app), want);

    let app = [("set-cookie", "JSESSIONID=abc123; path=/; HttpOnly")];
    let r = rules("JSESSIONID", CookieMode::Prefix, "");
    let want = strings(&["set-cookie: JSESSIONID=c2~abc123; path=/; HttpOnly"]);
    assert_eq!(respond(&r, &set, 2, false, Method::GET, 200, &app), want);
    assert_eq!(respond(&r, &set, 2, true, Method::GET, 200, &app), want);
    // With `indirect`, a client that came by its cookie already has it.
    let r = rules("JSESSIONID", CookieMode::Prefix, "indirect");
    assert!(respond(&r, &set, 2, true, Method::GET, 200, &app).is_empty());
    // A server without a value leaves the cookie as the application set it.
    assert_eq!(
        respond(&r, &set, 4, false, Method::GET, 200, &app),
        strings(&["set-cookie: JSESSIONID=abc123; path=/; HttpOnly"])
    );
}

#[test]
fn read_mode_only_drops_the_application_cookie_for_direct_indirect_requests() {
    let set = servers(&[]);
    let app = [
        ("set-cookie", "SERVERID=app; path=/"),
        ("set-cookie", "other=1"),
    ];
    let r = rules("SERVERID", CookieMode::Read, "indirect");
    assert_eq!(
        respond(&r, &set, 1, false, Method::GET, 200, &app),
        strings(&["set-cookie: SERVERID=app; path=/", "set-cookie: other=1"])
    );
    assert_eq!(
        respond(&r, &set, 1, true, Method::GET, 200, &app),
        strings(&["set-cookie: other=1"])
    );
    let r = rules("SERVERID", CookieMode::Read, "");
    assert_eq!(respond(&r, &set, 1, true, Method::GET, 200, &app).len(), 2);
}

#[test]
fn interim_responses_are_left_alone() {
    let r = rules("SERVERID", CookieMode::Insert, "indirect");
    assert!(respond(&r, &servers(&[]), 1, false, Method::GET, 100, &[]).is_empty());
}

/// `nocache`: whether a response gets `Cache-Control: private` when the
/// cookie is inserted, recorded with haproxy 2.6.12: (method, status,
/// response headers, private).
type Case = (Method, u16, &'static [(&'static str, &'static str)], bool);
const NOCACHE_CASES: [Case; 19] = [
    (Method::GET, 200, &[], false),
    (
        Method::GET,
        200,
        &[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")],
        true,
    ),
    (
        Method::GET,
        200,
        &[("expires", "Wed, 21 Oct 2015 07:28:00 GMT")],
        true,
    ),
    (Method::GET, 200, &[("etag", "x")], true),
    (Method::HEAD, 200, &[("etag", "x")], true),
    (Method::OPTIONS, 200, &[("etag", "x")], true),
    (Method::PUT, 200, &[("etag", "x")], false),
    (Method::GET, 404, &[("etag", "x")], true),
    (Method::GET, 302, &[("etag", "x")], false),
    (Method::GET, 500, &[("etag", "x")], false),
    (
        Method::GET,
        500,
        &[("cache-control", "public,max-age=5")],
        true,
    ),
    (
        Method::POST,
        200,
        &[("cache-control", "public,max-age=5")],
        true,
    ),
    (Method::GET, 200, &[("cache-control", "public")], false),
    (Method::GET, 200, &[("cache-control", "max-age=0")], false),
    (
        Method::GET,
        200,
        &[("cache-control", "max-age=0,s-maxage=10")],
        false,
    ),
    (
        Method::GET,
        200,
        &[("cache-control", "no-cache=\"set-cookie\",max-age=5")],
        true,
    ),
    (
        Method::GET,
        200,
        &[("cache-control", "private=\"x\",max-age=5")],
        true,
    ),
    (
        Method::GET,
        200,
        &[("cache-control", "no-store,public,max-age=5")],
        true,
    ),
    (
        Method::GET,
        200,
        &[("cache-control", "max-age=5"), ("pragma", "no-cache")],
        false,
    ),
];

#[test]
fn nocache_marks_only_cacheable_responses_private() {
    let set = servers(&[]);
    let r = rules("SERVERID", CookieMode::Insert, "indirect nocache");
    let private = |method: Method, status: u16, headers: &[(&str, &str)]| {
        respond(&r, &set, 1, false, method, status, headers)
            .contains(&"cache-control: private".to_string())
    };
    for (method, status, headers, want) in NOCACHE_CASES {
        assert_eq!(
            private(method.clone(), status, headers),
            want,
            "{method} {status} {headers:?}"
        );
    }
    let r = rules("SERVERID", CookieMode::Insert, "indirect");
    assert!(
        !respond(&r, &set, 1, false, Method::GET, 200, &[("etag", "x")])
            .iter()
            .any(|l| l.starts_with("cache-control"))
    );
}

#[test]
fn a_request_without_our_cookie_allocates_nothing() {
    let r = rules("SERVERID", CookieMode::Insert, "indirect");
    let set = servers(&[]);
    let mut h = cookies(&["a=1; b=\"x;y\"", "c=3"]);
    let mut seen = Persisted::To(id(1));
    assert_eq!(allocations(|| seen = r.on_request(&mut h, &set)), 0);
    assert_eq!(seen, Persisted::No);
    // Read mode never edits: a found cookie allocates nothing either.
    let r = rules("SERVERID", CookieMode::Read, "");
    let mut h = cookies(&["a=1; SERVERID=c2"]);
    assert_eq!(allocations(|| seen = r.on_request(&mut h, &set)), 0);
    assert_eq!(seen, Persisted::To(id(2)));
}

#[test]
fn a_cookie_naming_no_server_is_invalid_unless_another_names_a_down_one() {
    let r = rules("SERVERID", CookieMode::Read, "");
    let set = servers(&[ServerState::Up, ServerState::Up, ServerState::Down]);
    for (sent, want) in [
        (&["SERVERID=c9; SERVERID=c3"][..], Persisted::Down(id(3))),
        (&["SERVERID=c3", "SERVERID=c9"][..], Persisted::Down(id(3))),
        (&["SERVERID=c9; SERVERID="][..], Persisted::Invalid),
        (
            &["SERVERID=c3; SERVERID=c9; SERVERID=c1"][..],
            Persisted::To(id(1)),
        ),
    ] {
        assert_eq!(request(&r, &set, sent).0, want, "{sent:?}");
    }
}

/// What HAProxy 2.6 logs as the fourth termination-state letter for the
/// same exchanges (`I`, `N`, `D`, `P`, `R`).
#[test]
fn the_response_side_says_what_it_did() {
    let set = servers(&[]);
    let app = [("set-cookie", "SERVERID=app; path=/")];
    let session = [("set-cookie", "JSESSIONID=abc; path=/")];
    let insert = rules("SERVERID", CookieMode::Insert, "indirect");
    let read = rules("SERVERID", CookieMode::Read, "");
    let read_indirect = rules("SERVERID", CookieMode::Read, "indirect");
    let rewrite = rules("SERVERID", CookieMode::Rewrite, "");
    let prefix = rules("JSESSIONID", CookieMode::Prefix, "");
    type Sent<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&CookieRules, usize, bool, Sent, SetCookie); 11] = [
        // A first visit, then the next one by the cookie: `NI`, then `VN`.
        (&insert, 2, false, &[], SetCookie::Inserted),
        (&insert, 2, true, &[], SetCookie::None),
        // The server's own is replaced (still `I`), or just removed.
        (&insert, 2, false, &app, SetCookie::Inserted),
        (&insert, 2, true, &app, SetCookie::Deleted),
        // A server without a value: nothing set (HAProxy would expire it).
        (&insert, 4, false, &[], SetCookie::None),
        (&read, 1, false, &app, SetCookie::Provided),
        (&read_indirect, 1, true, &app, SetCookie::Deleted),
        (&rewrite, 1, false, &app, SetCookie::Rewritten),
        (&rewrite, 4, false, &app, SetCookie::Provided),
        (&prefix, 2, true, &session, SetCookie::Rewritten),
        (&prefix, 2, false, &[], SetCookie::None),
    ];
    for (i, (r, server, direct, sent, want)) in cases.into_iter().enumerate() {
        let (done, _) = respond_done(r, &set, server, direct, Method::GET, 200, sent);
        assert_eq!(done, want, "case {i}");
    }
    // An interim response is left alone.
    let (done, _) = respond_done(&insert, &set, 2, false, Method::GET, 100, &[]);
    assert_eq!(done, SetCookie::None);
}

#[test]
fn a_bare_read_cookie_is_left_out_of_the_log_as_in_haproxy() {
    assert!(!rules("SERVERID", CookieMode::Read, "").is_logged());
    for (mode, flags) in [
        (CookieMode::Read, "indirect"),
        (CookieMode::Insert, ""),
        (CookieMode::Rewrite, ""),
        (CookieMode::Prefix, ""),
    ] {
        assert!(
            rules("SERVERID", mode, flags).is_logged(),
            "{mode:?} {flags}"
        );
    }
}
