//! A router of the bench: lb's agent or keepalived, driven the same way.

use anyhow::{Result, bail};

use crate::vrrp::{Keepalived, LbNode, Pair};
use crate::vrrp_conf::Router;
use crate::vrrp_probe::Listener;

pub enum Daemon {
    Lb(LbNode),
    Keepalived { k: Keepalived, _listener: Listener },
}

impl Daemon {
    /// `implementation` (`lb` or `keepalived`) on node `n` as `r` says.
    pub fn launch(implementation: &str, pair: &Pair, n: usize, r: &Router) -> Result<Daemon> {
        let ns = pair.node(n);
        Ok(match implementation {
            "lb" => Daemon::Lb(LbNode::start(ns, &r.lb_yaml(&pair.lab))?),
            "keepalived" => Daemon::Keepalived {
                k: Keepalived::start(ns, &r.keepalived_conf())?,
                _listener: Listener::start(ns, 80),
            },
            other => bail!("no router implementation {other}"),
        })
    }

    /// SIGTERM: both resign with a priority-0 advert.
    pub fn stop_graceful(&mut self) -> Result<()> {
        match self {
            Daemon::Lb(n) => n.stop(libc::SIGTERM),
            Daemon::Keepalived { k, .. } => k.stop(),
        }
    }

    /// `kill -9` of what speaks VRRP: lb's agent, keepalived's VRRP child.
    pub fn kill9(&mut self) -> Result<()> {
        match self {
            Daemon::Lb(n) => n.stop(libc::SIGKILL),
            Daemon::Keepalived { k, .. } => k.kill_vrrp().map(drop),
        }
    }

    /// Starts it again after a stop.
    pub fn restart(&mut self) -> Result<()> {
        match self {
            Daemon::Lb(n) => n.spawn(),
            Daemon::Keepalived { k, .. } => k.spawn(),
        }
    }

    /// After a kill -9: lb's agent is started again; keepalived's parent
    /// has respawned its VRRP child already.
    pub fn recover(&mut self) -> Result<()> {
        match self {
            Daemon::Lb(n) => n.spawn(),
            Daemon::Keepalived { .. } => Ok(()),
        }
    }
}
