//! Next hops for DR backends, off the reconciler's thread: resolving them on
//! request (ARP/NDP when the neighbour table has nothing), and following the
//! kernel's neighbour table so a backend whose MAC changes keeps receiving.

use std::{net::IpAddr, time::Duration};

use futures_util::{StreamExt as _, future::join_all};
use rtnetlink::{
    constants::RTMGRP_NEIGH,
    packet_core::NetlinkPayload,
    packet_route::{
        RouteNetlinkMessage,
        neighbour::{NeighbourMessage, NeighbourState},
    },
    sys::{AsyncSocket as _, SocketAddr},
};
use tokio::sync::mpsc;

use super::Msg;
use crate::{
    desired::{NextHops, Target},
    neigh::{self, Resolver},
};

/// How long one resolution may take.
const WAIT: Duration = Duration::from_secs(3);

/// Resolves each batch of targets concurrently and hands the results to the
/// reconciler as one [`Msg::NextHops`].
pub async fn resolver(
    mut jobs: mpsc::UnboundedReceiver<Vec<Target>>,
    to_reconciler: std::sync::mpsc::Sender<Msg>,
) {
    let resolver = match Resolver::new() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot open a netlink socket: backends stay unresolved (down)");
            return;
        }
    };
    while let Some(batch) = jobs.recv().await {
        let results = join_all(batch.into_iter().map(|t| {
            let r = resolver.clone();
            async move {
                let hop = r
                    .next_hop(t.addr, t.interface.as_deref(), t.mac, WAIT)
                    .await;
                (t.addr, hop.map_err(|e| e.to_string()))
            }
        }))
        .await;
        let hops: NextHops = results.into_iter().collect();
        if to_reconciler.send(Msg::NextHops(hops)).is_err() {
            return;
        }
    }
}

/// A change the kernel announced in its neighbour table.
#[derive(Clone, Copy, Debug)]
pub struct NeighbourEvent {
    pub ifindex: u32,
    pub addr: IpAddr,
    /// The new MAC, or `None` when the entry went away or failed.
    pub mac: Option<[u8; 6]>,
}

fn event(n: &NeighbourMessage, deleted: bool) -> Option<NeighbourEvent> {
    let (addr, mac) = neigh::entry(&n.attributes);
    let usable = !deleted && neigh::usable(n.header.state);
    // Incomplete entries (resolution in progress) say nothing yet.
    if !deleted && n.header.state == NeighbourState::Incomplete {
        return None;
    }
    Some(NeighbourEvent {
        ifindex: n.header.ifindex,
        addr: addr?,
        mac: if usable { mac } else { None },
    })
}

/// Follows `RTNLGRP_NEIGH` and forwards every change to the reconciler, which
/// keeps those about its backends.
pub async fn watch(to_reconciler: std::sync::mpsc::Sender<Msg>) {
    let (mut conn, _handle, mut messages) = match rtnetlink::new_connection() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot follow the neighbour table: backend MAC changes will be missed");
            return;
        }
    };
    if let Err(e) = conn
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, RTMGRP_NEIGH))
    {
        tracing::error!(error = %e, "cannot subscribe to neighbour events: backend MAC changes will be missed");
        return;
    }
    tokio::spawn(conn);
    while let Some((msg, _)) = messages.next().await {
        let ev = match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => event(&n, false),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelNeighbour(n)) => event(&n, true),
            _ => None,
        };
        if let Some(ev) = ev
            && to_reconciler.send(Msg::Neighbour(ev)).is_err()
        {
            return;
        }
    }
}
