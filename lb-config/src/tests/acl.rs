//! ACL lines and conditions as HAProxy 2.6 reads them: every fetch and its
//! match suffixes, flags, quoting, `if`/`unless` with AND, `||`, `!`,
//! braces and the predefined ACLs.

use super::ok;
use crate::proxy::*;

/// A frontend with ACL `a` = `line` (a YAML single-quoted string) used by a
/// rule, and the ACL's one test.
fn acl_of(line: &str) -> AclTest {
    let text = format!(
        "frontends:\n  f:\n    bind: '*:8080'\n    acl: {{a: '{}'}}\n    http_request: [deny if a]\n    default_backend: p\npools:\n  p: {{backends: [{{address: 10.0.1.1, port: 80}}]}}\n",
        line.replace('\'', "''")
    );
    let c = ok(&text);
    let f = c.config.frontends.into_iter().next().expect("frontend");
    let mut acls = f.acls;
    assert_eq!(acls.len(), 1, "{line}");
    let mut tests = acls.remove(0).tests;
    assert_eq!(tests.len(), 1, "{line}");
    tests.remove(0)
}

#[test]
fn every_fetch_and_match_suffix() {
    use Fetch::*;
    use Matcher::*;
    let h = |n: &str| Hdr(n.into());
    let u = |n: &str| UrlParam(n.into());
    let cases: Vec<(&str, Fetch, Matcher, &[&str])> = vec![
        ("path /a", Path, Str, &["/a"]),
        (
            "path_beg /static /images",
            Path,
            Beg,
            &["/static", "/images"],
        ),
        ("path_end .jpg .css", Path, End, &[".jpg", ".css"]),
        ("path_sub admin", Path, Sub, &["admin"]),
        ("path_dir images", Path, Dir, &["images"]),
        ("path_dom example", Path, Dom, &["example"]),
        (r"path_reg ^/v\d+/", Path, Reg, &[r"^/v\d+/"]),
        ("url /index.html?x=1", Url, Str, &["/index.html?x=1"]),
        ("url_beg /", Url, Beg, &["/"]),
        ("url_end .php", Url, End, &[".php"]),
        ("url_sub debug", Url, Sub, &["debug"]),
        ("url_dir api", Url, Dir, &["api"]),
        ("url_dom example.com", Url, Dom, &["example.com"]),
        ("url_reg [?&]debug=", Url, Reg, &["[?&]debug="]),
        ("url_param(userid) 42", u("userid"), Str, &["42"]),
        ("urlp(userid) 42", u("userid"), Str, &["42"]),
        ("urlp_beg(id) 4", u("id"), Beg, &["4"]),
        ("urlp_end(id) 2", u("id"), End, &["2"]),
        ("urlp_sub(id) 3", u("id"), Sub, &["3"]),
        ("urlp_dir(p) a", u("p"), Dir, &["a"]),
        ("urlp_dom(p) a", u("p"), Dom, &["a"]),
        ("urlp_reg(id) ^[0-9]+$", u("id"), Reg, &["^[0-9]+$"]),
        (
            "hdr(Host) www.example.com",
            h("host"),
            Str,
            &["www.example.com"],
        ),
        ("req.hdr(host) a", h("host"), Str, &["a"]),
        ("hdr_beg(host) www.", h("host"), Beg, &["www."]),
        ("hdr_end(host) .com", h("host"), End, &[".com"]),
        ("hdr_sub(user-agent) curl", h("user-agent"), Sub, &["curl"]),
        ("hdr_dir(x-path) a", h("x-path"), Dir, &["a"]),
        (
            "hdr_dom(host) api.example.com",
            h("host"),
            Dom,
            &["api.example.com"],
        ),
        ("hdr_reg(host) ^api\\.", h("host"), Reg, &["^api\\."]),
        (
            "method GET POST PROPFIND",
            Method,
            Str,
            &["GET", "POST", "PROPFIND"],
        ),
        (
            "src 10.0.0.0/8 192.0.2.1 2001:db8::/32",
            Src,
            Ip,
            &["10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"],
        ),
        ("req.ver 1.1", ReqVer, Str, &["1.1"]),
        ("req_ver 1.0", ReqVer, Str, &["1.0"]),
    ];
    for (line, fetch, matcher, values) in cases {
        let t = acl_of(line);
        assert_eq!(
            (&t.fetch, t.matcher, t.ignore_case),
            (&fetch, matcher, false),
            "{line}"
        );
        assert_eq!(t.values, values, "{line}");
    }
}

#[test]
fn flags_quotes_and_escapes() {
    use Matcher::*;
    let cases: &[(&str, Matcher, bool, &[&str])] = &[
        ("path_beg -i /Static", Beg, true, &["/Static"]),
        ("path -m beg /a", Beg, false, &["/a"]),
        ("path_beg -m str /a", Str, false, &["/a"]),
        ("path -i -m sub ADMIN", Sub, true, &["ADMIN"]),
        ("path -m reg -i ^/API", Reg, true, &["^/API"]),
        ("path -m end .js", End, false, &[".js"]),
        ("path -m dir img", Dir, false, &["img"]),
        ("hdr(host) -m dom example", Dom, false, &["example"]),
        ("method -m beg PRO", Beg, false, &["PRO"]),
        ("hdr(x-debug) -m found", Found, false, &[]),
        ("src -m found", Found, false, &[]),
        ("path -- -i", Str, false, &["-i"]),
        ("path -i -- --", Str, true, &["--"]),
        (
            r#"hdr(x) "a b" 'c d' e\ f"#,
            Str,
            false,
            &["a b", "c d", "e f"],
        ),
        (r"path_reg ^/a\ b\d", Reg, false, &[r"^/a b\d"]),
    ];
    for (line, matcher, ignore_case, values) in cases {
        let t = acl_of(line);
        assert_eq!(
            (t.matcher, t.ignore_case),
            (*matcher, *ignore_case),
            "{line}"
        );
        assert_eq!(t.values, *values, "{line}");
    }
}

/// The frontend's ACLs `a`, `b` and `c`, and the condition of its one
/// use_backend rule, written `rule`.
fn cond_of(rule: &str) -> Condition {
    let text = format!(
        "frontends:\n  f:\n    bind: '*:8080'\n    acl: {{a: path /a, b: path /b, c: path /c}}\n    use_backend:\n      - {rule}\n    default_backend: p\npools:\n  p: {{backends: [{{address: 10.0.1.1, port: 80}}]}}\n"
    );
    let c = ok(&text);
    let mut f = c.config.frontends.into_iter().next().expect("frontend");
    f.use_backend.remove(0).cond.expect("a condition")
}

fn named(i: usize, negated: bool) -> AclRef {
    AclRef {
        negated,
        acl: AclUse::Named(i),
    }
}

#[test]
fn conditions_and_or_not_unless() {
    let (a, b, c) = (named(0, false), named(1, false), named(2, false));
    let not = |r: &AclRef| AclRef {
        negated: true,
        ..r.clone()
    };
    let cases: Vec<(&str, bool, Vec<Vec<AclRef>>)> = vec![
        ("p if a", false, vec![vec![a.clone()]]),
        ("p if a b", false, vec![vec![a.clone(), b.clone()]]),
        ("p if a || b", false, vec![vec![a.clone()], vec![b.clone()]]),
        (
            "p if a or b OR c",
            false,
            vec![vec![a.clone()], vec![b.clone()], vec![c.clone()]],
        ),
        ("p if !a", false, vec![vec![not(&a)]]),
        ("p if ! a", false, vec![vec![not(&a)]]),
        ("p if !!a", false, vec![vec![a.clone()]]),
        (
            "p if a !b || c",
            false,
            vec![vec![a.clone(), not(&b)], vec![c.clone()]],
        ),
        (
            "p unless a b || !c",
            true,
            vec![vec![a.clone(), b.clone()], vec![not(&c)]],
        ),
        (
            "p if TRUE",
            false,
            vec![vec![AclRef {
                negated: false,
                acl: AclUse::Always(true),
            }]],
        ),
        (
            "p unless FALSE",
            true,
            vec![vec![AclRef {
                negated: false,
                acl: AclUse::Always(false),
            }]],
        ),
        (
            "p if HTTP",
            false,
            vec![vec![AclRef {
                negated: false,
                acl: AclUse::Always(true),
            }]],
        ),
    ];
    for (rule, unless, any) in cases {
        assert_eq!(cond_of(rule), Condition { unless, any }, "{rule}");
    }
}

#[test]
fn anonymous_acls_in_braces() {
    let cond = cond_of("p if { path_beg /api } !a || !{ hdr_dom(host) -i api.example.com }");
    let [first, second] = &cond.any[..] else {
        panic!("{cond:?}")
    };
    let AclUse::Inline(api) = &first[0].acl else {
        panic!("{first:?}")
    };
    assert_eq!(
        (&api.fetch, api.matcher, &api.values[..]),
        (&Fetch::Path, Matcher::Beg, &["/api".to_owned()][..])
    );
    // `{` is at column 14 of line 6; the test starts at its fetch.
    assert_eq!(api.at, "t.yaml:6:16");
    assert_eq!(first[1], named(0, true));
    let AclUse::Inline(host) = &second[0].acl else {
        panic!("{second:?}")
    };
    assert!(second[0].negated);
    assert_eq!(
        (&host.fetch, host.matcher, host.ignore_case),
        (&Fetch::Hdr("host".into()), Matcher::Dom, true)
    );
}

#[test]
fn predefined_acls_are_what_haproxy_defines() {
    let test = |fetch: Fetch, matcher: Matcher, values: &[&str]| {
        (
            fetch,
            matcher,
            values.iter().map(|v| (*v).to_owned()).collect::<Vec<_>>(),
        )
    };
    let cases = [
        (
            "METH_GET",
            test(Fetch::Method, Matcher::Str, &["GET", "HEAD"]),
        ),
        ("METH_HEAD", test(Fetch::Method, Matcher::Str, &["HEAD"])),
        ("METH_POST", test(Fetch::Method, Matcher::Str, &["POST"])),
        ("METH_PUT", test(Fetch::Method, Matcher::Str, &["PUT"])),
        (
            "METH_DELETE",
            test(Fetch::Method, Matcher::Str, &["DELETE"]),
        ),
        (
            "METH_OPTIONS",
            test(Fetch::Method, Matcher::Str, &["OPTIONS"]),
        ),
        (
            "METH_CONNECT",
            test(Fetch::Method, Matcher::Str, &["CONNECT"]),
        ),
        ("METH_TRACE", test(Fetch::Method, Matcher::Str, &["TRACE"])),
        (
            "LOCALHOST",
            test(Fetch::Src, Matcher::Ip, &["127.0.0.0/8", "::1/128"]),
        ),
        ("HTTP_1.0", test(Fetch::ReqVer, Matcher::Str, &["1.0"])),
        ("HTTP_1.1", test(Fetch::ReqVer, Matcher::Str, &["1.1"])),
        ("HTTP_2.0", test(Fetch::ReqVer, Matcher::Str, &["2.0"])),
        (
            "HTTP_URL_ABS",
            test(Fetch::Url, Matcher::Reg, &["^[^/:]*://"]),
        ),
        ("HTTP_URL_SLASH", test(Fetch::Url, Matcher::Beg, &["/"])),
        ("HTTP_URL_STAR", test(Fetch::Url, Matcher::Str, &["*"])),
        (
            "HTTP_CONTENT",
            test(
                Fetch::Hdr("content-length".into()),
                Matcher::Reg,
                &["^0*[1-9]"],
            ),
        ),
    ];
    for (name, (fetch, matcher, values)) in cases {
        let cond = cond_of(&format!("p if {name}"));
        let AclUse::Inline(t) = &cond.any[0][0].acl else {
            panic!("{name}: {cond:?}")
        };
        assert_eq!(
            (&t.fetch, t.matcher, &t.values, t.ignore_case),
            (&fetch, matcher, &values, false),
            "{name}"
        );
        assert_eq!(t.at, "t.yaml:6:14", "{name}");
        if matcher == Matcher::Reg {
            regex::Regex::new(&t.values[0]).expect("predefined regexes compile");
        }
    }
}

/// HAProxy looks a name up among the frontend's ACLs first.
#[test]
fn a_frontends_acl_may_replace_a_predefined_one() {
    let text = "frontends:\n  f:\n    bind: '*:8080'\n    acl: {METH_GET: method GET}\n    use_backend: [p if METH_GET]\n    default_backend: p\npools:\n  p: {backends: [{address: 10.0.1.1, port: 80}]}\n";
    let c = ok(text);
    let cond = c.config.frontends[0].use_backend[0]
        .cond
        .clone()
        .expect("cond");
    assert_eq!(cond.any, [[named(0, false)]]);
}

#[test]
fn http_request_rules() {
    let text = "frontends:\n  f:\n    bind: '*:8080'\n    acl: {blocked: src 203.0.113.0/24}\n    http_request:\n      - deny if blocked\n      - deny deny_status 429 if { src 198.51.100.7 }\n      - allow if METH_GET\n      - deny deny_status 503\n    default_backend: p\npools:\n  p: {backends: [{address: 10.0.1.1, port: 80}]}\n";
    let c = ok(text);
    let rules = &c.config.frontends[0].http_request;
    let actions: Vec<(&HttpRequestAction, bool)> = rules
        .iter()
        .map(|r| (&r.action, r.cond.is_some()))
        .collect();
    assert_eq!(
        actions,
        [
            (&HttpRequestAction::Deny { status: 403 }, true),
            (&HttpRequestAction::Deny { status: 429 }, true),
            (&HttpRequestAction::Allow, true),
            (&HttpRequestAction::Deny { status: 503 }, false),
        ]
    );
}
