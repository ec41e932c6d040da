//! Persisting the overrides off the request path.
//!
//! A durable write (temp file, fsync, rename, fsync of the directory) costs
//! one or two disk flushes, 1–20 ms depending on the disk and its load: more
//! than everything else a runtime change does. So the reconciler hands each
//! new version of the overrides to one writer thread and answers at once.
//! The thread writes the newest version it has (versions that arrived while
//! it was busy are skipped: the newest includes them), with the same atomic
//! [`save`] as before, so a crash still leaves the old file or a new one.
//!
//! What this trades: a change answered less than one write (≈ tens of
//! milliseconds) before the machine loses power may be missing after the
//! restart. A stopped agent (SIGTERM, Ctrl-C, teardown) loses nothing:
//! [`Writer::finish`] waits for the last write.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use super::{Overrides, save};

/// The writer thread and the way to it.
pub struct Writer {
    tx: Option<Sender<Overrides>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread that writes the overrides file at `path`.
    pub fn spawn(path: PathBuf) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("lb-state-writer".into())
            .spawn(move || write_newest(&path, &rx))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `ov` to be written; returns without waiting for the disk.
    pub fn save(&self, ov: Overrides) {
        if let Some(tx) = &self.tx {
            // The thread only goes away in `finish`.
            let _ = tx.send(ov);
        }
    }

    /// Waits until everything queued is on disk.
    pub fn finish(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the runtime-overrides writer panicked");
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The thread: waits for a version, skips to the newest queued, writes it.
fn write_newest(path: &std::path::Path, rx: &Receiver<Overrides>) {
    while let Ok(mut ov) = rx.recv() {
        while let Ok(newer) = rx.try_recv() {
            ov = newer;
        }
        if let Err(e) = save(path, &ov) {
            // The change is in effect; say it will not survive a restart.
            tracing::error!(error = %e, "persisting runtime overrides");
        }
    }
}
