//! Sync groups (keepalived `vrrp_sync_group`): members tell each other
//! their state; a member going master pulls the others to master, one
//! leaving master pushes the others to backup, and while one is in FAULT
//! the others are too.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

use super::machine::{Input, State};

/// One group, shared by its members.
#[derive(Clone)]
pub struct Group {
    pub name: String,
    states: Arc<Mutex<BTreeMap<String, State>>>,
    tx: broadcast::Sender<(String, State, State)>,
}

impl Group {
    pub fn new(name: &str) -> Group {
        let (tx, _) = broadcast::channel(64);
        Group {
            name: name.to_owned(),
            states: Arc::default(),
            tx,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<(String, State, State)> {
        self.tx.subscribe()
    }

    /// Member `who` went `from` → `to`.
    pub fn moved(&self, who: &str, from: State, to: State) {
        self.lock().insert(who.to_owned(), to);
        let _ = self.tx.send((who.to_owned(), from, to));
    }

    /// What member `me` does about another's move.
    pub fn follow(&self, me: &str, (who, from, to): &(String, State, State)) -> Option<Input> {
        if who == me {
            return None;
        }
        match (from, to) {
            (_, State::Master) => Some(Input::GroupMaster),
            (_, State::Fault) => Some(Input::GroupFault(true)),
            (State::Fault, _) => {
                let others_faulty = self
                    .lock()
                    .iter()
                    .any(|(n, s)| n != me && *s == State::Fault);
                Some(Input::GroupFault(others_faulty))
            }
            (State::Master, State::Backup) => Some(Input::GroupBackup),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, State>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_follow_each_other() {
        let g = Group::new("G");
        let m = |f, t| ("a".to_owned(), f, t);
        assert_eq!(
            g.follow("b", &m(State::Backup, State::Master)),
            Some(Input::GroupMaster)
        );
        assert_eq!(
            g.follow("b", &m(State::Master, State::Backup)),
            Some(Input::GroupBackup)
        );
        assert_eq!(
            g.follow("a", &m(State::Master, State::Backup)),
            None,
            "not our own"
        );
        g.moved("a", State::Backup, State::Fault);
        g.moved("c", State::Backup, State::Fault);
        assert_eq!(
            g.follow("b", &m(State::Backup, State::Fault)),
            Some(Input::GroupFault(true))
        );
        g.moved("a", State::Fault, State::Backup);
        assert_eq!(
            g.follow("b", &m(State::Fault, State::Backup)),
            Some(Input::GroupFault(true)),
            "c still faulty"
        );
        g.moved("c", State::Fault, State::Backup);
        assert_eq!(
            g.follow("b", &("c".into(), State::Fault, State::Backup)),
            Some(Input::GroupFault(false))
        );
    }
}
