//! ACLs against HAProxy 2.6: each case's expected verdict is what Debian's
//! haproxy 2.6.12 decided for the same ACL line and request.

use std::net::IpAddr;

use hyper::http::request::Parts;
use hyper::http::{Method, Version};
use lb_config::proxy::{Acl, AclRef, AclTest, AclUse, Condition, Fetch, Matcher};

use super::{Acls, View};
use crate::servers::testing::allocations;

fn matcher(name: &str) -> Matcher {
    match name {
        "str" => Matcher::Str,
        "beg" => Matcher::Beg,
        "end" => Matcher::End,
        "sub" => Matcher::Sub,
        "dir" => Matcher::Dir,
        "dom" => Matcher::Dom,
        "reg" => Matcher::Reg,
        "ip" => Matcher::Ip,
        "found" => Matcher::Found,
        other => panic!("match method {other}"),
    }
}

/// An ACL line in HAProxy's syntax: `FETCH[_MATCH] [-i] [-m MATCH] VALUE…`.
fn line(text: &str) -> AclTest {
    let mut words = text.split(' ');
    let kw = words.next().unwrap_or_default();
    let (fetch_kw, arg) = match kw.split_once('(') {
        Some((f, rest)) => (f, Some(rest.trim_end_matches(')').to_string())),
        None => (kw, None),
    };
    let (base, suffix) = match fetch_kw.rsplit_once('_') {
        Some((b, s)) if ["beg", "end", "sub", "dir", "dom", "reg"].contains(&s) => (b, Some(s)),
        _ => (fetch_kw, None),
    };
    let fetch = match (base, arg) {
        ("path", _) => Fetch::Path,
        ("url", _) => Fetch::Url,
        ("url_param", Some(a)) => Fetch::UrlParam(a),
        ("hdr", Some(a)) => Fetch::Hdr(a.to_ascii_lowercase()),
        ("method", _) => Fetch::Method,
        ("src", _) => Fetch::Src,
        ("req.ver", _) => Fetch::ReqVer,
        other => panic!("fetch {other:?}"),
    };
    let mut matcher = match (suffix, &fetch) {
        (Some(s), _) => matcher(s),
        (None, Fetch::Src) => Matcher::Ip,
        (None, _) => Matcher::Str,
    };
    let (mut ignore_case, mut values) = (false, Vec::new());
    while let Some(w) = words.next() {
        match w {
            "-i" => ignore_case = true,
            "-m" => matcher = self::matcher(words.next().unwrap()),
            v => values.push(v.to_string()),
        }
    }
    AclTest {
        fetch,
        matcher,
        ignore_case,
        values,
        at: "test:1:1".into(),
    }
}

fn acl(name: &str, lines: &[&str]) -> Acl {
    Acl {
        name: name.into(),
        tests: lines.iter().map(|l| line(l)).collect(),
    }
}

struct Req {
    method: &'static str,
    target: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    version: Version,
    src: &'static str,
}

fn get(target: &'static str) -> Req {
    Req {
        method: "GET",
        target,
        headers: vec![],
        version: Version::HTTP_11,
        src: "127.0.0.1",
    }
}

impl Req {
    fn header(mut self, name: &'static str, value: &'static str) -> Req {
        self.headers.push((name, value));
        self
    }

    fn head(&self) -> Parts {
        let mut b = hyper::Request::builder()
            .method(Method::from_bytes(self.method.as_bytes()).unwrap())
            .uri(self.target)
            .version(self.version);
        for (n, v) in &self.headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }
}

/// Whether the ACL made of `lines` matches `req`.
fn matches(lines: &[&str], req: &Req) -> bool {
    let acls = Acls::compile(&[acl("a", lines)]);
    let cond = acls.condition(&Condition {
        unless: false,
        any: vec![vec![AclRef {
            negated: false,
            acl: AclUse::Named(0),
        }]],
    });
    let head = req.head();
    let src: IpAddr = req.src.parse().unwrap();
    acls.holds(&cond, &View::new(&head, src))
}

fn check(lines: &[&str], cases: &[(Req, bool)]) {
    for (req, want) in cases {
        assert_eq!(
            matches(lines, req),
            *want,
            "{lines:?} on {} {} {:?} from {}",
            req.method,
            req.target,
            req.headers,
            req.src
        );
    }
}

const URL_STATIC: [&str; 2] = [
    "path_beg -i /static /images /javascript /stylesheets",
    "path_end -i .jpg .gif .png .css .js",
];

#[test]
fn the_seeds_url_static() {
    check(
        &URL_STATIC,
        &[
            (get("/static/x"), true),
            (get("/STATIC/x"), true),
            (get("/a/b.JS"), true),
            (get("/images"), true),
            (get("/img/x.png?v=2"), true),
            (get("/index.html"), false),
            (get("/x.js/y"), false),
            (get("http://example.com/static/a"), true),
        ],
    );
    check(
        &["path_beg /Static"],
        &[(get("/Static"), true), (get("/static"), false)],
    );
}

#[test]
fn hdr_equality_and_domains() {
    let host = |h| get("/").header("host", h);
    check(
        &["hdr(host) example.com"],
        &[
            (host("example.com"), true),
            (host("example.com:8080"), false),
            (host("EXAMPLE.com"), false),
        ],
    );
    check(
        &["hdr(Host) -i EXAMPLE.com"],
        &[
            (host("example.com"), true),
            (host("www.example.com"), false),
        ],
    );
    check(
        &["hdr_dom(host) example.com"],
        &[
            (host("example.com"), true),
            (host("example.com:8080"), true),
            (host("www.example.com"), true),
            (host("WWW.EXAMPLE.COM"), false),
            (host("notexample.com"), false),
            (host("example.com.evil"), true),
            (get("/"), false),
        ],
    );
    check(
        &["hdr_dom(host) -i Example.COM"],
        &[(host("WWW.EXAMPLE.COM"), true)],
    );
}

#[test]
fn hdr_tests_every_value_of_every_line() {
    let two_lines = get("/").header("x-f", "a, b ,c").header("x-f", "xyz");
    check(&["hdr(x-f) b"], &[(two_lines, true)]);
    check(
        &["hdr_end(x-f) z"],
        &[(get("/").header("x-f", "a, b ,c").header("x-f", "xyz"), true)],
    );
    let quoted = || get("/").header("x-f", "\"b,z\", q");
    check(&["hdr(x-f) b"], &[(quoted(), false)]);
    check(&["hdr_end(x-f) z"], &[(quoted(), false)]);
    check(&["hdr_beg(x-f) q"], &[(quoted(), true)]);
    check(
        &["hdr(x-f) -m found"],
        &[(get("/").header("x-f", ""), true), (get("/"), false)],
    );
}

#[test]
fn dir_matches_whole_path_segments() {
    check(
        &["path_dir api"],
        &[
            (get("/api/v1/users"), true),
            (get("/apis/v1"), false),
            (get("/api?x"), true),
            (get("/x/API"), false),
        ],
    );
    check(
        &["path_dir /api/v1/"],
        &[(get("/api/v1/users"), true), (get("/v1/api"), false)],
    );
    check(
        &["path_dir -i API"],
        &[(get("/x/API"), true), (get("/x/api"), true)],
    );
}

#[test]
fn sub_and_reg() {
    check(
        &["path_sub adm"],
        &[(get("/admin"), true), (get("/ADMIN"), false)],
    );
    check(
        &["path_sub -i ADM"],
        &[
            (get("/ADMIN"), true),
            (get("/admin"), true),
            (get("/ad"), false),
        ],
    );
    check(
        &["path_reg ^/[0-9]+$"],
        &[(get("/123"), true), (get("/123/"), false)],
    );
    check(
        &["path_reg -i ^/abc"],
        &[(get("/ABCd"), true), (get("/xabc"), false)],
    );
    check(
        &["path_reg ^/a x$"],
        &[(get("/a"), true), (get("/bx"), true), (get("/b"), false)],
    );
}

#[test]
fn method_knows_eight_methods_by_identity() {
    let with = |m: &'static str| Req {
        method: m,
        ..get("/")
    };
    check(
        &["method GET"],
        &[
            (with("GET"), true),
            (with("get"), false),
            (with("PUT"), false),
        ],
    );
    // `get` is not a method HAProxy knows: compared as text, so only
    // against methods it does not know either.
    check(
        &["method -i get"],
        &[(with("get"), true), (with("GET"), false)],
    );
    check(
        &["method PATCH"],
        &[(with("PATCH"), true), (with("patch"), false)],
    );
    check(
        &["method -i patch"],
        &[(with("PATCH"), true), (with("patch"), true)],
    );
    check(
        &["method GET HEAD"],
        &[(with("HEAD"), true), (with("POST"), false)],
    );
}

#[test]
fn url_param_tests_every_occurrence() {
    check(
        &["url_param(u) -m str x"],
        &[
            (get("/?u=x"), true),
            (get("/?a=1;u=x"), true),
            (get("/?a=1&u=yz&u=x"), true),
            (get("/?a=1?u=x"), true),
            (get("/?u="), false),
            (get("/?uu=x"), false),
            (get("/u=x"), false),
        ],
    );
    check(
        &["url_param(u) -m found"],
        &[
            (get("/?u="), true),
            (get("/?uu=x"), false),
            (get("/"), false),
        ],
    );
    check(&["url_param(u) -m beg y"], &[(get("/?a=1&u=yz&u=x"), true)]);
}

#[test]
fn url_is_the_whole_target() {
    check(
        &["url_beg /static"],
        &[(get("/static?q=1"), true), (get("/x/static"), false)],
    );
    check(
        &["url_sub ?q="],
        &[(get("/static?q=1"), true), (get("/static"), false)],
    );
    check(
        &["url http://h.example/p?x=1"],
        &[(get("http://h.example/p?x=1"), true)],
    );
}

#[test]
fn path_absent_for_asterisk_and_authority_forms() {
    let options = Req {
        method: "OPTIONS",
        ..get("*")
    };
    let connect = Req {
        method: "CONNECT",
        ..get("example.com:443")
    };
    check(
        &["path -m found"],
        &[(get("/"), true), (options, false), (connect, false)],
    );
    check(
        &["path /exact"],
        &[(get("/exact?x"), true), (get("/exact/"), false)],
    );
}

#[test]
fn src_across_families() {
    let from = |src: &'static str| Req { src, ..get("/") };
    check(
        &["src 127.0.0.0/8"],
        &[
            (from("127.0.0.1"), true),
            (from("::1"), false),
            (from("::ffff:127.1.2.3"), true),
        ],
    );
    check(
        &["src 10.0.0.0/8"],
        &[
            (from("127.0.0.1"), false),
            (from("2002:0a01:0203::9"), true),
        ],
    );
    check(
        &["src ::1"],
        &[(from("::1"), true), (from("127.0.0.1"), false)],
    );
    // An IPv4 client matches IPv6 networks as ::ffff:a.b.c.d …
    // (an IPv4-mapped network is refused by the configuration: write IPv4).
    check(
        &["src ::/0"],
        &[(from("127.0.0.1"), true), (from("::1"), true)],
    );
    // … and HAProxy reads ::1 as the IPv4-compatible 0.0.0.1.
    check(
        &["src 0.0.0.0/0"],
        &[(from("::1"), true), (from("2001:db8::1"), false)],
    );
}

#[test]
fn many_values_are_indexed_and_still_exact() {
    let values: Vec<String> = (0..500).map(|i| format!("/p{i}/")).collect();
    let beg = format!("path_beg -i {}", values.join(" "));
    check(
        &[&beg],
        &[
            (get("/P42/x"), true),
            (get("/p499/"), true),
            (get("/p500/"), false),
            (get("/p4"), false),
        ],
    );
    let end = format!("path_end {}", values.join(" "));
    check(&[&end], &[(get("/x/p42/"), true), (get("/x/P42/"), false)]);
    let eq = format!("path {}", values.join(" "));
    check(&[&eq], &[(get("/p7/"), true), (get("/p7/x"), false)]);
    let nets: Vec<String> = (0..200).map(|i| format!("10.{i}.0.0/16")).collect();
    let src = format!("src {} 192.0.2.7", nets.join(" "));
    let from = |src: &'static str| Req { src, ..get("/") };
    check(
        &[&src],
        &[
            (from("10.199.3.4"), true),
            (from("10.200.0.1"), false),
            (from("192.0.2.7"), true),
            (from("192.0.2.8"), false),
        ],
    );
}

#[test]
fn req_ver() {
    let v = |version| Req {
        version,
        ..get("/")
    };
    check(
        &["req.ver 1.1"],
        &[(v(Version::HTTP_11), true), (v(Version::HTTP_10), false)],
    );
    check(&["req.ver 1.0"], &[(v(Version::HTTP_10), true)]);
}

/// Conditions over ACLs `static` (the seed's) and `get` (`method GET`).
fn holds(cond: &str, req: &Req) -> bool {
    let acls = Acls::compile(&[acl("static", &URL_STATIC), acl("get", &["method GET"])]);
    let (unless, expr) = match cond.split_once(' ') {
        Some(("unless", e)) => (true, e),
        Some(("if", e)) => (false, e),
        _ => panic!("{cond}"),
    };
    let any = expr
        .split(" || ")
        .map(|all| {
            all.split(' ')
                .map(|w| {
                    let (negated, name) = w.strip_prefix('!').map_or((false, w), |n| (true, n));
                    let acl = match name {
                        "static" => AclUse::Named(0),
                        "get" => AclUse::Named(1),
                        "TRUE" => AclUse::Always(true),
                        "FALSE" => AclUse::Always(false),
                        inline => AclUse::Inline(line(&inline.replace('+', " "))),
                    };
                    AclRef { negated, acl }
                })
                .collect()
        })
        .collect();
    let c = acls.condition(&Condition { unless, any });
    let head = req.head();
    acls.holds(&c, &View::new(&head, "127.0.0.1".parse().unwrap()))
}

#[test]
fn conditions_and_or_not_unless() {
    let put = |t| Req {
        method: "PUT",
        ..get(t)
    };
    let cases = [
        ("if static get", get("/static/x"), true),
        ("if static get", put("/static/x"), false),
        ("if !static get", get("/"), true),
        ("if !static get", get("/a.css"), false),
        ("unless static", get("/"), true),
        ("unless static", get("/a.css"), false),
        ("if FALSE || get", get("/"), true),
        ("if FALSE || !get", get("/"), false),
        ("if static || !get", put("/"), true),
        ("if TRUE !TRUE", get("/"), false),
        ("if path_end+-i+.HTML || static", get("/x.html"), true),
    ];
    for (cond, req, want) in cases {
        assert_eq!(
            holds(cond, &req),
            want,
            "{cond} on {} {}",
            req.method,
            req.target
        );
    }
}

#[test]
fn a_line_that_cannot_compile_matches_nothing() {
    let bad = AclTest {
        fetch: Fetch::Path,
        matcher: Matcher::Reg,
        ignore_case: false,
        values: vec!["(".into()],
        at: "x:1:1".into(),
    };
    let acls = Acls::compile(&[Acl {
        name: "bad".into(),
        tests: vec![bad],
    }]);
    let c = acls.condition(&Condition {
        unless: true,
        any: vec![vec![AclRef {
            negated: false,
            acl: AclUse::Named(0),
        }]],
    });
    let head = get("/(").head();
    assert!(acls.holds(&c, &View::new(&head, "127.0.0.1".parse().unwrap())));
}

#[test]
fn the_seeds_acls_allocate_nothing() {
    let acls = Acls::compile(&[acl("url_static", &URL_STATIC)]);
    let cond = acls.condition(&Condition {
        unless: false,
        any: vec![vec![AclRef {
            negated: false,
            acl: AclUse::Named(0),
        }]],
    });
    let heads = [
        get("/index.html?x=1").header("host", "example.com").head(),
        get("/static/app.js").head(),
    ];
    let src: IpAddr = "192.0.2.1".parse().unwrap();
    let mut seen = Vec::with_capacity(2);
    let n = allocations(|| {
        for head in &heads {
            seen.push(acls.holds(&cond, &View::new(head, src)));
        }
    });
    assert_eq!((n, seen), (0, vec![false, true]));
}
