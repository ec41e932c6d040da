//! `stats:` in the file: the seed's `listen admin_status`, defaults, and
//! each mistake at its line:col.

use std::time::Duration;

use crate::stats::*;
use crate::{Checked, parse};

/// Two lines before `stats:`, so errors are at line 3 and later.
const HEAD: &str = "agent: {metrics_listen: 127.0.0.1:8480}
frontends: {main: {bind: '*:8080', default_backend: web}, }
pools: {web: {backends: [{name: b1, address: 10.0.1.1, port: 80}]}}
";

fn checked(stats: &str) -> Result<Checked, Vec<String>> {
    parse(&format!("{HEAD}{stats}"), "t.yaml")
        .map_err(|d| d.errors().map(ToString::to_string).collect())
}

fn ok(stats: &str) -> Checked {
    checked(stats).unwrap_or_else(|e| panic!("unexpected errors: {e:#?}"))
}

fn errors(stats: &str) -> Vec<String> {
    checked(stats).expect_err("errors")
}

fn warnings(c: &Checked) -> Vec<String> {
    c.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn the_seeds_listen_section() {
    let c = ok("stats:
  bind: 0.0.0.0:9188
  uri: /haproxy-status
  refresh: 30s
  realm: welcom login
  auth: [admin:admin, 'guest:guest']
  hide_version: true
  admin: true
");
    let s = &c.config.stats;
    assert_eq!(
        s.bind.map(|b| b.addr),
        Some("0.0.0.0:9188".parse().unwrap())
    );
    assert_eq!(s.uri, "/haproxy-status");
    assert_eq!(s.refresh, Duration::from_secs(30));
    assert_eq!(
        s.realm, "welcom login",
        "the whole phrase, not HAProxy's first word"
    );
    let names: Vec<&str> = s.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["admin", "guest"]);
    assert_eq!(s.users[1].password, "guest");
    assert!(s.hide_version);
    assert!(s.is_admin("guest") && s.is_admin("admin"));
    let w = warnings(&c);
    assert!(
        w.iter().any(|w| w.starts_with(
            "t.yaml:11:10: warning: `admin: true` lets every `auth` user act (`admin`, `guest`)"
        )),
        "{w:#?}"
    );
    let json = serde_json::to_string(&c.config.stats).unwrap();
    assert!(
        !json.contains("guest:guest") && json.contains("<hidden>"),
        "{json}"
    );
}

#[test]
fn admins_by_name_and_defaults() {
    let c = ok(
        "stats: {bind: '127.0.0.1:9188', auth: ['admin:s3:cret', 'guest:guest'], admin: [admin]}\n",
    );
    let s = &c.config.stats;
    assert!(s.is_admin("admin") && !s.is_admin("guest"));
    assert_eq!(
        s.users[0].password, "s3:cret",
        "the password is all after the first colon"
    );
    assert_eq!(
        (s.uri.as_str(), s.realm.as_str()),
        (DEFAULT_URI, DEFAULT_REALM)
    );
    assert_eq!((s.refresh, s.hide_version), (Duration::ZERO, false));
    assert!(warnings(&c).is_empty(), "{:#?}", warnings(&c));
    assert_eq!(ok("").config.stats, StatsConfig::default());
    assert_eq!(ok("stats:\n").config.stats, StatsConfig::default());
}

#[test]
fn each_mistake_at_its_place() {
    let e = errors(
        "stats:
  bind: '*:8080'
  uri: stats
  refresh: 500ms
  realm: 'say \"hi\"'
  auth: [admin, 'x:', admin:a, admin:b]
  admin: [root]
  colour: red
",
    );
    let want = [
        "t.yaml:5:9: `*:8080` takes frontend `main`'s 0.0.0.0:8080",
        "t.yaml:6:8: uri `stats`: a path starting with `/`",
        "t.yaml:7:12: refresh must be at least 1s",
        "t.yaml:8:10: realm: printable ASCII",
        "t.yaml:9:10: an `auth` entry is `user:password`",
        "t.yaml:9:17: an `auth` entry needs a user and a password",
        "t.yaml:9:32: user `admin` is given twice",
        "t.yaml:10:11: `root` is not an `auth` user (`admin`)",
        "t.yaml:11:3: unknown key `colour`",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(got.starts_with(want), "{got}\n  wanted: {want}\n{e:#?}");
    }
}

#[test]
fn admin_needs_users_and_the_agent_keeps_its_ports() {
    let e = errors("stats: {bind: '127.0.0.1:8480', admin: true}\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].contains("takes agent.metrics_listen's 127.0.0.1:8480"),
        "{e:#?}"
    );
    assert!(e[1].contains("`admin` needs `auth`"), "{e:#?}");
    let e = errors("stats: {bind: ':9188', auth: [a:b], admin: yes}\n");
    assert!(
        e[0].contains("`admin` is `true`, `false` or a list"),
        "{e:#?}"
    );
    let c = ok("stats: {bind: ':9188'}\n");
    assert!(
        warnings(&c)
            .iter()
            .any(|w| w.contains("anyone who reaches *:9188 reads the page")),
        "{:#?}",
        warnings(&c)
    );
}

#[test]
fn the_reference_shows_the_defaults() {
    let c = parse(crate::DEFAULTS_DOC, "reference.yaml").expect("the reference parses");
    let s = &c.config.stats;
    assert_eq!(
        (&s.uri, &s.realm, s.refresh, s.hide_version, &s.admin),
        (
            &StatsConfig::default().uri,
            &StatsConfig::default().realm,
            Duration::ZERO,
            false,
            &StatsAdmin::Nobody
        )
    );
    assert_eq!(
        (&s.name, &s.log),
        (&StatsConfig::default().name, &StatsConfig::default().log)
    );
}

/// `proxy:` with the seed's global target and `log: global` in the defaults.
const SEED_LOG: &str = "proxy:
  log: [{address: 127.0.0.1, facility: local2, level: info}]
  defaults: {log: global, httplog: true, log_separate_errors: true}
";

#[test]
fn the_page_logs_as_proxy_defaults_unless_told_otherwise() {
    use crate::proxy::{Facility, LogFormat, Severity};
    // Absent: the defaults' targets, as a HAProxy `listen` inherits them.
    let c = ok(&format!("{SEED_LOG}stats: {{bind: 127.0.0.1:9188}}\n"));
    let log = &c.config.stats.log;
    assert_eq!(log.targets, c.config.proxy.log);
    assert_eq!(log.format, LogFormat::Http);
    assert!(log.log_separate_errors, "inherited with the targets");
    assert_eq!(c.config.stats.name, "stats");
    // Its own target: the seed's `log 127.0.0.1 local0 err`.
    let c = ok(&format!(
        "{SEED_LOG}stats:
  bind: 127.0.0.1:9188
  name: admin_status
  log: [{{address: 127.0.0.1, facility: local0, level: err}}]
"
    ));
    let s = &c.config.stats;
    assert_eq!(s.name, "admin_status");
    let [t] = &s.log.targets[..] else {
        panic!("one target: {:?}", s.log.targets)
    };
    assert_eq!((t.facility, t.level), (Facility::Local0, Severity::Err));
    // `false`, and no `log` anywhere: nothing.
    let c = ok(&format!(
        "{SEED_LOG}stats: {{bind: 127.0.0.1:9188, log: false}}\n"
    ));
    assert!(!c.config.stats.log.enabled());
    let c = ok("stats: {bind: 127.0.0.1:9188}\n");
    assert!(!c.config.stats.log.enabled());
    // Even with `httplog: false` in the defaults, the page logs requests.
    let c = ok(
        "proxy: {log: [{address: 127.0.0.1, facility: local2}], defaults: {log: global}}
stats: {bind: 127.0.0.1:9188}
",
    );
    assert_eq!(c.config.stats.log.format, LogFormat::Http);
}

#[test]
fn log_and_name_mistakes_at_their_place() {
    let e = errors(
        "stats:
  bind: 127.0.0.1:9188
  name: main
  log: [{address: nowhere, facility: local0}, {address: 127.0.0.1}]
",
    );
    let want = [
        "t.yaml:6:9: `main` is a frontend's name",
        "t.yaml:7:19: `nowhere` is not a log address",
        "t.yaml:7:47: missing `facility`",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(got.starts_with(want), "{got}\n  wanted: {want}\n{e:#?}");
    }
    let e = errors("stats: {bind: 127.0.0.1:9188, name: 'a b'}\n");
    assert!(e[0].contains("stats name `a b` contains ' '"), "{e:#?}");
    let e = errors("stats: {bind: 127.0.0.1:9188, log: true}\n");
    assert!(
        e[0].contains("`global`, `false`, or a list of log targets"),
        "{e:#?}"
    );
}

#[test]
fn a_frontend_named_stats_warns_when_the_page_logs_under_that_name() {
    let file = |stats: &str| {
        format!(
            "frontends: {{stats: {{bind: '*:8080', default_backend: web}}}}
pools: {{web: {{backends: [{{name: b1, address: 10.0.1.1, port: 80}}]}}}}
{SEED_LOG}stats: {stats}
"
        )
    };
    let valid = |text: String| {
        parse(&text, "t.yaml")
            .map_err(|d| d.errors().map(ToString::to_string).collect::<Vec<_>>())
            .expect("valid")
    };
    let c = valid(file("{bind: 127.0.0.1:9188}"));
    assert!(
        warnings(&c)
            .iter()
            .any(|w| w.contains("name it `stats`, as the frontend of that name")),
        "{:#?}",
        warnings(&c)
    );
    for quiet in [
        "{bind: 127.0.0.1:9188, log: false}",
        "{bind: 127.0.0.1:9188, name: admin_status}",
    ] {
        let c = valid(file(quiet));
        assert!(
            !warnings(&c).iter().any(|w| w.contains("as the frontend")),
            "{quiet}: {:#?}",
            warnings(&c)
        );
    }
}
