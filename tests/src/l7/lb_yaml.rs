//! A [`Setup`] as lb's configuration (everything after `agent:`), key for
//! key as docs/proxy.md maps haproxy.cfg's lines; strings are written as
//! JSON strings, which YAML reads as double-quoted scalars.

use std::fmt::Write as _;
use std::net::SocketAddr;

use super::setup::{Backend, Cookie, Defaults, ForwardFor, Frontend, Setup, ms};

/// `proxy:`, `pools:` and `frontends:` for `setup`; frontend `i` binds
/// `binds[i]`.
pub fn render(setup: &Setup, binds: &[SocketAddr]) -> String {
    let mut s = format!("proxy:\n  maxconn: {}\n", setup.maxconn);
    defaults(&mut s, &setup.defaults);
    s.push_str("pools:\n");
    for b in &setup.backends {
        pool(&mut s, b);
    }
    s.push_str("frontends:\n");
    for (f, bind) in setup.frontends.iter().zip(binds) {
        frontend(&mut s, f, *bind);
    }
    s
}

fn q(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn defaults(s: &mut String, d: &Defaults) {
    let t = &d.timeouts;
    let _ = write!(
        s,
        "  defaults:\n    maxconn: {}\n    retries: {}\n    redispatch: {}\n\
         \x20   abortonclose: {}\n    http_server_close: {}\n\
         \x20   timeout: {{http_request: {}ms, http_keep_alive: {}ms, client: {}ms, \
         connect: {}ms, server: {}ms, queue: {}ms}}\n",
        d.maxconn,
        d.retries,
        d.redispatch,
        d.abortonclose,
        d.http_server_close,
        ms(t.http_request),
        ms(t.http_keep_alive),
        ms(t.client),
        ms(t.connect),
        ms(t.server),
        ms(t.queue),
    );
    let _ = writeln!(s, "    forwardfor: {}", forwardfor(d.forwardfor.as_ref()));
    let _ = writeln!(s, "    cookie: {}", cookie(d.cookie.as_ref()));
    if let Some(addr) = d.log {
        let _ = write!(
            s,
            "    log: [{{address: {}, facility: local2, level: info}}]\n    httplog: true\n",
            q(&addr.to_string())
        );
    }
}

fn forwardfor(f: Option<&ForwardFor>) -> String {
    let Some(f) = f else {
        return "false".into();
    };
    let mut parts = Vec::new();
    if let Some(net) = &f.except {
        parts.push(format!("except: {}", q(net)));
    }
    if let Some(h) = &f.header {
        parts.push(format!("header: {}", q(h)));
    }
    if parts.is_empty() {
        "true".into()
    } else {
        format!("{{{}}}", parts.join(", "))
    }
}

fn cookie(c: Option<&Cookie>) -> String {
    let Some(c) = c else {
        return "false".into();
    };
    format!(
        "{{name: {}, mode: {}, indirect: {}, nocache: {}, httponly: {}, secure: {}}}",
        q(&c.name),
        c.mode.word(),
        c.indirect,
        c.nocache,
        c.httponly,
        c.secure
    )
}

fn pool(s: &mut String, b: &Backend) {
    let _ = write!(
        s,
        "  {}:\n    balance: {}\n    hash_type: {}\n",
        b.name,
        q(&b.balance.lb()),
        if b.consistent {
            "consistent"
        } else {
            "map-based"
        }
    );
    if let Some(c) = &b.cookie {
        let _ = writeln!(s, "    cookie: {}", cookie(Some(c)));
    }
    if let Some(n) = b.retries {
        let _ = writeln!(s, "    retries: {n}");
    }
    if let Some(r) = b.redispatch {
        let _ = writeln!(s, "    redispatch: {r}");
    }
    let timeouts: Vec<String> = [
        (b.connect, "connect"),
        (b.server_timeout, "server"),
        (b.queue, "queue"),
    ]
    .iter()
    .filter_map(|(t, name)| t.map(|t| format!("{name}: {}ms", ms(t))))
    .collect();
    if !timeouts.is_empty() {
        let _ = writeln!(s, "    timeout: {{{}}}", timeouts.join(", "));
    }
    if let Some(c) = &b.check {
        let _ = writeln!(
            s,
            "    check: {{type: tcp, inter: {}ms, rise: {}, fall: {}}}",
            ms(c.inter),
            c.rise,
            c.fall
        );
    }
    s.push_str("    backends:\n");
    for srv in &b.servers {
        let _ = write!(
            s,
            "      - {{name: {}, address: {}, port: {}",
            q(&srv.name),
            srv.addr.ip(),
            srv.addr.port()
        );
        if let Some(w) = srv.weight {
            let _ = write!(s, ", weight: {w}");
        }
        if let Some(c) = &srv.cookie {
            let _ = write!(s, ", cookie: {}", q(c));
        }
        if let Some(n) = srv.maxconn {
            let _ = write!(s, ", maxconn: {n}");
        }
        if srv.maint {
            s.push_str(", state: maint");
        }
        s.push_str("}\n");
    }
}

fn frontend(s: &mut String, f: &Frontend, bind: SocketAddr) {
    let _ = write!(s, "  {}:\n    bind: {}\n", f.name, q(&bind.to_string()));
    if let Some(n) = f.maxconn {
        let _ = writeln!(s, "    maxconn: {n}");
    }
    if let Some(fwd) = &f.forwardfor {
        let _ = writeln!(s, "    forwardfor: {}", forwardfor(Some(fwd)));
    }
    if !f.acls.is_empty() {
        s.push_str("    acl:\n");
        let mut names: Vec<&str> = Vec::new();
        for (name, _) in &f.acls {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
        for name in names {
            let _ = writeln!(s, "      {name}:");
            for (_, line) in f.acls.iter().filter(|(n, _)| n == name) {
                let _ = writeln!(s, "        - {}", q(line));
            }
        }
    }
    if !f.use_backend.is_empty() {
        s.push_str("    use_backend:\n");
        for rule in &f.use_backend {
            let _ = writeln!(s, "      - {}", q(rule));
        }
    }
    let _ = writeln!(s, "    default_backend: {}", f.default_backend);
}

#[cfg(test)]
mod tests {
    use super::super::setup::{Balance, Server};
    use super::*;

    #[test]
    fn the_seeds_frontend_reads_as_docs_proxy_md_writes_it() {
        let web = Backend::new(
            "web",
            Balance::RoundRobin,
            vec![Server::new("web1", "127.0.0.1:9001".parse().unwrap()).cookie("server1")],
        );
        let mut main = Frontend::to("main", "web");
        main.acls
            .push(("url_static".into(), "path_beg -i /static".into()));
        main.use_backend.push("static if url_static".into());
        let setup = Setup {
            maxconn: 4000,
            threads: None,
            defaults: Defaults::seed(),
            frontends: vec![main],
            backends: vec![web],
        };
        let y = render(&setup, &["127.0.0.1:8080".parse().unwrap()]);
        assert!(
            y.contains("    forwardfor: {except: \"127.0.0.0/8\"}\n"),
            "{y}"
        );
        assert!(
            y.contains("cookie: {name: \"SERVERID\", mode: read,"),
            "{y}"
        );
        assert!(
            y.contains("      url_static:\n        - \"path_beg -i /static\"\n"),
            "{y}"
        );
        assert!(y.contains("      - \"static if url_static\"\n"), "{y}");
        assert!(
            y.contains("- {name: \"web1\", address: 127.0.0.1, port: 9001, cookie: \"server1\"}"),
            "{y}"
        );
    }
}
