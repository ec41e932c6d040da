//! Scripts about the same thing run one after another, in the order of
//! their events (a backend's `notify_down` before its later `notify_up`);
//! scripts about different things run side by side, a bounded number at
//! once, so one slow script holds up only its own lane.

use std::collections::{HashMap, HashSet, VecDeque};

use tokio::task::{Id, JoinSet};

pub struct Lanes<J, F> {
    /// Jobs not started, by lane.
    waiting: HashMap<String, VecDeque<J>>,
    /// Lanes with a waiting job and nothing running, oldest first.
    ready: VecDeque<String>,
    /// Lanes with a job running.
    busy: HashSet<String>,
    running: JoinSet<()>,
    lane_of: HashMap<Id, String>,
    max_running: usize,
    start: F,
}

impl<J, F, Fut> Lanes<J, F>
where
    F: FnMut(J) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    /// Runs jobs with `start`, `max_running` (at least one) at a time.
    pub fn new(max_running: usize, start: F) -> Self {
        Lanes {
            waiting: HashMap::new(),
            ready: VecDeque::new(),
            busy: HashSet::new(),
            running: JoinSet::new(),
            lane_of: HashMap::new(),
            max_running: max_running.max(1),
            start,
        }
    }

    /// Jobs waiting or running.
    pub fn len(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum::<usize>() + self.running.len()
    }

    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Queues `job` behind the others of `lane`.
    pub fn push(&mut self, lane: String, job: J) {
        self.waiting.entry(lane.clone()).or_default().push_back(job);
        if !self.busy.contains(&lane) && !self.ready.contains(&lane) {
            self.ready.push_back(lane);
        }
        self.fill();
    }

    /// Waits for a running job to end and starts what may start; `None`
    /// when nothing runs.
    pub async fn finished(&mut self) -> Option<()> {
        let id = match self.running.join_next_with_id().await? {
            Ok((id, ())) => id,
            Err(e) => e.id(),
        };
        if let Some(lane) = self.lane_of.remove(&id) {
            self.busy.remove(&lane);
            if self.waiting.contains_key(&lane) {
                self.ready.push_back(lane);
            }
        }
        self.fill();
        Some(())
    }

    fn fill(&mut self) {
        while self.running.len() < self.max_running {
            let Some(lane) = self.ready.pop_front() else {
                return;
            };
            let Some(queue) = self.waiting.get_mut(&lane) else {
                continue;
            };
            let Some(job) = queue.pop_front() else {
                continue;
            };
            if queue.is_empty() {
                self.waiting.remove(&lane);
            }
            let handle = self.running.spawn((self.start)(job));
            self.lane_of.insert(handle.id(), lane.clone());
            self.busy.insert(lane);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use super::*;

    type Log = Arc<Mutex<Vec<String>>>;

    #[tokio::test(start_paused = true)]
    async fn one_lane_in_order_lanes_side_by_side_within_the_bound() {
        let log: Log = Log::default();
        let record = log.clone();
        // A job logs its start and its end, `ms` later.
        let mut l = Lanes::new(2, move |(name, ms): (String, u64)| {
            let log = record.clone();
            async move {
                log.lock().unwrap().push(format!("+{name}"));
                tokio::time::sleep(Duration::from_millis(ms)).await;
                log.lock().unwrap().push(format!("-{name}"));
            }
        });
        l.push("b1".into(), ("b1-down".into(), 1000));
        l.push("b1".into(), ("b1-up".into(), 10));
        l.push("b2".into(), ("b2-down".into(), 10));
        l.push("b3".into(), ("b3-down".into(), 10));
        assert_eq!((l.len(), l.running()), (4, 2));
        while l.finished().await.is_some() {}
        assert_eq!(
            *log.lock().unwrap(),
            [
                "+b1-down", "+b2-down", "-b2-down", "+b3-down", "-b3-down", "-b1-down", "+b1-up",
                "-b1-up"
            ]
        );
        assert_eq!(l.len(), 0);
    }
}
