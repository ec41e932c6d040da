//! A log line framed for its target: the syslog priority (facility × 8 +
//! severity) and header of RFC 3164 (as HAProxy 2.6 sends it: no hostname,
//! which the receiving syslog daemon adds) or RFC 5424, systemd's `short`
//! form, or the bare line; cut to the target's `len`, ended by a newline.

use std::time::SystemTime;

use lb_config::proxy::{Facility, Severity, SyslogFormat};

use super::time::Local;

/// What the header needs besides the line.
#[derive(Clone, Copy, Debug)]
pub struct Header<'a> {
    pub facility: Facility,
    pub severity: Severity,
    /// The program name.
    pub tag: &'a str,
    pub pid: u32,
    pub now: SystemTime,
}

/// The syslog priority value.
pub fn pri(facility: Facility, severity: Severity) -> u16 {
    u16::from(facility.code()) * 8 + u16::from(severity.code())
}

/// `line` framed as `format`, at most `len` bytes with its newline.
pub fn frame(format: SyslogFormat, h: &Header, line: &str, len: usize) -> Vec<u8> {
    let head = match format {
        SyslogFormat::Rfc3164 => format!(
            "<{}>{} {}[{}]: ",
            pri(h.facility, h.severity),
            Local::of(h.now).rfc3164(),
            h.tag,
            h.pid
        ),
        SyslogFormat::Rfc5424 => format!(
            "<{}>1 {} - {} {} - - ",
            pri(h.facility, h.severity),
            Local::of(h.now).iso(),
            h.tag,
            h.pid
        ),
        SyslogFormat::Short => format!("<{}>", h.severity.code()),
        SyslogFormat::Raw => String::new(),
    };
    let room = len.saturating_sub(head.len() + 1);
    let mut out = Vec::with_capacity(head.len() + line.len().min(room) + 1);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&line.as_bytes()[..line.len().min(room)]);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn header(severity: Severity) -> Header<'static> {
        Header {
            facility: Facility::Local2,
            severity,
            tag: "lb",
            pid: 42,
            now: UNIX_EPOCH + Duration::from_secs(1_796_008_949),
        }
    }

    fn text(format: SyslogFormat, severity: Severity, len: usize) -> String {
        String::from_utf8(frame(format, &header(severity), "the line", len)).unwrap()
    }

    #[test]
    fn the_priority_is_facility_times_eight_plus_severity() {
        assert_eq!(pri(Facility::Local2, Severity::Info), 150);
        assert_eq!(pri(Facility::Local2, Severity::Err), 147);
        assert_eq!(pri(Facility::Kern, Severity::Emerg), 0);
        assert_eq!(pri(Facility::Local7, Severity::Debug), 191);
        assert_eq!(pri(Facility::Daemon, Severity::Notice), 29);
    }

    #[test]
    fn headers_follow_the_rfcs_as_haproxy_writes_them() {
        // The date is local time: only its shape is checked here (the
        // date's own test pins the digits).
        let l = text(SyslogFormat::Rfc3164, Severity::Info, 1024);
        let (pri, rest) = l.split_at(5);
        assert_eq!(pri, "<150>");
        assert_eq!(&rest[15..], " lb[42]: the line\n", "{l}");
        assert_eq!(rest.as_bytes()[3], b' ');
        let l = text(SyslogFormat::Rfc5424, Severity::Err, 1024);
        assert!(l.starts_with("<147>1 2026-11-"), "{l}");
        assert!(l.ends_with(" - lb 42 - - the line\n"), "{l}");
        assert_eq!(
            text(SyslogFormat::Short, Severity::Info, 1024),
            "<6>the line\n"
        );
        assert_eq!(text(SyslogFormat::Raw, Severity::Info, 1024), "the line\n");
    }

    #[test]
    fn a_long_line_is_cut_to_len_with_its_newline() {
        assert_eq!(text(SyslogFormat::Raw, Severity::Info, 5), "the \n");
        assert_eq!(text(SyslogFormat::Short, Severity::Info, 6), "<6>th\n");
        let l = text(SyslogFormat::Rfc3164, Severity::Info, 80);
        assert!(l.len() <= 80 && l.ends_with("the line\n"));
    }
}
