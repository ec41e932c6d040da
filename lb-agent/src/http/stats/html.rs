//! The page itself: HAProxy's stats page in plain HTML, one table for the
//! frontends and one per pool, colour by state, readable on a phone (the
//! tables scroll sideways), no script and no outside asset. An admin gets a
//! form per server (drain, enable, maint, set weight) that posts back to the
//! page; a reader gets none.
//!
//! Tests and browsers rely on: `<tr class="server" data-pool data-server
//! data-state>`, `<form method="post" class="admin">` with a hidden `csrf`
//! input and `<button name="action" value="drain|enable|maint|set-weight"
//! data-pool data-server>`, and "lb statistics" in the title.

use std::fmt::Write as _;
use std::time::Duration;

use super::table::{Frontend, Pool, Server, Table};

/// What the page needs besides the table.
pub struct Page<'a> {
    pub uri: &'a str,
    pub refresh: Duration,
    /// The agent's version, unless `hide_version`.
    pub version: Option<&'a str>,
    pub user: Option<&'a str>,
    /// The admin's CSRF token; `None`: no forms.
    pub csrf: Option<&'a str>,
    /// What the last action did, already checked against the table.
    pub notice: Option<String>,
}

const STYLE: &str = "body{font-family:sans-serif;margin:.5em;font-size:14px}\
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;margin:1em 0 .3em}\
.info,.notice{margin:.3em 0}.notice{background:#ffd;border:1px solid #cc8;padding:.3em}\
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}\
table{border-collapse:collapse}th,td{border:1px solid #999;padding:2px 5px;white-space:nowrap;text-align:right}\
th{background:#446;color:#fff}td:first-child,th:first-child{text-align:left;position:sticky;left:0;background:inherit}\
tr{background:#fff}tr[data-state=up]{background:#c0f0c0}tr[data-state=drain]{background:#a0c0f0}\
tr[data-state=down]{background:#f0a0a0}tr[data-state=maint]{background:#d0d0d0}\
tr.backend,tr.frontend{font-weight:bold}form.admin{display:inline;margin:0 2px}\
form.admin input[type=number]{width:4.5em}small{font-weight:normal}";

/// The whole HTML document.
pub fn render(t: &Table, p: &Page<'_>) -> String {
    let mut o = String::with_capacity(16 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    if !p.refresh.is_zero() {
        let _ = writeln!(
            o,
            "<meta http-equiv=\"refresh\" content=\"{}\">",
            p.refresh.as_secs()
        );
    }
    let _ = writeln!(
        o,
        "<title>lb statistics</title><style>{STYLE}</style></head><body>"
    );
    o.push_str("<h1>lb statistics</h1>\n<p class=\"info\">");
    if let Some(v) = p.version {
        let _ = write!(o, "lb {} &middot; ", esc(v));
    }
    if let Some(u) = p.user {
        let role = if p.csrf.is_some() {
            "admin"
        } else {
            "read-only"
        };
        let _ = write!(o, "user {} ({role}) &middot; ", esc(u));
    }
    if !p.refresh.is_zero() {
        let _ = write!(o, "refresh {}s &middot; ", p.refresh.as_secs());
    }
    let uri = esc(p.uri);
    let _ = writeln!(
        o,
        "<a href=\"{uri}\">reload</a> &middot; <a href=\"{uri};csv\">CSV</a> &middot; <a href=\"{uri};json\">JSON</a></p>"
    );
    if let Some(n) = &p.notice {
        let _ = writeln!(o, "<p class=\"notice\">{}</p>", esc(n));
    }
    frontends(&mut o, &t.frontends);
    for pool in &t.pools {
        pool_table(&mut o, pool, p);
    }
    o.push_str("</body></html>\n");
    o
}

fn frontends(o: &mut String, list: &[Frontend]) {
    o.push_str("<h2>Frontends and services</h2><div class=\"scroll\"><table>\n<tr><th>Name</th><th>Mode</th><th>Status</th><th>Sessions cur</th><th>limit</th><th>total</th><th>Bytes in</th><th>out</th><th>Requests</th><th>1xx</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>other</th><th>Denied</th><th>Refused</th><th>Invalid</th><th>Packets</th></tr>\n");
    for f in list {
        let _ = write!(
            o,
            "<tr class=\"frontend\" data-frontend=\"{}\" data-state=\"up\"><td>{}</td><td>{}</td><td>OPEN</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&f.name),
            esc(&f.name),
            f.mode,
            f.scur,
            opt(f.slim),
            f.stot,
            f.bin,
            f.bout,
            f.requests
        );
        for n in f.responses {
            let _ = write!(o, "<td>{n}</td>");
        }
        let _ = writeln!(
            o,
            "<td>{}</td><td class=\"refused\">{}</td><td>{}</td><td>{}</td></tr>",
            f.denied,
            refused(&f.refused),
            f.invalid,
            f.packets
        );
    }
    o.push_str("</table></div>\n");
}

/// Refusals by reason, the reasons that refused anything: `conn_rate 3,
/// http_req_rate 12`; `0` when none did.
fn refused(by: &[(&'static str, u64)]) -> String {
    let parts: Vec<String> = by
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(why, n)| format!("{why} {n}"))
        .collect();
    if parts.is_empty() {
        "0".to_owned()
    } else {
        parts.join(", ")
    }
}

const POOL_HEAD: &str = "<tr><th>Server</th><th>Status</th><th>Check</th><th>Weight</th><th>Queue cur</th><th>max</th><th>Sessions cur</th><th>max</th><th>limit</th><th>total</th><th>Bytes in</th><th>out</th><th>1xx</th><th>2xx</th><th>3xx</th><th>4xx</th><th>5xx</th><th>other</th><th>Conn errors</th><th>Resp errors</th><th>Retries</th><th>Redisp</th><th>L4 flows</th><th>L4 packets</th><th>Last change</th><th>Downtime</th><th>Chk down</th><th>Admin</th></tr>\n";

fn pool_table(o: &mut String, pool: &Pool, p: &Page<'_>) {
    let mut used: Vec<String> = pool
        .services
        .iter()
        .map(|s| format!("service {s}"))
        .collect();
    if pool.proxied {
        used.push("the L7 proxy".into());
    }
    let _ = writeln!(
        o,
        "<h2 id=\"pool-{n}\">Pool {n} <small>{}</small></h2><div class=\"scroll\"><table>",
        esc(&used.join(", ")),
        n = esc(&pool.name)
    );
    o.push_str(POOL_HEAD);
    for s in &pool.servers {
        let _ = write!(
            o,
            "<tr class=\"server\" data-pool=\"{}\" data-server=\"{}\" data-state=\"{}\">",
            esc(&pool.name),
            esc(&s.name),
            esc(&s.state)
        );
        cells(o, s, true);
        o.push_str("<td>");
        let _ = write!(o, "{}", esc(&s.admin));
        if let Some(token) = p.csrf {
            forms(o, p.uri, token, &pool.name, s);
        }
        o.push_str("</td></tr>\n");
    }
    let _ = write!(
        o,
        "<tr class=\"backend\" data-pool=\"{}\" data-state=\"{}\">",
        esc(&pool.name),
        esc(&pool.total.state)
    );
    cells(o, &pool.total, false);
    o.push_str("<td></td></tr>\n</table></div>\n");
}

/// Every cell of a row but the admin one.
fn cells(o: &mut String, s: &Server, server: bool) {
    let status = match &s.reason {
        Some(r) => format!(
            "{} <small>({})</small>",
            esc(&s.state.to_ascii_uppercase()),
            esc(r)
        ),
        None => esc(&s.state.to_ascii_uppercase()),
    };
    let check = match &s.check {
        Some(c) => {
            let ms = c
                .duration_ms
                .map(|d| format!(" in {d:.0}ms"))
                .unwrap_or_default();
            let code = c.code.map(|c| format!(" {c}")).unwrap_or_default();
            format!(
                "<span title=\"{}\">{}{code}{ms}</span>",
                esc(c.detail.as_deref().unwrap_or("")),
                c.status
            )
        }
        None => String::new(),
    };
    let name = if server {
        format!("{} <small>{}</small>", esc(&s.name), esc(&s.address))
    } else {
        "Backend".into()
    };
    let _ = write!(
        o,
        "<td>{name}</td><td>{status}</td><td>{check}</td><td>{}</td>",
        s.weight
    );
    for n in [s.qcur, s.qmax, s.scur, s.smax] {
        let _ = write!(o, "<td>{n}</td>");
    }
    let _ = write!(
        o,
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        opt(s.slim),
        s.stot,
        s.bin,
        s.bout
    );
    for n in s.responses.iter().chain(&[
        s.econ,
        s.eresp,
        s.wretr,
        s.wredis,
        s.l4.new_flows,
        s.l4.packets,
    ]) {
        let _ = write!(o, "<td>{n}</td>");
    }
    let last = s.lastchg.map(duration).unwrap_or_default();
    let down = if server {
        duration(s.downtime)
    } else {
        String::new()
    };
    let _ = write!(o, "<td>{last}</td><td>{down}</td><td>{}</td>", s.chkdown);
}

/// The admin's forms for one server: a state button each, and a weight.
fn forms(o: &mut String, uri: &str, token: &str, pool: &str, s: &Server) {
    let hidden = format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"pool\" value=\"{}\"><input type=\"hidden\" name=\"server\" value=\"{}\">",
        esc(token),
        esc(pool),
        esc(&s.name)
    );
    let data = format!(
        "data-pool=\"{}\" data-server=\"{}\"",
        esc(pool),
        esc(&s.name)
    );
    let _ = write!(
        o,
        "<form method=\"post\" class=\"admin\" action=\"{}\">{hidden}",
        esc(uri)
    );
    for (value, label) in [("enable", "Enable"), ("drain", "Drain"), ("maint", "Maint")] {
        let _ = write!(
            o,
            "<button type=\"submit\" name=\"action\" value=\"{value}\" {data}>{label}</button>"
        );
    }
    let _ = write!(
        o,
        "</form><form method=\"post\" class=\"admin\" action=\"{}\">{hidden}<input type=\"number\" name=\"weight\" min=\"0\" max=\"{}\" value=\"{}\" aria-label=\"weight\"><button type=\"submit\" name=\"action\" value=\"set-weight\" {data}>Set weight</button></form>",
        esc(uri),
        lb_config::MAX_WEIGHT,
        s.weight
    );
}

fn opt(n: Option<u32>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
}

/// `1d2h`, `3h4m`, `5m6s`, `7s`: HAProxy's way of showing durations.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m{s}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// Escapes text for an element or a quoted attribute.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let server = |name: &str, state: &str| Server {
            name: name.into(),
            address: "192.0.2.1:80".into(),
            state: state.into(),
            admin: "up".into(),
            weight: 1,
            ..Server::default()
        };
        Table {
            time: 0,
            frontends: vec![],
            pools: vec![Pool {
                name: "web<1>".into(),
                services: vec!["vip".into()],
                proxied: true,
                servers: vec![server("b1", "up"), server("b2", "drain")],
                total: server("BACKEND", "up"),
            }],
        }
    }

    fn page<'a>(csrf: Option<&'a str>) -> Page<'a> {
        Page {
            uri: "/haproxy-status",
            refresh: Duration::from_secs(30),
            version: None,
            user: Some("guest"),
            csrf,
            notice: None,
        }
    }

    #[test]
    fn rows_carry_the_contract_and_readers_get_no_forms() {
        let html = render(&table(), &page(None));
        assert!(html.contains("<title>lb statistics</title>"));
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"30\">"));
        assert!(html.contains("<tr class=\"server\" data-pool=\"web&lt;1&gt;\" data-server=\"b2\" data-state=\"drain\">"), "{html}");
        assert!(!html.contains("<form"), "a reader gets no form");
        let html = render(&table(), &page(Some("t0ken")));
        assert_eq!(
            html.matches("<form method=\"post\" class=\"admin\"")
                .count(),
            4
        );
        assert_eq!(
            html.matches("<input type=\"hidden\" name=\"csrf\" value=\"t0ken\">")
                .count(),
            4
        );
        assert!(html.contains("<button type=\"submit\" name=\"action\" value=\"drain\" data-pool=\"web&lt;1&gt;\" data-server=\"b1\">"));
        assert!(
            html.contains("value=\"set-weight\" data-pool=\"web&lt;1&gt;\" data-server=\"b2\"")
        );
    }

    #[test]
    fn refusals_are_shown_by_reason() {
        assert_eq!(refused(&[("deny_list", 0), ("conn_rate", 0)]), "0");
        assert_eq!(
            refused(&[("deny_list", 0), ("conn_rate", 3), ("http_req_rate", 12)]),
            "conn_rate 3, http_req_rate 12"
        );
    }

    #[test]
    fn durations_as_haproxy_shows_them() {
        assert_eq!(duration(7), "7s");
        assert_eq!(duration(306), "5m6s");
        assert_eq!(duration(3 * 3600 + 240), "3h4m");
        assert_eq!(duration(86400 + 7200), "1d2h");
    }
}
