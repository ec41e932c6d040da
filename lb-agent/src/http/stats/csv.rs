//! `URI;csv`: HAProxy's `show stat` CSV, so that the scripts and exporters
//! that read HAProxy's read ours. The columns are HAProxy 2.6's general ones
//! in its order (the per-module ones after `-` are left out); what lb does
//! not have stays empty, as HAProxy leaves a column empty where it does not
//! apply. L7 frontends and L4 services are FRONTEND rows; each pool is its
//! servers' rows and a BACKEND row.

use std::fmt::Write as _;

use super::table::{Frontend, Pool, Server, Table};

/// HAProxy 2.6's columns, in order (`src/stats.c`, `stat_fields`).
pub const COLUMNS: [&str; 103] = [
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "qlimit",
    "pid",
    "iid",
    "sid",
    "throttle",
    "lbtot",
    "tracked",
    "type",
    "rate",
    "rate_lim",
    "rate_max",
    "check_status",
    "check_code",
    "check_duration",
    "hrsp_1xx",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "hrsp_other",
    "hanafail",
    "req_rate",
    "req_rate_max",
    "req_tot",
    "cli_abrt",
    "srv_abrt",
    "comp_in",
    "comp_out",
    "comp_byp",
    "comp_rsp",
    "lastsess",
    "last_chk",
    "last_agt",
    "qtime",
    "ctime",
    "rtime",
    "ttime",
    "agent_status",
    "agent_code",
    "agent_duration",
    "check_desc",
    "agent_desc",
    "check_rise",
    "check_fall",
    "check_health",
    "agent_rise",
    "agent_fall",
    "agent_health",
    "addr",
    "cookie",
    "mode",
    "algo",
    "conn_rate",
    "conn_rate_max",
    "conn_tot",
    "intercepted",
    "dcon",
    "dses",
    "wrew",
    "connect",
    "reuse",
    "cache_lookups",
    "cache_hits",
    "srv_icur",
    "src_ilim",
    "qtime_max",
    "ctime_max",
    "rtime_max",
    "ttime_max",
    "eint",
    "idle_conn_cur",
    "safe_conn_cur",
    "used_conn_cur",
    "need_conn_est",
    "uweight",
    "agg_server_status",
    "agg_server_check_status",
    "agg_check_status",
];

/// HAProxy's `type` column.
const FRONTEND: u8 = 0;
const BACKEND: u8 = 1;
const SERVER: u8 = 2;

/// One line being filled, column by name.
struct Row([String; COLUMNS.len()]);

impl Row {
    fn new(pxname: &str, svname: &str, kind: u8, iid: usize, sid: usize) -> Row {
        let mut r = Row(std::array::from_fn(|_| String::new()));
        r.set("pxname", pxname);
        r.set("svname", svname);
        r.set("type", kind);
        r.set("pid", 1);
        r.set("iid", iid);
        r.set("sid", sid);
        r
    }

    fn set(&mut self, column: &str, value: impl ToString) {
        let i = COLUMNS
            .iter()
            .position(|c| *c == column)
            .unwrap_or_else(|| panic!("no CSV column {column}"));
        self.0[i] = value.to_string();
    }

    fn responses(&mut self, r: &[u64; 6]) {
        let names = [
            "hrsp_1xx",
            "hrsp_2xx",
            "hrsp_3xx",
            "hrsp_4xx",
            "hrsp_5xx",
            "hrsp_other",
        ];
        for (name, n) in names.iter().zip(r) {
            self.set(name, n);
        }
    }

    fn write(&self, out: &mut String) {
        for field in &self.0 {
            out.push_str(&quote(field));
            out.push(',');
        }
        out.push('\n');
    }
}

/// As HAProxy's `csv_enc`: a field with a comma, quote or line break is
/// quoted, its quotes doubled.
fn quote(field: &str) -> std::borrow::Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\"")).into()
    } else {
        field.into()
    }
}

/// The whole CSV: the header, then every row.
pub fn render(t: &Table) -> String {
    let mut out = String::from("# ");
    let _ = write!(out, "{},", COLUMNS.join(","));
    out.push('\n');
    for (i, f) in t.frontends.iter().enumerate() {
        frontend(f, i + 1).write(&mut out);
    }
    let first = t.frontends.len() + 1;
    for (i, p) in t.pools.iter().enumerate() {
        for (sid, s) in p.servers.iter().enumerate() {
            server(p, s, first + i, sid + 1).write(&mut out);
        }
        backend(p, first + i).write(&mut out);
    }
    out
}

fn frontend(f: &Frontend, iid: usize) -> Row {
    let mut r = Row::new(&f.name, "FRONTEND", FRONTEND, iid, 0);
    r.set("scur", f.scur);
    r.set("stot", f.stot);
    r.set("bin", f.bin);
    r.set("bout", f.bout);
    // HAProxy counts `tcp-request connection` refusals in `dcon` and
    // `http-request deny` in `dreq`: the request-rate limit is the latter.
    let refused = |why: &str| f.refused.iter().find(|(w, _)| *w == why).map_or(0, |r| r.1);
    r.set("dreq", f.denied + refused("http_req_rate"));
    r.set(
        "dcon",
        refused("deny_list") + refused("conn_rate") + refused("conn_cur"),
    );
    r.set("ereq", f.invalid);
    r.set("status", "OPEN");
    r.set("mode", f.mode);
    r.set("conn_tot", f.stot);
    if let Some(l) = f.slim {
        r.set("slim", l);
    }
    if f.mode == "http" {
        r.set("req_tot", f.requests);
        r.responses(&f.responses);
    }
    r
}

/// What a server row and a BACKEND row share.
fn common(r: &mut Row, s: &Server, mode: &str) {
    for (column, n) in [
        ("qcur", s.qcur),
        ("qmax", s.qmax),
        ("scur", s.scur),
        ("smax", s.smax),
        ("stot", s.stot),
        ("bin", s.bin),
        ("bout", s.bout),
        ("econ", s.econ),
        ("eresp", s.eresp),
        ("wretr", s.wretr),
        ("wredis", s.wredis),
        ("weight", s.weight),
        ("act", s.active),
        ("bck", 0),
        ("chkdown", s.chkdown),
        ("lbtot", s.stot),
    ] {
        r.set(column, n);
    }
    if let Some(l) = s.slim {
        r.set("slim", l);
    }
    r.set("mode", mode);
    r.responses(&s.responses);
}

fn server(p: &Pool, s: &Server, iid: usize, sid: usize) -> Row {
    let mut r = Row::new(&p.name, &s.name, SERVER, iid, sid);
    common(&mut r, s, mode(p));
    r.set("status", s.state.to_ascii_uppercase());
    r.set("act", u8::from(s.state != "maint"));
    r.set("downtime", s.downtime);
    r.set("addr", &s.address);
    r.set("uweight", s.weight);
    if let Some(t) = s.lastchg {
        r.set("lastchg", t);
    }
    if let Some(c) = &s.check {
        r.set("check_status", c.status);
        if let Some(code) = c.code {
            r.set("check_code", code);
        }
        if let Some(ms) = c.duration_ms {
            r.set("check_duration", ms.round() as u64);
        }
        r.set("check_desc", c.detail.as_deref().unwrap_or(""));
    }
    r
}

fn backend(p: &Pool, iid: usize) -> Row {
    let mut r = Row::new(&p.name, "BACKEND", BACKEND, iid, 0);
    common(&mut r, &p.total, mode(p));
    r.set("status", p.total.state.to_ascii_uppercase());
    r
}

/// HAProxy's `mode` of a pool: `http` when the proxy serves it, else `l4`.
fn mode(p: &Pool) -> &'static str {
    if p.proxied { "http" } else { "l4" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::stats::table::Check;

    fn table() -> Table {
        let b1 = Server {
            name: "b1".into(),
            address: "192.0.2.1:80".into(),
            state: "drain".into(),
            admin: "drain".into(),
            weight: 3,
            stot: 7,
            responses: [0, 5, 0, 1, 1, 0],
            check: Some(Check {
                status: "L7STS",
                code: Some(503),
                duration_ms: Some(1.6),
                healthy: false,
                detail: Some("http check failed: HTTP 503, \"busy\"".into()),
            }),
            lastchg: Some(12),
            downtime: 4,
            ..Server::default()
        };
        Table {
            time: 0,
            frontends: vec![Frontend {
                name: "main".into(),
                mode: "http",
                scur: 1,
                slim: Some(3000),
                stot: 9,
                bin: 100,
                bout: 200,
                requests: 8,
                responses: [0, 6, 0, 2, 0, 0],
                denied: 1,
                invalid: 0,
                refused: vec![
                    ("deny_list", 2),
                    ("conn_rate", 3),
                    ("conn_cur", 0),
                    ("http_req_rate", 4),
                ],
                packets: 0,
            }],
            pools: vec![Pool {
                name: "web".into(),
                services: vec![],
                proxied: true,
                servers: vec![b1],
                total: Server {
                    name: "BACKEND".into(),
                    state: "up".into(),
                    ..Server::default()
                },
            }],
        }
    }

    fn field<'a>(line: &'a [String], column: &str) -> &'a str {
        &line[COLUMNS.iter().position(|c| *c == column).unwrap()]
    }

    /// Splits a line as a CSV reader would (quotes honoured).
    fn split(line: &str) -> Vec<String> {
        let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    cur.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => out.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        out
    }

    #[test]
    fn rows_as_haproxy_writes_them() {
        let text = render(&table());
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("# pxname,svname,qcur,qmax,scur,"),
            "{}",
            lines[0]
        );
        assert!(lines[0].ends_with(",agg_check_status,"));
        let rows: Vec<Vec<String>> = lines[1..].iter().map(|l| split(l)).collect();
        assert!(rows.iter().all(|r| r.len() == COLUMNS.len()), "{rows:?}");
        let (f, s, b) = (&rows[0], &rows[1], &rows[2]);
        assert_eq!(
            (field(f, "pxname"), field(f, "svname")),
            ("main", "FRONTEND")
        );
        assert_eq!(
            (field(f, "status"), field(f, "type"), field(f, "slim")),
            ("OPEN", "0", "3000")
        );
        assert_eq!((field(f, "req_tot"), field(f, "hrsp_4xx")), ("8", "2"));
        // A deny rule's 1 and the request-rate limit's 4; the lists' and
        // connection limits' 2 + 3 are HAProxy's denied connections.
        assert_eq!((field(f, "dreq"), field(f, "dcon")), ("5", "5"));
        assert_eq!(
            (field(s, "svname"), field(s, "status"), field(s, "type")),
            ("b1", "DRAIN", "2")
        );
        assert_eq!(
            (
                field(s, "weight"),
                field(s, "lastchg"),
                field(s, "downtime")
            ),
            ("3", "12", "4")
        );
        assert_eq!(
            (
                field(s, "check_status"),
                field(s, "check_code"),
                field(s, "check_duration")
            ),
            ("L7STS", "503", "2")
        );
        assert_eq!(
            field(s, "check_desc"),
            "http check failed: HTTP 503, \"busy\""
        );
        assert_eq!(
            (field(s, "addr"), field(s, "hrsp_2xx"), field(s, "iid")),
            ("192.0.2.1:80", "5", "2")
        );
        assert_eq!(
            (field(b, "svname"), field(b, "status"), field(b, "type")),
            ("BACKEND", "UP", "1")
        );
        assert_eq!(field(s, "rate"), "", "what lb does not count stays empty");
    }
}
