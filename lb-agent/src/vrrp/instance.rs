//! One instance's task: its socket, its machine, its addresses. Packets
//! are validated and fed to the machine, timers fire when it says, tracking
//! moves its priority or puts it in FAULT, and every transition is written
//! to the status board, published as a `vrrp` event, told to its sync group
//! and to its notify scripts.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use lb_api::events::EventKind;
use lb_api::vrrp::VrrpTransition;
use lb_config::vrrp::{VrrpConfig, VrrpInstance};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::addresses::Addresses;
use super::codec::{AUTH_NONE, AUTH_PASS, Advert, password};
use super::group::Group;
use super::io::{Packet, VrrpSocket};
use super::machine::{Action, Input, Machine, State};
use super::notify::Notifier;
use super::status;
use super::supervisor::{Resign, Watchdog};
use super::track::{self, Facts};
use super::validate::{Expect, Reason, Received, Verdict};
use crate::events::EventBus;

/// A refusal is logged once per reason in this long.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Instance {
    pub cfg: VrrpInstance,
    pub all: Arc<VrrpConfig>,
    pub machine: Machine,
    pub socket: VrrpSocket,
    pub addresses: Addresses,
    pub expect: Expect,
    /// The group, or the unicast peers.
    pub dsts: Vec<IpAddr>,
    pub ifindex: u32,
    pub row: usize,
    pub events: EventBus,
    pub notifier: Notifier,
    pub group: Option<Group>,
    pub watchdog: Option<Arc<Watchdog>>,
    pub epoch: Instant,
    /// Next round of gratuitous ARP / NA while master.
    pub garp_at: Option<Instant>,
    pub fault: Option<String>,
    pub logged: Vec<(Reason, Instant)>,
}

impl Instance {
    pub async fn run(mut self, mut facts: watch::Receiver<Facts>, mut stop: watch::Receiver<bool>) {
        let now = facts.borrow_and_update().clone();
        self.track(&now).await;
        self.feed(Input::Startup).await;
        let mut group_rx = self.group.as_ref().map(Group::subscribe);
        loop {
            let deadline = self.machine.deadline().map(|d| self.epoch + d);
            tokio::select! {
                r = self.socket.recv() => match r {
                    Ok(p) => self.packet(p).await,
                    Err(e) => {
                        tracing::warn!(instance = %self.cfg.name, "vrrp socket: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = sleep_until(deadline) => self.feed(Input::Tick).await,
                Ok(()) = facts.changed() => {
                    let f = facts.borrow_and_update().clone();
                    self.track(&f).await;
                }
                Some(m) = recv_group(&mut group_rx) => {
                    let input = self.group.as_ref().and_then(|g| g.follow(&self.cfg.name, &m));
                    if let Some(i) = input {
                        self.feed(i).await;
                    }
                }
                () = sleep_until(self.garp_at) => self.garp_round(),
                _ = stop.changed() => {
                    self.feed(Input::Shutdown).await;
                    // notify_stop runs before the agent goes.
                    self.notifier.finish().await;
                    return;
                }
            }
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    async fn feed(&mut self, input: Input) {
        let actions = self.machine.step(self.now(), input);
        for a in actions {
            self.perform(a).await;
        }
    }

    async fn perform(&mut self, a: Action) {
        match a {
            Action::Send(priority) => self.send(priority).await,
            Action::TakeOver => self.take_over(),
            Action::Release => self.release(),
            Action::Transition { from, to, why } => self.transition(from, to, why),
        }
    }

    /// This instance's advert with `priority`, for `dst`.
    fn advert(&self, priority: u8, dst: IpAddr) -> Vec<u8> {
        let c = &self.cfg;
        let auth_data = c.auth_pass.as_deref().map_or([0; 8], password);
        let interval = match c.version.number() {
            2 => c.advert_int.as_secs() as u16,
            _ => (c.advert_int.as_millis() / 10) as u16,
        };
        Advert {
            version: c.version.number(),
            vrid: c.vrid,
            priority,
            interval,
            auth_type: if c.auth_pass.is_some() {
                AUTH_PASS
            } else {
                AUTH_NONE
            },
            auth_data,
            addresses: c.addresses.iter().map(|a| a.address).collect(),
        }
        .encode(self.socket.source(), dst)
    }

    async fn send(&mut self, priority: u8) {
        for dst in self.dsts.clone() {
            let bytes = self.advert(priority, dst);
            match self.socket.send(&bytes, dst).await {
                Ok(()) => status::update(self.row, |r| r.adverts_sent += 1),
                Err(e) => {
                    tracing::warn!(instance = %self.cfg.name, %dst, "sending a VRRP advert: {e}")
                }
            }
        }
    }

    fn take_over(&mut self) {
        if let Some(w) = &self.watchdog {
            let r = Resign {
                ifname: self.cfg.interface.clone(),
                ifindex: self.ifindex,
                src: self.socket.source(),
                adverts: self.dsts.iter().map(|d| (*d, self.advert(0, *d))).collect(),
            };
            w.master(&self.cfg.name, &r);
        }
        if let Err(e) = self.addresses.add() {
            tracing::error!(instance = %self.cfg.name, "{e}");
        }
        self.announce();
        let g = self.cfg.garp;
        let next = if g.delay.is_zero() {
            g.refresh
        } else {
            g.delay
        };
        self.garp_at = (!next.is_zero()).then(|| Instant::now() + next);
    }

    fn release(&mut self) {
        self.garp_at = None;
        if let Err(e) = self.addresses.remove() {
            tracing::error!(instance = %self.cfg.name, "{e}");
        }
        if let Some(w) = &self.watchdog {
            w.not_master(&self.cfg.name);
        }
    }

    fn announce(&self) {
        if let Err(e) = self.addresses.announce(self.cfg.garp.repeat) {
            tracing::warn!(instance = %self.cfg.name, "announcing the addresses: {e}");
        }
    }

    fn garp_round(&mut self) {
        self.announce();
        let refresh = self.cfg.garp.refresh;
        self.garp_at = (!refresh.is_zero()).then(|| Instant::now() + refresh);
    }

    fn transition(&mut self, from: State, to: State, why: String) {
        let priority = self.machine.priority();
        tracing::info!(instance = %self.cfg.name, "({}) entering {} state: {why}", self.cfg.name, to.keepalived());
        let record = VrrpTransition {
            time_ms: unix_ms(),
            from,
            to,
            reason: why.clone(),
        };
        let master = self.master_now(to);
        status::update(self.row, |r| {
            r.state = to;
            r.last_transition = Some(record);
            r.master = master.map(|m| m.0);
            r.master_priority = master.map(|m| m.1);
        });
        self.events.publish(EventKind::Vrrp {
            instance: self.cfg.name.clone(),
            from,
            to,
            priority,
            reason: why,
        });
        self.notifier
            .transition(&self.cfg.name, &self.cfg.notify, to, priority);
        if let Some(g) = &self.group {
            g.moved(&self.cfg.name, from, to);
        }
    }

    fn master_now(&self, state: State) -> Option<(IpAddr, u8)> {
        match state {
            State::Master => Some((self.socket.source(), self.machine.priority())),
            _ => self.machine.master(),
        }
    }

    async fn packet(&mut self, p: Packet) {
        let rx = Received {
            bytes: &p.bytes,
            src: p.src,
            dst: p.dst,
            ttl: p.ttl,
        };
        match self.expect.check(&rx) {
            Verdict::NotOurs => {}
            Verdict::Reject(why, text) => self.refused(why, &text),
            Verdict::Accept { advert, notes } => {
                for n in notes {
                    self.refused(n, &format!("advert from {}: its addresses differ from ours (obeyed, as keepalived)", p.src));
                }
                status::update(self.row, |r| r.adverts_received += 1);
                let interval = match advert.version {
                    2 => Duration::from_secs(u64::from(advert.interval)),
                    _ => Duration::from_millis(u64::from(advert.interval) * 10),
                };
                let input = Input::Advert {
                    from: p.src,
                    priority: advert.priority,
                    interval,
                };
                self.feed(input).await;
                let master = self.master_now(self.machine.state());
                status::update(self.row, |r| {
                    r.master = master.map(|m| m.0);
                    r.master_priority = master.map(|m| m.1);
                    r.master_advert_int_ms = self.machine.master_adver_int().as_millis() as u64;
                });
            }
        }
    }

    /// Counts, and logs at most every [`LOG_EVERY`] per reason.
    fn refused(&mut self, why: Reason, text: &str) {
        status::update(self.row, |r| {
            *r.errors.entry(why.as_str().to_owned()).or_default() += 1
        });
        let now = Instant::now();
        let recent = self
            .logged
            .iter()
            .any(|(r, t)| *r == why && now.duration_since(*t) < LOG_EVERY);
        if !recent {
            self.logged.retain(|(r, _)| *r != why);
            self.logged.push((why, now));
            tracing::warn!(instance = %self.cfg.name, reason = why.as_str(), "({}) {text}", self.cfg.name);
        }
    }

    /// Applies what tracking says now.
    async fn track(&mut self, facts: &Facts) {
        let tracked = track::tracked(&self.cfg, &self.all, facts);
        let (priority, fault) = track::effective(self.cfg.priority, self.cfg.is_owner(), &tracked);
        status::update(self.row, |r| {
            r.tracking = tracked;
            r.effective_priority = priority;
        });
        if priority != self.machine.priority() {
            self.feed(Input::Priority(priority)).await;
        }
        if fault.is_some() != self.fault.is_some() {
            if let Some(why) = &fault {
                tracing::warn!(instance = %self.cfg.name, "FAULT: {why}");
            }
            self.fault = fault;
            self.feed(Input::Fault(self.fault.is_some())).await;
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn recv_group(
    rx: &mut Option<broadcast::Receiver<(String, State, State)>>,
) -> Option<(String, State, State)> {
    match rx {
        Some(rx) => loop {
            match rx.recv().await {
                Ok(m) => return Some(m),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        },
        None => std::future::pending().await,
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
