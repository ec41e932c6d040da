//! Access logs as configured: where lines go (HAProxy's `log` lines: a
//! syslog server over UDP, a unix datagram socket such as `/dev/log`,
//! stdout/stderr, or a file), in which syslog framing, and what a frontend
//! logs (`option httplog`, `option tcplog`, `option dontlognull`,
//! `option log-separate-errors`, `option dontlog-normal`).

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::model::spelled_enum;

/// Default of a target's `len`: the longest line sent (HAProxy's, RFC 3164's).
pub const DEFAULT_LOG_LEN: u32 = 1024;
/// Accepted `len` (HAProxy's range).
pub const LOG_LEN_RANGE: RangeInclusive<u32> = 80..=65535;
/// Default of `proxy.log_tag`: the program name in each syslog header.
pub const DEFAULT_LOG_TAG: &str = "lb";
/// The UDP port of a syslog address written without one.
pub const SYSLOG_PORT: u16 = 514;

/// One log destination (HAProxy `log <target> [len N] [format F] <facility>
/// [<level> [<minlevel>]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogTarget {
    pub destination: LogDestination,
    pub facility: Facility,
    /// Lines less important than this are not sent. Default `debug` (all).
    pub level: Severity,
    /// Lines more important than this are sent at this level instead.
    pub minlevel: Option<Severity>,
    /// Default [`SyslogFormat::Rfc3164`] (HAProxy 2.6's).
    pub format: SyslogFormat,
    /// A longer line is cut to this many bytes. Default [`DEFAULT_LOG_LEN`].
    pub len: u32,
}

impl LogTarget {
    /// The level a line of `severity` is sent at, or None when the target
    /// takes no line that unimportant.
    pub fn admits(&self, severity: Severity) -> Option<Severity> {
        if severity > self.level {
            return None;
        }
        Some(self.minlevel.map_or(severity, |min| severity.max(min)))
    }
}

/// Where lines go.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LogDestination {
    /// A syslog server (`127.0.0.1`, `127.0.0.1:514`, `[::1]:514`).
    Udp(SocketAddr),
    /// A unix datagram socket (`/dev/log`).
    Unix(PathBuf),
    Stdout,
    Stderr,
    /// Appended to a file, one line each.
    File(PathBuf),
}

impl fmt::Display for LogDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogDestination::Udp(a) => write!(f, "{a}"),
            LogDestination::Unix(p) => write!(f, "{}", p.display()),
            LogDestination::Stdout => f.write_str("stdout"),
            LogDestination::Stderr => f.write_str("stderr"),
            LogDestination::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

impl Serialize for LogDestination {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl LogDestination {
    /// `address:` as written: `stdout`, `stderr`, a path (a unix socket),
    /// or an IP address with an optional port.
    pub fn parse_address(text: &str) -> Result<LogDestination, String> {
        match text {
            "stdout" => return Ok(LogDestination::Stdout),
            "stderr" => return Ok(LogDestination::Stderr),
            _ if text.starts_with('/') => return Ok(LogDestination::Unix(text.into())),
            _ => {}
        }
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(LogDestination::Udp(addr));
        }
        match text.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(LogDestination::Udp(SocketAddr::new(ip, SYSLOG_PORT))),
            Err(_) => Err(format!(
                "`{text}` is not a log address: an IP address with an optional port \
                 (`127.0.0.1`, `127.0.0.1:514`, `[::1]:514`), a unix socket path \
                 (`/dev/log`), `stdout` or `stderr`"
            )),
        }
    }
}

spelled_enum!(
    /// A syslog facility (RFC 5424 §6.2.1; HAProxy's names, in code order).
    Facility, "a syslog facility: `kern`, `user`, `daemon`, `local0` … `local7`, …" {
        Kern = "kern", User = "user", Mail = "mail", Daemon = "daemon",
        Auth = "auth", Syslog = "syslog", Lpr = "lpr", News = "news",
        Uucp = "uucp", Cron = "cron", Auth2 = "auth2", Ftp = "ftp",
        Ntp = "ntp", Audit = "audit", Alert = "alert", Cron2 = "cron2",
        Local0 = "local0", Local1 = "local1", Local2 = "local2", Local3 = "local3",
        Local4 = "local4", Local5 = "local5", Local6 = "local6", Local7 = "local7",
    }
);

impl Facility {
    /// Its number in the syslog priority.
    pub fn code(self) -> u8 {
        Facility::ALL.iter().position(|f| *f == self).unwrap_or(0) as u8
    }
}

spelled_enum!(
    /// A syslog severity, most important first (so `<` means "more important").
    Severity, "a level: `emerg`, `alert`, `crit`, `err`, `warning`, `notice`, `info` or `debug`" {
        Emerg = "emerg", Alert = "alert", Crit = "crit", Err = "err",
        Warning = "warning", Notice = "notice", Info = "info", Debug = "debug",
    }
);

impl Severity {
    /// Its number in the syslog priority.
    pub fn code(self) -> u8 {
        Severity::ALL.iter().position(|s| *s == self).unwrap_or(0) as u8
    }
}

spelled_enum!(
    /// How a line is framed (HAProxy's `format`).
    SyslogFormat, "`rfc3164`, `rfc5424`, `short` or `raw`" {
        /// `<PRI>Mmm dd hh:mm:ss TAG[PID]: line`, as HAProxy 2.6 sends it.
        Rfc3164 = "rfc3164",
        /// `<PRI>1 TIMESTAMP - TAG PID - - line`.
        Rfc5424 = "rfc5424",
        /// `<SEVERITY>line`: what systemd reads from a service's stdout.
        Short = "short",
        /// The line alone.
        Raw = "raw",
    }
);

spelled_enum!(
    /// What a frontend's line says.
    LogFormat, "`connect`, `tcplog` or `httplog`" {
        /// No option: HAProxy's default format, one line at accept
        /// (`Connect from CLIENT to LOCAL (FRONTEND/MODE)`).
        Connect = "connect",
        /// `option tcplog`: one line per connection when it ends.
        Tcp = "tcplog",
        /// `option httplog`: one line per request when its response ends.
        Http = "httplog",
    }
);

/// What a frontend logs, resolved (`log global` replaced by `proxy.log`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FrontendLog {
    /// Empty: nothing is logged (HAProxy without `log`).
    pub targets: Vec<LogTarget>,
    pub format: LogFormat,
    /// The same fields as a JSON object instead of the text line.
    pub json: bool,
    /// `option dontlognull`: no line for a connection that sent nothing.
    pub dontlognull: bool,
    /// `option log-separate-errors`: lines of failed requests at `err`
    /// instead of `info`.
    pub log_separate_errors: bool,
    /// `option dontlog-normal`: only lines of failed requests.
    pub dontlog_normal: bool,
}

impl Default for FrontendLog {
    fn default() -> Self {
        FrontendLog {
            targets: Vec::new(),
            format: LogFormat::Connect,
            json: false,
            dontlognull: false,
            log_separate_errors: false,
            dontlog_normal: false,
        }
    }
}

impl FrontendLog {
    /// Whether anything is logged.
    pub fn enabled(&self) -> bool {
        !self.targets.is_empty()
    }
}

/// `httplog:` / `tcplog:` as written: on, off, or on as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOption {
    Off,
    Text,
    Json,
}

impl<'de> Deserialize<'de> for LogOption {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LogOption;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true`, `false` or `json`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LogOption, E> {
                Ok(if v { LogOption::Text } else { LogOption::Off })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LogOption, E> {
                match v {
                    "json" => Ok(LogOption::Json),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_syslog_numbers() {
        assert_eq!(Facility::Kern.code(), 0);
        assert_eq!(Facility::Local0.code(), 16);
        assert_eq!(Facility::Local7.code(), 23);
        assert_eq!(Severity::Emerg.code(), 0);
        assert_eq!(Severity::Err.code(), 3);
        assert_eq!(Severity::Info.code(), 6);
        assert_eq!(Severity::Debug.code(), 7);
    }

    #[test]
    fn a_target_admits_up_to_its_level_and_caps_at_minlevel() {
        let mut t = LogTarget {
            destination: LogDestination::Stdout,
            facility: Facility::Local2,
            level: Severity::Notice,
            minlevel: None,
            format: SyslogFormat::Rfc3164,
            len: DEFAULT_LOG_LEN,
        };
        assert_eq!(t.admits(Severity::Info), None);
        assert_eq!(t.admits(Severity::Err), Some(Severity::Err));
        t.minlevel = Some(Severity::Warning);
        assert_eq!(t.admits(Severity::Err), Some(Severity::Warning));
        assert_eq!(t.admits(Severity::Notice), Some(Severity::Notice));
    }

    #[test]
    fn addresses_parse_as_haproxy_writes_them() {
        let udp = |s: &str| LogDestination::Udp(s.parse().unwrap());
        let cases = [
            ("127.0.0.1", udp("127.0.0.1:514")),
            ("127.0.0.1:5140", udp("127.0.0.1:5140")),
            ("[::1]:5140", udp("[::1]:5140")),
            ("::1", udp("[::1]:514")),
            ("/dev/log", LogDestination::Unix("/dev/log".into())),
            ("stdout", LogDestination::Stdout),
            ("stderr", LogDestination::Stderr),
        ];
        for (text, want) in cases {
            assert_eq!(LogDestination::parse_address(text), Ok(want), "{text}");
        }
        assert!(LogDestination::parse_address("syslog.example").is_err());
    }
}
