//! The kernel side of `via_service`, over rtnetlink: for mark M, the rule
//! `ip rule add pref PRIORITY fwmark M lookup M` and the route
//! `ip route replace SERVICE/32 via BACKEND dev IF src SRC table M`, where
//! IF and SRC are what the main table uses to reach the backend. Marks and
//! tables are lb's own range ([`super::FIRST`], [`super::SLOTS`]), which is
//! how leftovers of an earlier run are recognised.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::{Stream, TryStreamExt as _};
use rtnetlink::{
    Handle, IpVersion, RouteMessageBuilder,
    packet_route::{
        AddressFamily,
        route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType},
        rule::{RuleAction, RuleAttribute, RuleMessage},
    },
};

use super::{Detour, FIRST, PRIORITY, SLOTS};

/// A netlink connection, driven by a task on the current runtime.
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    pub fn open() -> Result<Netlink, String> {
        let (conn, handle, _) =
            rtnetlink::new_connection().map_err(|e| format!("netlink socket: {e}"))?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The route, then the rule that sends mark `mark` to it.
    pub async fn install(&self, mark: u32, d: Detour) -> Result<(), String> {
        let (oif, src) = self.path(d.backend).await?;
        let route = route(mark, d, Some((oif, src)))?;
        self.handle
            .route()
            .add(route)
            .replace()
            .execute()
            .await
            .map_err(|e| format!("adding the route to {} via {}: {e}", d.service, d.backend))?;
        let mut add = self.handle.rule().add();
        *add.message_mut() = rule(mark, d.service.is_ipv6());
        match add.execute().await {
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -libc::EEXIST => Ok(()),
            r => r.map_err(|e| format!("adding the rule for fwmark {mark:#x}: {e}")),
        }
    }

    /// The rule and the route of `mark`.
    pub async fn remove(&self, mark: u32, d: Detour) -> Result<(), String> {
        let rule = self.handle.rule().del(rule(mark, d.service.is_ipv6()));
        let rule = rule.execute().await;
        let route = self
            .handle
            .route()
            .del(route(mark, d, None)?)
            .execute()
            .await;
        rule.and(route)
            .map_err(|e| format!("removing the route to {} via {}: {e}", d.service, d.backend))
    }

    /// Removes every rule and route in lb's range (an earlier run's);
    /// returns how many.
    pub async fn clear(&self) -> Result<usize, String> {
        let mut n = 0;
        for v in [IpVersion::V4, IpVersion::V6] {
            let rules = collect(self.handle.rule().get(v).execute(), rule_table).await?;
            for r in rules {
                self.handle.rule().del(r).execute().await.map_err(text)?;
                n += 1;
            }
        }
        let dumps = [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ];
        for dump in dumps {
            let routes = collect(self.handle.route().get(dump).execute(), route_table).await?;
            for r in routes {
                self.handle.route().del(r).execute().await.map_err(text)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// `ip route get BACKEND`: the interface and source address, which must
    /// reach it directly.
    async fn path(&self, backend: IpAddr) -> Result<(u32, Option<IpAddr>), String> {
        let msg = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(backend, full_prefix(backend))
            .map_err(text)?
            .build();
        let found = self.handle.route().get(msg).execute().try_next().await;
        let r = match found {
            Ok(Some(r)) => r,
            Ok(None) => return Err(format!("no route to {backend}")),
            Err(e) => return Err(format!("no route to {backend}: {e}")),
        };
        if r.header.kind == RouteType::Local {
            return Err(format!("{backend} is a local address"));
        }
        let (mut oif, mut src) = (None, None);
        for a in r.attributes {
            match a {
                RouteAttribute::Oif(i) => oif = Some(i),
                RouteAttribute::PrefSource(a) => src = address(a),
                RouteAttribute::Gateway(g) => {
                    return Err(format!(
                        "{backend} is reached through the gateway {}: via_service needs the \
                         backend on a directly connected network",
                        address(g).map_or_else(|| "?".into(), |g| g.to_string())
                    ));
                }
                _ => {}
            }
        }
        let oif = oif.ok_or_else(|| format!("the route to {backend} names no interface"))?;
        Ok((oif, src))
    }
}

/// The route of `mark`; with `path` (interface, source), as installed,
/// without, enough to delete it.
fn route(
    mark: u32,
    d: Detour,
    path: Option<(u32, Option<IpAddr>)>,
) -> Result<RouteMessage, String> {
    let mut b = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(d.service, full_prefix(d.service))
        .map_err(text)?
        .table_id(mark);
    if let Some((oif, src)) = path {
        b = b.gateway(d.backend).map_err(text)?.output_interface(oif);
        if let Some(src) = src {
            b = b.pref_source(src).map_err(text)?;
        }
    }
    Ok(b.build())
}

/// `pref PRIORITY fwmark MARK lookup MARK`.
fn rule(mark: u32, v6: bool) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.table = RouteHeader::RT_TABLE_UNSPEC;
    m.header.action = RuleAction::ToTable;
    m.attributes = vec![
        RuleAttribute::Priority(PRIORITY),
        RuleAttribute::FwMark(mark),
        RuleAttribute::Table(mark),
    ];
    m
}

fn ours(table: u32) -> bool {
    (FIRST..FIRST + SLOTS).contains(&table)
}

fn rule_table(r: &RuleMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RuleAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table))
}

fn route_table(r: &RouteMessage) -> u32 {
    r.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(r.header.table))
}

/// The messages of a dump whose table is lb's.
async fn collect<M, E: std::fmt::Display>(
    dump: impl Stream<Item = Result<M, E>>,
    table: fn(&M) -> u32,
) -> Result<Vec<M>, String> {
    let all: Vec<M> = dump.try_collect().await.map_err(text)?;
    Ok(all.into_iter().filter(|m| ours(table(m))).collect())
}

fn address(a: RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(a) => Some(a.into()),
        RouteAddress::Inet6(a) => Some(a.into()),
        _ => None,
    }
}

fn full_prefix(a: IpAddr) -> u8 {
    if a.is_ipv4() { 32 } else { 128 }
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}
