//! The log keys: `proxy.log` targets, `log: global` and a frontend's own
//! options over `proxy.defaults`, and each mistake at its line:col.

use super::proxy_errors::{check, front};
use super::{errors, ok};
use crate::proxy::*;

/// A `proxy:` section (lines 1..) before `front(keys)`.
fn file(proxy: &str, keys: &str) -> String {
    format!("proxy:\n{proxy}{}", front(keys))
}

#[test]
fn global_targets_defaults_and_frontend_keys_build_the_model() {
    let c = ok(&file(
        "  log:\n    - {address: 127.0.0.1, facility: local2, level: info}\n    - {address: /dev/log, facility: daemon, format: rfc5424, len: 4096, minlevel: notice}\n  log_tag: haproxy\n  defaults:\n    log: global\n    httplog: true\n    dontlognull: true\n",
        "    log_separate_errors: true\n",
    ));
    let p = &c.config.proxy;
    assert_eq!(p.log_tag, "haproxy");
    assert_eq!(
        p.log[0],
        LogTarget {
            destination: LogDestination::Udp("127.0.0.1:514".parse().unwrap()),
            facility: Facility::Local2,
            level: Severity::Info,
            minlevel: None,
            format: SyslogFormat::Rfc3164,
            len: DEFAULT_LOG_LEN,
        }
    );
    assert_eq!(
        p.log[1].destination,
        LogDestination::Unix("/dev/log".into())
    );
    assert_eq!(
        (
            p.log[1].format,
            p.log[1].len,
            p.log[1].level,
            p.log[1].minlevel
        ),
        (
            SyslogFormat::Rfc5424,
            4096,
            Severity::Debug,
            Some(Severity::Notice)
        )
    );
    let f = &c.config.frontends[0].log;
    assert_eq!(f.targets, p.log);
    assert_eq!((f.format, f.json), (LogFormat::Http, false));
    assert!(f.dontlognull && f.log_separate_errors && !f.dontlog_normal);
}

#[test]
fn a_frontend_overrides_and_tcp_falls_back_to_tcplog() {
    let c = ok(&file(
        "  log: [{address: stdout, facility: daemon, format: short}]\n  defaults:\n    log: global\n    httplog: json\n",
        "    log: [{file: /var/log/lb/access.log, facility: local0, format: raw}]\n  raw:\n    bind: '*:81'\n    mode: tcp\n    default_backend: web\n  quiet:\n    bind: '*:82'\n    default_backend: web\n    log: false\n",
    ));
    let by_name = |n: &str| &c.config.frontends.iter().find(|f| f.name == n).unwrap().log;
    let main = by_name("main");
    assert_eq!(
        main.targets[0].destination,
        LogDestination::File("/var/log/lb/access.log".into())
    );
    assert_eq!((main.format, main.json), (LogFormat::Http, true));
    // Inherited httplog on a tcp frontend: tcplog, without a word.
    let raw = by_name("raw");
    assert_eq!((raw.format, raw.json), (LogFormat::Tcp, true));
    assert_eq!(raw.targets[0].destination, LogDestination::Stdout);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert!(!by_name("quiet").enabled());
}

#[test]
fn mistakes_are_placed() {
    let global = |target: &str| file(&format!("  log:\n    - {target}\n"), "");
    check(vec![
        (
            "facility",
            global("{address: 127.0.0.1, facility: local9}"),
            (3, 38),
            "unknown variant `local9`",
        ),
        (
            "level",
            global("{address: 127.0.0.1, facility: local2, level: verbose}"),
            (3, 53),
            "unknown variant `verbose`",
        ),
        (
            "address",
            global("{address: syslog.example, facility: local2}"),
            (3, 17),
            "is not a log address",
        ),
        (
            "no facility",
            global("{address: 127.0.0.1}"),
            (3, 7),
            "missing `facility`",
        ),
        (
            "both",
            global("{address: 127.0.0.1, file: /tmp/x, facility: user}"),
            (3, 28),
            "not both",
        ),
        (
            "len",
            global("{address: stdout, facility: user, len: 10}"),
            (3, 46),
            "len",
        ),
        (
            "relative file",
            global("{file: access.log, facility: user}"),
            (3, 14),
            "absolute path",
        ),
        (
            "log value",
            front("    log: everywhere\n"),
            (9, 10),
            "`global`, `false`, or a list of log targets",
        ),
        (
            "both formats",
            front("    httplog: true\n    tcplog: true\n"),
            (10, 5),
            "choose one",
        ),
        (
            "tag",
            file("  log_tag: \"my tag\"\n", ""),
            (2, 12),
            "cannot be a log tag",
        ),
    ]);
}

#[test]
fn httplog_written_on_a_tcp_frontend_is_warned() {
    let c = ok(&front(
        "  raw:\n    bind: '*:81'\n    mode: tcp\n    default_backend: web\n    httplog: true\n",
    ));
    let w: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter()
            .any(|w| w.contains("t.yaml:13:5") && w.contains("tcplog")),
        "{w:?}"
    );
    assert!(
        errors(&front("    dontlognull: yes\n"))[0]
            .2
            .contains("boolean")
    );
}
