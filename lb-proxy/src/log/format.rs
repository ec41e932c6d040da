//! A [`Record`] as text: HAProxy 2.6's `option httplog` and `option tcplog`
//! lines field for field, its default `Connect from` line, and a JSON
//! object with the same fields named.

use std::fmt::Write as _;
use std::time::Duration;

use lb_config::proxy::{LogFormat, ProxyMode};

use super::record::Record;
use super::time::Local;

/// HAProxy's `%ci:%cp`: an IPv6 address is written bare, as HAProxy does.
fn client(out: &mut String, r: &Record) {
    let _ = write!(out, "{}:{}", r.client.ip(), r.client.port());
}

/// A timer in milliseconds, `-1` when it never ran.
fn ms(t: Option<Duration>) -> i64 {
    t.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The text line.
pub fn text(r: &Record) -> String {
    let mut out = String::with_capacity(160);
    if r.format == LogFormat::Connect {
        let mode = match r.mode {
            ProxyMode::Http => "HTTP",
            ProxyMode::Tcp => "TCP",
        };
        let _ = write!(out, "Connect from ");
        client(&mut out, r);
        let _ = write!(
            out,
            " to {}:{} ({}/{mode})",
            r.local.ip(),
            r.local.port(),
            r.frontend
        );
        return out;
    }
    client(&mut out, r);
    let backend = r.backend.as_deref().unwrap_or(&r.frontend);
    let server = r.server.as_deref().unwrap_or("<NOSRV>");
    let _ = write!(
        out,
        " [{}] {} {backend}/{server} ",
        Local::of(r.date).clf(),
        r.frontend
    );
    timers_to_queues(&mut out, r);
    if r.format == LogFormat::Http {
        out.push_str(" \"");
        escape_request(&mut out, r.request.as_deref().unwrap_or("<BADREQ>"));
        out.push('"');
    }
    out
}

/// From the timers to the queue positions: the fields httplog and tcplog
/// share, with httplog's status and cookies between.
fn timers_to_queues(out: &mut String, r: &Record) {
    let t = &r.timers;
    let total = ms(Some(t.total));
    let (term, n) = r.term.chars(r.mode);
    let term = std::str::from_utf8(&term[..n]).unwrap_or("--");
    if r.format == LogFormat::Http {
        let _ = write!(
            out,
            "{}/{}/{}/{}/{total} {} {} - - {term} ",
            ms(t.request),
            ms(t.queue),
            ms(t.connect),
            ms(t.response),
            r.status,
            r.bytes
        );
    } else {
        let _ = write!(
            out,
            "{}/{}/{total} {} {term} ",
            ms(t.queue),
            ms(t.connect),
            r.bytes
        );
    }
    let c = &r.conns;
    let plus = if c.redispatched { "+" } else { "" };
    let _ = write!(
        out,
        "{}/{}/{}/{}/{plus}{} {}/{}",
        c.active, c.frontend, c.backend, c.server, c.retries, c.srv_queue, c.backend_queue
    );
}

/// HAProxy's encoding of a logged request line: bytes outside 32..=126,
/// `#` and `"` as `#XX`.
fn escape_request(out: &mut String, s: &str) {
    for b in s.bytes() {
        if (32..=126).contains(&b) && b != b'#' && b != b'"' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "#{b:02X}");
        }
    }
}

/// The JSON object: the text line's fields, named after HAProxy's manual.
pub fn json(r: &Record) -> String {
    let mut o = Json::default();
    if r.format == LogFormat::Connect {
        o.str("client_ip", &r.client.ip().to_string());
        o.num("client_port", r.client.port().into());
        o.str("frontend_ip", &r.local.ip().to_string());
        o.num("frontend_port", r.local.port().into());
        o.str("frontend_name", &r.frontend);
        return o.end();
    }
    let http = r.format == LogFormat::Http;
    o.str("client_ip", &r.client.ip().to_string());
    o.num("client_port", r.client.port().into());
    let date = if http { "request_date" } else { "accept_date" };
    o.str(date, &Local::of(r.date).iso());
    o.str("frontend_name", &r.frontend);
    o.str("backend_name", r.backend.as_deref().unwrap_or(&r.frontend));
    o.str("server_name", r.server.as_deref().unwrap_or("<NOSRV>"));
    let t = &r.timers;
    if http {
        o.num("TR", ms(t.request));
    }
    o.num("Tw", ms(t.queue));
    o.num("Tc", ms(t.connect));
    if http {
        o.num("Tr", ms(t.response));
    }
    o.num(if http { "Ta" } else { "Tt" }, ms(Some(t.total)));
    if http {
        o.num("status_code", r.status.into());
    }
    o.num("bytes_read", i64::try_from(r.bytes).unwrap_or(i64::MAX));
    let (term, n) = r.term.chars(r.mode);
    o.str(
        "termination_state",
        std::str::from_utf8(&term[..n]).unwrap_or("--"),
    );
    let c = &r.conns;
    let count = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    o.num("actconn", count(c.active));
    o.num("feconn", count(c.frontend));
    o.num("beconn", count(c.backend));
    o.num("srv_conn", count(c.server));
    o.num("retries", c.retries.into());
    o.bool("redispatched", c.redispatched);
    o.num("srv_queue", c.srv_queue.into());
    o.num("backend_queue", c.backend_queue.into());
    if http {
        match &r.request {
            Some(line) => o.str("http_request", line),
            None => o.str("http_request", "<BADREQ>"),
        }
    }
    o.end()
}

/// A flat JSON object, written as it goes.
#[derive(Default)]
struct Json(String);

impl Json {
    fn key(&mut self, k: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        let _ = write!(self.0, "\"{k}\":");
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.0.push('"');
        for c in v.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(self.0, "\\u{:04x}", u32::from(c));
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }

    fn num(&mut self, k: &str, v: i64) {
        self.key(k);
        let _ = write!(self.0, "{v}");
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.0.push_str(if v { "true" } else { "false" });
    }

    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}
