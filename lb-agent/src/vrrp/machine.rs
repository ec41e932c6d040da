//! The VRRP state machine of RFC 5798 §6.4 (and RFC 3768 §6.4 for v2), with
//! keepalived's FAULT state and sync groups. Pure: time comes in with every
//! input (a monotonic `Duration` from any epoch) and what to do goes out as
//! [`Action`]s, so every transition is unit-tested without sockets or clocks.
//!
//! - Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256 (v2: the
//!   interval is one second, RFC 3768 §6.1);
//! - Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time;
//! - a v3 backup learns Master_Adver_Interval from the master's adverts;
//! - a priority-0 advert (the master resigning) makes backups take over
//!   after Skew_Time;
//! - equal priorities: the higher primary address wins;
//! - the owner (255) always preempts.

use std::net::IpAddr;
use std::time::Duration;

/// Where an instance stands: RFC "Initialize" (`Init`), `Backup`,
/// `Master`, keepalived's `Fault` (a tracked thing failed; adverts are
/// ignored) and `Stopped`. One type with the API's, so a state is never
/// translated.
pub use lb_api::vrrp::VrrpState as State;

/// What the configuration fixes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// 2 or 3.
    pub version: u8,
    /// Advertisement_Interval.
    pub advert_int: Duration,
    pub preempt: bool,
    /// No preemption before this long after start (or after leaving FAULT).
    pub preempt_delay: Duration,
    /// Priority 255: master at once, always preempts.
    pub owner: bool,
    /// keepalived's `state MASTER` hint (it matters to the owner only).
    pub start_master: bool,
    /// Our primary address, for the tie-break.
    pub address: IpAddr,
}

/// What arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Startup,
    /// A valid advertisement for our VRID: sender's primary address, its
    /// priority and (v3) its advert interval.
    Advert {
        from: IpAddr,
        priority: u8,
        interval: Duration,
    },
    /// Time passed; acts on whichever timer is due.
    Tick,
    /// Tracking moved the effective priority.
    Priority(u8),
    /// Tracking says FAULT (`true`) or recovered (`false`).
    Fault(bool),
    /// A sync group member went master: follow.
    GroupMaster,
    /// A sync group member left master: follow to backup.
    GroupBackup,
    /// A sync group member is in FAULT (or recovered).
    GroupFault(bool),
    Shutdown,
}

/// An accepted advertisement, as the machine needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Heard {
    from: IpAddr,
    priority: u8,
    interval: Duration,
}

/// What to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority (0: resign).
    Send(u8),
    /// Add the virtual addresses and announce them (GARP / unsolicited NA).
    TakeOver,
    /// Remove the virtual addresses.
    Release,
    /// The state changed.
    Transition { from: State, to: State, why: String },
}

/// One virtual router's machine.
#[derive(Clone, Debug)]
pub struct Machine {
    p: Params,
    state: State,
    priority: u8,
    master_adver_int: Duration,
    /// Master_Down_Timer (backup) or Adver_Timer (master): when it fires.
    timer: Option<Duration>,
    preempt_after: Duration,
    fault: bool,
    group_fault: bool,
    master: Option<(IpAddr, u8)>,
    /// The down timer runs for Skew_Time because the master resigned.
    resigned: bool,
}

impl Machine {
    pub fn new(p: Params, priority: u8) -> Machine {
        Machine {
            master_adver_int: p.advert_int,
            p,
            state: State::Init,
            priority,
            timer: None,
            preempt_after: Duration::ZERO,
            fault: false,
            group_fault: false,
            master: None,
            resigned: false,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The master we listen to (address, priority), while backup.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    pub fn master_adver_int(&self) -> Duration {
        self.master_adver_int
    }

    /// When the running timer fires: feed [`Input::Tick`] then.
    pub fn deadline(&self) -> Option<Duration> {
        self.timer
    }

    /// Skew_Time for our priority.
    pub fn skew(&self) -> Duration {
        let weight = 256 - u32::from(self.priority);
        match self.p.version {
            2 => Duration::from_secs(1) * weight / 256,
            _ => self.master_adver_int * weight / 256,
        }
    }

    /// Master_Down_Interval.
    pub fn down_interval(&self) -> Duration {
        self.master_adver_int * 3 + self.skew()
    }

    /// Feeds one input at time `now`; returns what to do.
    pub fn step(&mut self, now: Duration, input: Input) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Startup => self.startup(now, &mut out),
            Input::Advert {
                from,
                priority,
                interval,
            } => self.advert(
                now,
                Heard {
                    from,
                    priority,
                    interval,
                },
                &mut out,
            ),
            Input::Tick => self.tick(now, &mut out),
            Input::Priority(p) => self.priority = p,
            Input::Fault(f) => {
                self.fault = f;
                self.fault_changed(now, "a tracked script, interface or pool", &mut out);
            }
            Input::GroupFault(f) => {
                self.group_fault = f;
                self.fault_changed(now, "a member of its sync group", &mut out);
            }
            Input::GroupMaster if self.state == State::Backup => {
                self.become_master(now, "its sync group went master".into(), &mut out)
            }
            Input::GroupBackup if self.state == State::Master => {
                self.become_backup(now, "its sync group left master".into(), &mut out)
            }
            Input::GroupMaster | Input::GroupBackup => {}
            Input::Shutdown => self.shutdown(&mut out),
        }
        out
    }

    fn startup(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.state != State::Init {
            return;
        }
        self.preempt_after = now + self.p.preempt_delay;
        if self.fault || self.group_fault {
            self.go(
                State::Fault,
                "started while a tracked thing fails".into(),
                out,
            );
        } else if self.p.owner && self.p.start_master {
            self.become_master(now, "address owner (priority 255)".into(), out);
        } else {
            self.enter_backup(now, "started".into(), out);
        }
    }

    fn tick(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.timer.is_none_or(|t| now < t) {
            return;
        }
        match self.state {
            State::Backup => {
                let why = if self.resigned {
                    format!(
                        "the master resigned (priority 0); took over after Skew_Time, {} ms",
                        self.skew().as_millis()
                    )
                } else {
                    format!(
                        "no advertisement for {} ms (Master_Down_Interval)",
                        self.down_interval().as_millis()
                    )
                };
                self.become_master(now, why, out);
            }
            State::Master => {
                out.push(Action::Send(self.priority));
                self.timer = Some(now + self.p.advert_int);
            }
            _ => self.timer = None,
        }
    }

    fn advert(&mut self, now: Duration, h: Heard, out: &mut Vec<Action>) {
        match self.state {
            State::Backup => self.backup_rx(now, h),
            State::Master => self.master_rx(now, h, out),
            State::Init | State::Fault | State::Stopped => {}
        }
    }

    /// RFC 5798 §6.4.2, "If an ADVERTISEMENT is received".
    fn backup_rx(&mut self, now: Duration, h: Heard) {
        if h.priority == 0 {
            self.timer = Some(now + self.skew());
            self.master = None;
            self.resigned = true;
            return;
        }
        let delaying = now < self.preempt_after;
        let preempts = (self.p.preempt || self.p.owner) && !delaying;
        if !preempts || h.priority >= self.priority {
            self.learn(h.interval);
            self.timer = Some(now + self.down_interval());
            self.master = Some((h.from, h.priority));
            self.resigned = false;
        }
        // Otherwise discarded: the down timer runs on and we take over.
    }

    /// RFC 5798 §6.4.3, "If an ADVERTISEMENT is received".
    fn master_rx(&mut self, now: Duration, h: Heard, out: &mut Vec<Action>) {
        if h.priority == 0 {
            out.push(Action::Send(self.priority));
            self.timer = Some(now + self.p.advert_int);
            return;
        }
        let wins =
            h.priority > self.priority || (h.priority == self.priority && h.from > self.p.address);
        if wins {
            self.learn(h.interval);
            self.master = Some((h.from, h.priority));
            let why = format!(
                "{} advertises priority {} (ours {})",
                h.from, h.priority, self.priority
            );
            self.become_backup(now, why, out);
        } else {
            // keepalived: answer at once so the lower-priority router steps down.
            out.push(Action::Send(self.priority));
            self.timer = Some(now + self.p.advert_int);
        }
    }

    /// A v3 backup takes the master's advert interval (RFC 5798 §6.4.2).
    fn learn(&mut self, interval: Duration) {
        if self.p.version == 3 && !interval.is_zero() {
            self.master_adver_int = interval;
        }
    }

    fn fault_changed(&mut self, now: Duration, what: &str, out: &mut Vec<Action>) {
        let faulty = self.fault || self.group_fault;
        match (self.state, faulty) {
            (State::Master, true) => {
                out.push(Action::Send(0));
                out.push(Action::Release);
                self.go(State::Fault, format!("{what} failed"), out);
            }
            (State::Backup, true) => self.go(State::Fault, format!("{what} failed"), out),
            (State::Fault, false) => {
                self.preempt_after = now + self.p.preempt_delay;
                if self.p.owner {
                    self.become_master(now, "recovered; address owner".into(), out);
                } else {
                    self.enter_backup(now, "recovered from FAULT".into(), out);
                }
            }
            _ => {}
        }
    }

    fn shutdown(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::Send(0));
            out.push(Action::Release);
        }
        if self.state != State::Stopped {
            self.go(State::Stopped, "shutting down".into(), out);
        }
    }

    fn become_master(&mut self, now: Duration, why: String, out: &mut Vec<Action>) {
        self.resigned = false;
        // Advertise first so the old master steps down before our GARPs.
        out.push(Action::Send(self.priority));
        out.push(Action::TakeOver);
        self.master = None;
        self.master_adver_int = self.p.advert_int;
        self.timer = Some(now + self.p.advert_int);
        self.go(State::Master, why, out);
    }

    /// Master → backup: release, then wait for the (new) master's adverts.
    fn become_backup(&mut self, now: Duration, why: String, out: &mut Vec<Action>) {
        out.push(Action::Release);
        self.wait_as_backup(now, why, out);
    }

    /// Start or FAULT → backup, our own interval until a master speaks.
    fn enter_backup(&mut self, now: Duration, why: String, out: &mut Vec<Action>) {
        self.master_adver_int = self.p.advert_int;
        self.master = None;
        self.wait_as_backup(now, why, out);
    }

    fn wait_as_backup(&mut self, now: Duration, why: String, out: &mut Vec<Action>) {
        self.timer = Some(now + self.down_interval());
        self.go(State::Backup, why, out);
    }

    fn go(&mut self, to: State, why: String, out: &mut Vec<Action>) {
        if matches!(to, State::Fault | State::Stopped) {
            self.timer = None;
            self.master = None;
        }
        out.push(Action::Transition {
            from: self.state,
            to,
            why,
        });
        self.state = to;
    }
}

#[cfg(test)]
mod tests;
