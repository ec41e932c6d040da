//! `notify:` and pools' `notify_up`/`notify_down` in the file: the seed's
//! keepalived settings, defaults, and each mistake at its line:col.

use std::time::Duration;

use crate::notify::*;
use crate::{Checked, parse};

const SERVICE: &str = "interfaces: [{name: eth0}]
pools:
  web:
    notify_up: [/usr/local/bin/web-up, --x]
    notify_down: [/usr/local/bin/web-down]
    backends: [{name: web1, address: 10.0.1.1}]
services: [{name: web, address: 10.0.0.1, port: 80, pool: web}]
";

fn ok(notify: &str) -> Checked {
    let text = format!("{SERVICE}{notify}");
    parse(&text, "t.yaml").unwrap_or_else(|d| panic!("unexpected problems:\n{d}"))
}

/// `t.yaml:line:col: message` of each error, the service lines counted.
fn errors(notify: &str) -> Vec<String> {
    let text = format!("{SERVICE}{notify}");
    match parse(&text, "t.yaml") {
        Ok(c) => panic!("expected errors, got {:#?}", c.config.notify),
        Err(d) => d.errors().map(ToString::to_string).collect(),
    }
}

/// Each error begins as wanted, in order.
fn starts_with(errors: &[String], want: &[&str]) {
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    for (got, want) in errors.iter().zip(want) {
        assert!(
            got.starts_with(want),
            "{got}\n  wanted: {want}\n{errors:#?}"
        );
    }
}

#[test]
fn the_seeds_global_defs() {
    // keepalived: notification_email { 675583110@qq.com },
    // notification_email_from 675583110@qq.com, smtp_server 127.0.0.1,
    // smtp_connect_timeout 30, router_id LVS_DEVEL.
    let c = ok("notify:
  email:
    to: [675583110@qq.com]
    from: 675583110@qq.com
    smtp_server: 127.0.0.1
    smtp_connect_timeout: 30s
    subject_prefix: '[LVS_DEVEL]'
");
    let n = &c.config.notify;
    let e = n.email.as_ref().expect("email");
    assert_eq!(e.to, ["675583110@qq.com"]);
    assert_eq!(
        (e.smtp_host.as_str(), e.smtp_port, e.smtp_connect_timeout),
        ("127.0.0.1", 25, Duration::from_secs(30))
    );
    assert_eq!(e.starttls, StartTls::Off);
    assert_eq!(e.subject_prefix.as_deref(), Some("[LVS_DEVEL]"));
    assert_eq!(n.events, DEFAULT_EVENTS);
    assert_eq!((n.batch, n.retry), (DEFAULT_BATCH, RetryConfig::default()));
    let pool = &c.config.pools[0];
    assert_eq!(
        pool.notify_up.as_deref(),
        Some(&["/usr/local/bin/web-up".to_owned(), "--x".to_owned()][..])
    );
    assert_eq!(pool.notify_down.as_ref().map(Vec::len), Some(1));
}

#[test]
fn every_key() {
    let c = ok("notify:
  events: [backend_state, health, reload, backend_state]
  batch: 500ms
  batch_max: 10
  queue: 50
  retry: {attempts: 3, backoff: 200ms, max_backoff: 2s}
  script_timeout: 3s
  script: [/usr/local/bin/on-lb-event]
  email:
    to: [ops@example.com, oncall@example.com]
    from: lb@example.com
    smtp_server: '[2001:db8::25]:587'
    starttls: required
    username: lb
    password_file: /etc/lb/smtp.pass
    helo_name: lb1.example.com
  webhook: {url: 'https://hooks.example.com/lb', timeout: 2s}
");
    let n = c.config.notify;
    assert_eq!(n.events, ["backend_state", "health", "reload"]);
    assert_eq!((n.batch_max, n.queue), (10, 50));
    assert_eq!(
        n.retry,
        RetryConfig {
            attempts: 3,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    );
    let e = n.email.expect("email");
    assert_eq!((e.smtp_host.as_str(), e.smtp_port), ("2001:db8::25", 587));
    assert_eq!(e.starttls, StartTls::Required);
    let w = n.webhook.expect("webhook");
    assert_eq!((w.target.tls, w.target.port), (true, 443));
    assert_eq!(c.warnings, vec![]);
}

#[test]
fn absent_or_null_is_the_defaults_and_a_channelless_section_warns() {
    assert_eq!(ok("").config.notify, NotifyConfig::default());
    assert_eq!(ok("notify: null\n").config.notify, NotifyConfig::default());
    let w = ok("notify: {batch: 1s}\n").warnings;
    assert_eq!(w.len(), 1);
    assert!(w[0].message.contains("events go nowhere"), "{}", w[0]);
}

#[test]
fn mistakes_at_their_place() {
    let e = errors(
        "notify:
  events: [backend_state, vrrp_master]
  batch: 20m
  retry: {attempts: 0, backoff: 5s, max_backoff: 1s}
  script: [on-lb-event]
  colour: red
  email:
    to: [ops]
    smtp_server: mail:0
    starttls: yes-please
    username: lb
  webhook: {url: 'ftp://x/'}
",
    );
    let want = [
        "t.yaml:9:27: unknown event type `vrrp_master`, expected one of `agent_started`",
        "t.yaml:10:10: batch must be at most 10m",
        "t.yaml:11:21: attempts 0 is out of range 1..=100",
        "t.yaml:11:50: max_backoff 1s is shorter than backoff 5s",
        "t.yaml:12:11: script: the program `on-lb-event` must be an absolute path",
        "t.yaml:13:3: unknown key `colour`",
        "t.yaml:15:5: missing required key `from`",
        "t.yaml:15:10: `ops` is not an e-mail address",
        "t.yaml:16:18: smtp_server `0` is not a port",
        "t.yaml:17:15: starttls `yes-please`: expected `off`, `opportunistic` or `required`",
        "t.yaml:18:15: username needs password_file",
        "t.yaml:19:18: url `ftp://x/`: only `http://` and `https://`",
    ];
    starts_with(&e, &want);
}

#[test]
fn authentication_needs_tls_and_a_password_file() {
    let base = "notify:\n  email:\n    to: [a@b.example]\n    from: c@d.example\n    smtp_server: relay.example\n";
    let e = errors(&format!(
        "{base}    username: lb\n    password_file: /etc/lb/p\n"
    ));
    assert!(
        e[0].starts_with("t.yaml:13:15: SMTP authentication needs `starttls: required`"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{base}    starttls: required\n    username: lb\n    password_file: smtp.pass\n"
    ));
    assert!(
        e[0].starts_with("t.yaml:15:20: password_file must be an absolute path"),
        "{e:?}"
    );
}

#[test]
fn pool_commands_are_lists_with_an_absolute_program() {
    let e: Vec<String> = [
        ("[/usr/local/bin/web-up, --x]", "[]"),
        ("[/usr/local/bin/web-down]", "[web-down]"),
        (
            "[/usr/local/bin/web-down]",
            "'/usr/local/bin/web-down --now'",
        ),
    ]
    .iter()
    .flat_map(|(from, to)| {
        let d = parse(&SERVICE.replace(from, to), "t.yaml").expect_err(to);
        d.errors().map(ToString::to_string).collect::<Vec<_>>()
    })
    .collect();
    let want = [
        "t.yaml:4:16: notify_up is empty",
        "t.yaml:5:18: notify_down: the program `web-down` must be an absolute path",
        "t.yaml:5:18: invalid type: string \"/usr/local/bin/web-down --now\", expected a sequence",
    ];
    starts_with(&e, &want);
}

#[test]
fn the_reference_shows_the_defaults() {
    let c = parse(crate::DEFAULTS_DOC, "reference.yaml").expect("the reference parses");
    assert_eq!(c.config.notify, NotifyConfig::default());
    assert_eq!(c.config.pools[0].notify_up, None);
    for limit in [
        BATCH_MAX_RANGE.end(),
        QUEUE_RANGE.end(),
        ATTEMPTS_RANGE.end(),
    ] {
        assert!(crate::DEFAULTS_DOC.contains(&limit.to_string()), "{limit}");
    }
}
