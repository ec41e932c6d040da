//! lb reads ACL lines, conditions and `deny_status` as HAProxy 2.6 does:
//! each case goes, written the same, to Debian's `haproxy -c` and to
//! lb-config. Both accept it or both refuse it, except where lb is
//! stricter on purpose; the table says why, and checks that HAProxy does
//! accept those (so the list of differences in docs/proxy.md stays true).

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How lb's verdict relates to HAProxy's.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// The same: both accept, or both refuse.
    Same,
    /// HAProxy accepts; lb refuses, for this reason.
    Stricter(&'static str),
}
use Want::*;

/// ACL lines: `acl a LINE` in HAProxy, `acl: {a: LINE}` in lb.
const ACLS: &[(&str, Want)] = &[
    ("path_beg -i /static /images /javascript /stylesheets", Same),
    ("path_end -i .jpg .gif .png .css .js", Same),
    ("path /a", Same),
    ("path_sub a", Same),
    ("path_dir a", Same),
    ("path_dom a", Same),
    (r"path_reg ^/v\d+/", Same),
    ("url /x", Same),
    ("url_beg /", Same),
    ("url_end x", Same),
    ("url_sub x", Same),
    ("url_dir x", Same),
    ("url_dom x", Same),
    ("url_reg x", Same),
    ("url_param(id) 4", Same),
    ("urlp(id) 4", Same),
    ("urlp_beg(id) 4", Same),
    ("urlp_reg(id) ^4", Same),
    ("hdr(host) example.com", Same),
    ("hdr_beg(host) www.", Same),
    ("hdr_end(host) .com", Same),
    ("hdr_sub(user-agent) curl", Same),
    ("hdr_dom(host) -i api.example.com", Same),
    ("hdr_reg(host) ^a", Same),
    ("hdr_dir(host) a", Same),
    ("method GET HEAD", Same),
    ("src 10.0.0.0/8 192.0.2.1 2001:db8::/32", Same),
    ("req.ver 1.1", Same),
    ("req_ver 1.0", Same),
    ("path -m beg /a", Same),
    ("path -i -m sub a", Same),
    ("path -m reg -i ^/a", Same),
    ("hdr(x) -m found", Same),
    ("src -m found", Same),
    ("path -- -i", Same),
    ("path_beg /a -i /b", Same),
    (r#"hdr(x) "a b" 'c d' e\ f"#, Same),
    ("url_param_beg(x) a", Same),
    ("path_beg -x /a", Same),
    ("path -m exact /a", Same),
    ("path_reg ^/(a", Same),
    ("nosuchfetch a", Same),
    ("path -f /nonexistent/patterns", Same),
    (
        "path_beg",
        Stricter("no value: HAProxy only warns that the ACL never matches"),
    ),
    (
        "src 10.0.0.1/8",
        Stricter("host bits set: lb asks for the network, 10.0.0.0/8"),
    ),
    (
        "src 10.12/8",
        Stricter("HAProxy's short IPv4 forms are not accepted"),
    ),
    ("src localhost", Stricter("host names are not resolved")),
    ("method G@T", Stricter("a method is an HTTP token")),
    (
        "src -m beg 10.",
        Stricter("src is matched as an address only"),
    ),
    (
        "path -m ip 10.0.0.1",
        Stricter("only src is matched as an address"),
    ),
    ("hdr x", Stricter("hdr needs a header name")),
    ("url_param a", Stricter("url_param needs a parameter name")),
    (
        "hdr(host,1) x",
        Stricter("header occurrences are not supported"),
    ),
    (
        "urlp(x,;) a",
        Stricter("url_param delimiters are not supported"),
    ),
    (
        "path -m len 3",
        Stricter("length matching is not supported"),
    ),
    ("path_len 3", Stricter("length matching is not supported")),
    (
        "path -m bool",
        Stricter("boolean matching is not supported"),
    ),
    (
        "hdr(host),lower x",
        Stricter("converters are not supported"),
    ),
    ("cook(SERVERID) a", Stricter("fetch not supported")),
    (
        "path_reg ^(?=a)",
        Stricter("the regex crate has no look-around"),
    ),
];

/// Conditions: `use_backend web if COND` with ACLs `a` and `b` defined.
const CONDITIONS: &[(&str, Want)] = &[
    ("if a", Same),
    ("if a b", Same),
    ("if a || b", Same),
    ("if a or b", Same),
    ("if !a", Same),
    ("if ! a", Same),
    ("unless a !b", Same),
    (
        "if { path_beg /api } !a || { hdr_dom(host) -i api.example.com }",
        Same,
    ),
    ("if !{ src 10.0.0.0/8 }", Same),
    ("if TRUE", Same),
    ("if METH_GET HTTP_1.1 LOCALHOST", Same),
    (
        "if HTTP_URL_ABS || HTTP_URL_SLASH || HTTP_URL_STAR || HTTP_CONTENT",
        Same,
    ),
    (
        "if METH_POST METH_PUT METH_DELETE METH_OPTIONS METH_CONNECT METH_TRACE METH_HEAD",
        Same,
    ),
    ("if HTTP HTTP_1.0 HTTP_2.0 FALSE", Same),
    ("if nope", Same),
    ("if { path_beg /a", Same),
    ("if { }", Same),
    ("if a ||", Stricter("an empty `||` group: HAProxy drops it")),
    ("if || a", Stricter("an empty `||` group: HAProxy drops it")),
    ("if a !", Stricter("a stray `!`: HAProxy drops it")),
    ("if REQ_CONTENT", Stricter("looks at raw TCP buffers")),
];

/// `http-request deny deny_status N`.
const DENY_STATUSES: &[(&str, Want)] = &[
    ("200", Same),
    ("403", Same),
    ("429", Same),
    ("503", Same),
    ("504", Same),
    ("418", Same),
    ("302", Same),
    ("600", Same),
];

/// The haproxy.cfg of one case: `lines` in frontend `f`.
fn haproxy_cfg(lines: &str) -> String {
    format!(
        "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
         frontend f\n  bind 127.0.0.1:18080\n{lines}  default_backend web\n\
         backend web\n  server w1 127.0.0.1:18081\n"
    )
}

/// The lb.yaml of one case: `keys` in frontend `f`.
fn lb_yaml(keys: &str) -> String {
    format!(
        "frontends:\n  f:\n    bind: 127.0.0.1:18080\n{keys}    default_backend: web\n\
         pools:\n  web:\n    backends: [{{name: w1, address: 127.0.0.1, port: 18081}}]\n"
    )
}

/// YAML single-quoted.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Whether `haproxy -c` accepts `cfg`.
fn haproxy_accepts(cfg: &str) -> bool {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "lb-config-haproxy-{}-{}.cfg",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, cfg).expect("write a temporary haproxy.cfg");
    let out = Command::new("haproxy")
        .arg("-c")
        .arg("-q")
        .arg("-f")
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    match out {
        Ok(o) => o.status.success(),
        Err(e) => panic!(
            "cannot run `haproxy -c` ({e}): this test compares lb with Debian's HAProxy 2.6; \
             install it (`apt-get install haproxy`, or `cargo xtask test`, which installs the \
             test packages)"
        ),
    }
}

fn lb_accepts(yaml: &str) -> bool {
    lb_config::parse(yaml, "lb.yaml").is_ok()
}

/// Runs every case; collects the disagreements.
fn compare(cases: &[(&str, Want)], case: impl Fn(&str) -> (String, String)) -> Vec<String> {
    let mut wrong = Vec::new();
    for (text, want) in cases {
        let (cfg, yaml) = case(text);
        let (h, l) = (haproxy_accepts(&cfg), lb_accepts(&yaml));
        let (ok, why) = match want {
            Same => (h == l, "the same verdict"),
            Stricter(why) => (h && !l, *why),
        };
        if !ok {
            let lb = lb_config::parse(&yaml, "lb.yaml")
                .err()
                .map(|d| d.to_string());
            wrong.push(format!(
                "{text:?} (expected {why}): haproxy accepts: {h}, lb accepts: {l} {lb:?}"
            ));
        }
    }
    wrong
}

#[test]
fn acl_lines_are_read_as_haproxy_reads_them() {
    let wrong = compare(ACLS, |line| {
        (
            haproxy_cfg(&format!("  acl a {line}\n  http-request deny if a\n")),
            lb_yaml(&format!(
                "    acl: {{a: {}}}\n    http_request: ['deny if a']\n",
                quoted(line)
            )),
        )
    });
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn conditions_are_read_as_haproxy_reads_them() {
    let wrong = compare(CONDITIONS, |cond| {
        (
            haproxy_cfg(&format!(
                "  acl a path /a\n  acl b path /b\n  use_backend web {cond}\n"
            )),
            lb_yaml(&format!(
                "    acl: {{a: path /a, b: path /b}}\n    use_backend: [{}]\n",
                quoted(&format!("web {cond}"))
            )),
        )
    });
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn deny_statuses_are_haproxys() {
    let wrong = compare(DENY_STATUSES, |status| {
        (
            haproxy_cfg(&format!("  http-request deny deny_status {status}\n")),
            lb_yaml(&format!(
                "    http_request: ['deny deny_status {status}']\n"
            )),
        )
    });
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
