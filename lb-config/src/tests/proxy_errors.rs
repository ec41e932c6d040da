//! Each mistake in ACL lines and rules at its line:col, inside the line at
//! the offending word; and the small files the proxy's error tests share.

use super::errors;

/// Lines 1-4: pool `web` with backend `w1` (port 80); line 5 `frontends:`,
/// line 6 frontend `main`, 7 its bind, 8 its default_backend, then
/// `keys` (more keys of `main`) from line 9.
pub(super) fn front(keys: &str) -> String {
    format!(
        "pools:\n  web:\n    backends:\n      - {{name: w1, address: 10.0.1.1, port: 80}}\nfrontends:\n  main:\n    bind: '*:80'\n    default_backend: web\n{keys}"
    )
}

/// `front` with ACL `a` = `line` at line 10 (its value at column 10).
fn acl(line: &str) -> String {
    front(&format!(
        "    acl:\n      a: {line}\n    use_backend: [web if a]\n"
    ))
}

/// `front` with one use_backend rule at line 11 (its value at column 9).
fn route(rule: &str) -> String {
    front(&format!(
        "    acl: {{a: path /a}}\n    use_backend:\n      - {rule}\n"
    ))
}

/// `front` with one http_request rule at line 10 (its value at column 9).
fn deny(rule: &str) -> String {
    front(&format!("    http_request:\n      - {rule}\n"))
}

/// Pool `p` with `keys` from line 3, its backend at the line after them,
/// used by frontend `f`.
pub(super) fn pool(keys: &str, backend: &str) -> String {
    format!(
        "pools:\n  p:\n{keys}    backends:\n      - {{name: b1, address: 10.0.1.1, port: 80{backend}}}\nfrontends:\n  f: {{bind: '*:80', default_backend: p}}\n"
    )
}

/// `proxy:` with `keys` from line 2, and a frontend.
pub(super) fn proxy(keys: &str) -> String {
    format!("proxy:\n{keys}{}", front(""))
}

#[test]
fn acl_lines() {
    let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
        (
            "unknown fetch",
            acl("pth_beg /x"),
            (10, 10),
            "unknown or unsupported fetch `pth_beg`; supported: path, url, urlp(NAME)",
        ),
        (
            "length",
            acl("path_len 3"),
            (10, 10),
            "matching a length (`_len`) is not supported",
        ),
        (
            "no suffix forms of url_param",
            acl("url_param_beg(x) a"),
            (10, 10),
            "unknown or unsupported fetch `url_param_beg`",
        ),
        (
            "converter",
            acl("hdr(host),lower x"),
            (10, 10),
            "converters (`,lower`, …) are not supported",
        ),
        (
            "header without name",
            acl("hdr x"),
            (10, 10),
            "`hdr` needs a name: `hdr(NAME)`",
        ),
        (
            "header occurrence",
            acl("hdr(host,1) x"),
            (10, 10),
            "an occurrence (`hdr(NAME,N)`) is not supported",
        ),
        (
            "bad header name",
            acl("hdr(a:b) x"),
            (10, 10),
            "`a:b` is not a header name",
        ),
        (
            "argument to path",
            acl("path(x) /a"),
            (10, 10),
            "`path` takes no argument",
        ),
        (
            "unclosed argument",
            acl("hdr(host x"),
            (10, 10),
            "expected `hdr(NAME)`",
        ),
        (
            "bad flag",
            acl("path_beg -x /a"),
            (10, 19),
            "`-x` is not an ACL flag (flags: -i, -m METHOD, --)",
        ),
        (
            "file flag",
            acl("path -f /etc/paths"),
            (10, 15),
            "`-f` (patterns from a file) is not supported",
        ),
        (
            "-m without method",
            acl("path -m"),
            (10, 15),
            "`-m` needs a match method",
        ),
        (
            "unsupported -m",
            acl("path -m len 3"),
            (10, 18),
            "match method `len` is not supported",
        ),
        (
            "unknown -m",
            acl("path -m exact /a"),
            (10, 18),
            "unknown match method `exact`",
        ),
        (
            "src as text",
            acl("src -m beg 10."),
            (10, 10),
            "`src` is an address",
        ),
        (
            "text as address",
            acl("path -m ip 10.0.0.1"),
            (10, 10),
            "`-m ip` needs an address",
        ),
        (
            "no value",
            acl("path_beg"),
            (10, 10),
            "`path_beg` has no value to match, so it would never match",
        ),
        (
            "only flags",
            acl("path_beg -i"),
            (10, 10),
            "has no value to match",
        ),
        (
            "bad regex",
            acl("path_reg ^/(a"),
            (10, 19),
            "regex `^/(a` does not compile: unclosed group",
        ),
        (
            "look-around",
            acl("path_reg ^(?=a)"),
            (10, 19),
            "does not compile",
        ),
        (
            "bad address",
            acl("src 10.0.0.300"),
            (10, 14),
            "`10.0.0.300` is not an IP address",
        ),
        (
            "host name",
            acl("src localhost"),
            (10, 14),
            "host names and HAProxy's short forms (10.12/8) are not accepted",
        ),
        (
            "host bits",
            acl("src 10.0.0.1/8"),
            (10, 14),
            "write 10.0.0.0/8",
        ),
        (
            "bad method",
            acl("method G@T"),
            (10, 17),
            "`G@T` is not a method",
        ),
        (
            "unterminated quote",
            acl("hdr(x) 'a b"),
            (10, 17),
            "unterminated quote '",
        ),
        (
            "bad hex escape",
            acl(r"path \x4"),
            (10, 15),
            "`\\x` takes two hex digits",
        ),
        (
            "bad ACL name",
            front("    acl: {'a b': path /a}\n"),
            (9, 11),
            "ACL name `a b` contains ' '",
        ),
        (
            "ACL neither line nor list",
            front("    acl: {a: 3}\n"),
            (9, 14),
            "ACL `a` is a line (`path_beg /api`) or a list of lines",
        ),
        (
            "ACL with no lines",
            front("    acl: {a: []}\n"),
            (9, 14),
            "ACL `a` has no lines",
        ),
        (
            "ACL line not a string",
            front("    acl: {a: [path /a, [x]]}\n"),
            (9, 24),
            "an ACL line is a string",
        ),
        (
            "acl not a mapping",
            front("    acl: [path /a]\n"),
            (9, 10),
            "`acl` is a mapping of ACL name",
        ),
        ("empty ACL line", acl("''"), (10, 10), "empty line"),
    ];
    check(cases);
}

#[test]
fn conditions_and_rules() {
    let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
        (
            "unknown ACL",
            route("web if nope"),
            (11, 16),
            "unknown ACL `nope` (this frontend's: a; predefined: TRUE, FALSE, HTTP, HTTP_1.0",
        ),
        (
            "unsupported predefined",
            route("web if REQ_CONTENT"),
            (11, 16),
            "predefined ACL `REQ_CONTENT` is not supported",
        ),
        (
            "missing brace",
            route("web if { path /x"),
            (11, 16),
            "missing `}`",
        ),
        (
            "stray brace",
            route("web if a }"),
            (11, 18),
            "`}` without `{`",
        ),
        ("empty braces", route("web if { }"), (11, 16), "empty `{ }`"),
        (
            "bad inline ACL",
            route("web if { path_beg }"),
            (11, 18),
            "`path_beg` has no value to match",
        ),
        (
            "dangling negation",
            route("web if a !"),
            (11, 18),
            "`!` must come right before an ACL",
        ),
        (
            "negated or",
            route("web if a ! || a"),
            (11, 18),
            "`!` must come right before an ACL",
        ),
        (
            "leading or",
            route("web if || a"),
            (11, 16),
            "`||` needs an ACL on each side",
        ),
        (
            "trailing or",
            route("web if a ||"),
            (11, 18),
            "`||` needs an ACL on each side",
        ),
        (
            "no condition",
            route("web if"),
            (11, 13),
            "`if` needs a condition",
        ),
        (
            "junk after the pool",
            route("web when a"),
            (11, 13),
            "expected `if` or `unless` before a condition, found `when`",
        ),
        (
            "unknown pool",
            route("api if a"),
            (11, 9),
            "unknown pool `api` (pools: web)",
        ),
        (
            "unknown default_backend",
            front("").replace("default_backend: web", "default_backend: api"),
            (8, 22),
            "unknown pool `api` (pools: web)",
        ),
        (
            "unsupported action",
            deny("redirect location /"),
            (10, 9),
            "`redirect` is not supported in http_request; supported: `deny [deny_status N] [if|unless COND]`",
        ),
        (
            "bad deny status",
            deny("deny deny_status 418"),
            (10, 26),
            "deny_status `418` is not one of 200, 400, 401, 403",
        ),
        (
            "deny status missing",
            deny("deny deny_status"),
            (10, 14),
            "`deny_status` needs a status",
        ),
        (
            "deny status then junk",
            deny("deny deny_status 429 when"),
            (10, 30),
            "expected `if` or `unless`",
        ),
        ("empty rule", deny("''"), (10, 9), "empty line"),
        (
            "rule not a string",
            front("    http_request: [{deny: x}]\n"),
            (9, 20),
            "invalid type: map, expected a string",
        ),
    ];
    check(cases);
}

/// A word is placed exactly when the file shows the line as lb reads it;
/// after an escape of YAML's own, at the string's start.
#[test]
fn words_are_placed_through_yaml_quotes() {
    let cases: Vec<(&str, String, (usize, usize), &str)> = vec![
        (
            "single-quoted",
            acl("'path_beg -x /a'"),
            (10, 20),
            "`-x` is not an ACL flag",
        ),
        (
            "double-quoted",
            acl("\"path_beg -x /a\""),
            (10, 20),
            "`-x` is not an ACL flag",
        ),
        (
            "after a YAML escape",
            acl("\"path_beg\\t-x /a\""),
            (10, 10),
            "`-x` is not an ACL flag",
        ),
        (
            "second line of a folded scalar",
            front("    acl:\n      a: path_beg\n        -x /a\n    use_backend: [web if a]\n"),
            (10, 10),
            "`-x` is not an ACL flag",
        ),
    ];
    check(cases);
}

pub(super) fn check(cases: Vec<(&str, String, (usize, usize), &str)>) {
    let mut failures = Vec::new();
    for (what, text, (line, col), want) in cases {
        let got = errors(&text);
        let ok = got.len() == 1 && got[0].2.contains(want) && (got[0].0, got[0].1) == (line, col);
        if !ok {
            failures.push(format!(
                "{what}: want {line}:{col} {want:?}\n  got {got:?}\n{text}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
