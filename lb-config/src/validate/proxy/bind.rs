//! Frontends' `bind:` addresses, and what may not share them: another
//! bind (in any frontend), the agent's own listeners, and an L4 service,
//! whose packets the data path takes before the kernel's sockets see them.

use std::net::{IpAddr, SocketAddr};

use super::raw::OneOrMore;
use crate::diagnostic::Problems;
use crate::model::{AgentConfig, Protocol, ServiceConfig};
use crate::positions::YamlPath;
use crate::proxy::Bind;

/// One bind of one frontend, where it is written.
pub(super) struct Placed {
    pub frontend: String,
    pub bind: Bind,
    pub at: YamlPath,
}

/// `bind:` (one or a list), each address parsed; unusable ones reported
/// and left out.
pub(super) fn binds(raw: OneOrMore, at: &YamlPath, p: &mut Problems) -> Vec<(Bind, YamlPath)> {
    let entries: Vec<(Option<String>, YamlPath)> = match raw {
        OneOrMore::One(s) => vec![(Some(s), at.clone())],
        OneOrMore::List(list) if list.is_empty() => {
            p.error(at, "`bind` has no address: give at least one (e.g. `*:80`)");
            Vec::new()
        }
        OneOrMore::List(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, each)| {
                let at = at.index(i);
                (each.parse(&at, p).map(|(s, _)| s), at)
            })
            .collect(),
    };
    let mut out = Vec::new();
    for (text, at) in entries {
        match text.map(|t| t.parse::<Bind>()) {
            Some(Ok(b)) => out.push((b, at)),
            Some(Err(why)) => p.error(&at, why),
            None => {}
        }
    }
    out
}

/// No two binds overlap; none is an agent listener; none is a service's.
pub(super) fn check_binds(
    all: &[Placed],
    agent: &AgentConfig,
    services: &[ServiceConfig],
    p: &mut Problems,
) {
    for (i, b) in all.iter().enumerate() {
        if let Some(first) = all[..i].iter().find(|a| a.bind.overlaps(b.bind.addr)) {
            let line = p.line_of(&first.at);
            let how = if first.bind == b.bind {
                "is also"
            } else {
                "overlaps"
            };
            p.error(
                &b.at,
                format!(
                    "`{}` {how} `{}` of frontend `{}` (line {line}); a wildcard takes every \
                     address of its family on its port",
                    b.bind, first.bind, first.frontend
                ),
            );
        }
        for (key, addr) in [
            ("metrics_listen", agent.metrics_listen),
            ("api_listen", agent.api_listen),
        ] {
            if let Some(addr) = addr.filter(|a| covers(&b.bind, *a)) {
                p.error(
                    &b.at,
                    format!(
                        "`{}` takes agent.{key} ({addr}): give one of them another port",
                        b.bind
                    ),
                );
            }
        }
        for svc in services.iter().filter(|s| s.protocol == Protocol::Tcp) {
            service_clash(b, svc, p);
        }
    }
}

/// Whether `bind` would take connections to the agent's listener `addr`;
/// an agent listening on `[::]` takes IPv4 too (Linux's dual stack).
fn covers(bind: &Bind, addr: SocketAddr) -> bool {
    let dual = match addr.ip() {
        IpAddr::V6(v6) if v6.is_unspecified() => Some(SocketAddr::new(
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            addr.port(),
        )),
        _ => None,
    };
    bind.overlaps(addr) || dual.is_some_and(|d| bind.overlaps(d))
}

/// A service's address and port go to the data path first: a bind equal
/// to it never gets a connection (error); a wildcard loses just those
/// (warning).
fn service_clash(b: &Placed, svc: &ServiceConfig, p: &mut Problems) {
    let port = b.bind.addr.port();
    if svc.port != 0 && svc.port != port {
        return;
    }
    let vip = SocketAddr::new(svc.address, port);
    if b.bind.addr == vip {
        p.error(
            &b.at,
            format!(
                "`{}` is what service `{}` serves in the data path ({}), so this frontend would \
                 never get a connection: give it another address or port",
                b.bind,
                svc.name,
                svc.key()
            ),
        );
    } else if b.bind.overlaps(vip) {
        p.warning(
            &b.at,
            format!(
                "connections to {vip} go to service `{}` in the data path, not to this frontend \
                 (`{}` gets the other addresses)",
                svc.name, b.bind
            ),
        );
    }
}
