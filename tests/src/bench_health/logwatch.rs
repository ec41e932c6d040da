//! Another checker's verdicts, from its log: each line of its output is
//! timestamped as it arrives and parsed into "server S is up/down". HAProxy
//! and keepalived write a line when, and only when, they change a server's
//! state in their tables, so the arrival time is when the server left or
//! rejoined service (plus the pipe's latency, well under a millisecond).

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Read},
    sync::mpsc,
    time::Instant,
};

use anyhow::{Result, bail};

use super::{layout::Server, phase::Watch, unix_ms};
use crate::bench_control::stop;

/// A log line's meaning: `Some((server, up))` for a state change.
pub type Parse = fn(&str) -> Option<(Server, bool)>;

/// Lines kept for error messages.
const KEEP: usize = 40;

/// The reader of one checker's output.
pub struct LogWatch {
    lines: mpsc::Receiver<(u64, String)>,
    parse: Parse,
    /// The last state each server was said to be in, and when.
    state: BTreeMap<Server, (bool, u64)>,
    /// The first lines read and the last ones (for errors), and whether
    /// the output ended.
    pub head: Vec<String>,
    pub tail: Vec<String>,
    pub ended: bool,
    /// State changes to down read so far.
    pub downs: usize,
    /// A line containing this was read (see [`LogWatch::watch_for`]).
    marker: Option<&'static str>,
    pub marked: bool,
}

impl LogWatch {
    /// Reads every output in `pipes` on threads of its own.
    pub fn start(pipes: Vec<Box<dyn Read + Send>>, parse: Parse) -> LogWatch {
        let (tx, rx) = mpsc::channel();
        for pipe in pipes {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if tx.send((unix_ms(), line)).is_err() {
                        return;
                    }
                }
            });
        }
        LogWatch {
            lines: rx,
            parse,
            state: BTreeMap::new(),
            head: Vec::new(),
            tail: Vec::new(),
            ended: false,
            downs: 0,
            marker: None,
            marked: false,
        }
    }

    /// Reads what arrived, waiting at most until `until`; false once every
    /// output has ended.
    pub fn pump(&mut self, until: Instant) -> bool {
        let wait = until.saturating_duration_since(Instant::now());
        match self.lines.recv_timeout(wait) {
            Ok((at, line)) => {
                self.take(at, line);
                while let Ok((at, line)) = self.lines.try_recv() {
                    self.take(at, line);
                }
                true
            }
            Err(mpsc::RecvTimeoutError::Timeout) => true,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.ended = true;
                false
            }
        }
    }

    fn take(&mut self, at: u64, line: String) {
        if let Some((server, up)) = (self.parse)(&line) {
            self.state.insert(server, (up, at));
            self.downs += usize::from(!up);
        }
        if self.marker.is_some_and(|m| line.contains(m)) {
            self.marked = true;
        }
        if self.head.len() < KEEP {
            self.head.push(line.clone());
        }
        if self.tail.len() == KEEP {
            self.tail.remove(0);
        }
        self.tail.push(line);
    }

    /// From now on, notes whether a line contains `marker` (`marked`).
    pub fn watch_for(&mut self, marker: &'static str) {
        self.marker = Some(marker);
    }

    /// Servers said to be down now.
    pub fn down(&self) -> Vec<Server> {
        self.state
            .iter()
            .filter(|(_, (up, _))| !up)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Waits until `until`, failing if the output ends.
    pub fn idle(&mut self, until: Instant) -> Result<()> {
        while Instant::now() < until {
            stop::check()?;
            if !self.pump(until.min(Instant::now() + std::time::Duration::from_millis(100))) {
                bail!("the checker's output ended:\n{}", self.tail.join("\n"));
            }
        }
        Ok(())
    }

    fn wait_for(&mut self, servers: &[Server], up: bool, deadline: Instant) -> Result<()> {
        let done = |s: &Self| {
            servers
                .iter()
                .all(|x| s.state.get(x).map_or(up, |(u, _)| *u == up))
        };
        while !done(self) && Instant::now() < deadline {
            stop::check()?;
            if !self.pump(deadline.min(Instant::now() + std::time::Duration::from_millis(100))) {
                bail!("the checker's output ended:\n{}", self.tail.join("\n"));
            }
        }
        Ok(())
    }
}

impl Watch for LogWatch {
    fn out_times(
        &mut self,
        servers: &[Server],
        deadline: Instant,
    ) -> Result<BTreeMap<Server, Option<u64>>> {
        self.wait_for(servers, false, deadline)?;
        Ok(servers
            .iter()
            .map(|s| {
                let at = self.state.get(s).filter(|(up, _)| !up).map(|(_, at)| *at);
                (*s, at)
            })
            .collect())
    }

    fn wait_in(&mut self, servers: &[Server], deadline: Instant) -> Result<()> {
        self.wait_for(servers, true, deadline)?;
        let still: Vec<String> = servers
            .iter()
            .filter(|s| self.state.get(s).is_some_and(|(up, _)| !up))
            .map(|s| s.socket().to_string())
            .collect();
        if !still.is_empty() {
            bail!("still down: {}", still.join(" "));
        }
        Ok(())
    }
}
