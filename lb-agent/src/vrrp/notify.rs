//! An instance's own notify scripts, as keepalived runs them
//! (keepalived/vrrp/vrrp_notify.c): `notify_master`, `notify_backup`,
//! `notify_fault` and `notify_stop` as written, `notify` with
//! `INSTANCE NAME STATE PRIORITY` appended; each through the notifier's
//! runner (no shell, own process group, timeout). Runs keep their order.
//! Mail, webhook and `notify.script` get the `vrrp` event through `notify:`.

use std::time::Duration;

use lb_api::vrrp::VrrpState;
use lb_config::vrrp::InstanceNotify;
use tokio::sync::mpsc;

use crate::notify::script::run::run;

/// Queues the scripts of one instance and runs them one after the other.
pub struct Notifier {
    tx: mpsc::UnboundedSender<Vec<String>>,
    runner: tokio::task::JoinHandle<()>,
}

impl Notifier {
    pub fn start(instance: String, timeout: Duration) -> Notifier {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<String>>();
        let runner = tokio::spawn(async move {
            while let Some(argv) = rx.recv().await {
                if let Err(why) = run(&argv, &[], timeout).await {
                    tracing::warn!(instance, "vrrp notify script: {why}");
                }
            }
        });
        Notifier { tx, runner }
    }

    /// Waits for the queued scripts to have run.
    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.runner.await;
    }

    /// Queues what `to` runs.
    pub fn transition(&self, name: &str, n: &InstanceNotify, to: VrrpState, priority: u8) {
        for argv in commands(name, n, to, priority) {
            let _ = self.tx.send(argv);
        }
    }
}

fn commands(name: &str, n: &InstanceNotify, to: VrrpState, priority: u8) -> Vec<Vec<String>> {
    let own = match to {
        VrrpState::Master => &n.master,
        VrrpState::Backup => &n.backup,
        VrrpState::Fault => &n.fault,
        VrrpState::Stopped => &n.stop,
        VrrpState::Init => &None,
    };
    let args = ["INSTANCE", name, to.keepalived(), &priority.to_string()].map(String::from);
    let generic = n
        .notify
        .as_ref()
        .map(|c| [c.clone(), args.to_vec()].concat());
    own.iter().cloned().chain(generic).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_arguments() {
        let n = InstanceNotify {
            master: Some(vec!["/m".into(), "x".into()]),
            notify: Some(vec!["/n".into()]),
            ..Default::default()
        };
        assert_eq!(
            commands("VI_1", &n, VrrpState::Master, 102),
            [
                vec!["/m", "x"],
                vec!["/n", "INSTANCE", "VI_1", "MASTER", "102"]
            ]
        );
        assert_eq!(
            commands("VI_1", &n, VrrpState::Stopped, 0),
            [vec!["/n", "INSTANCE", "VI_1", "STOP", "0"]]
        );
        assert!(commands("VI_1", &InstanceNotify::default(), VrrpState::Fault, 1).is_empty());
    }
}
