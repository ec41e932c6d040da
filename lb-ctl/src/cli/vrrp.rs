//! `lb-ctl vrrp status`: every VRRP instance (keepalived's `vrrp_instance`)
//! as the agent runs it; `lb-ctl vrrp release`: remove the addresses a
//! configuration's instances own, without an agent (systemd `ExecStopPost`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use clap::Subcommand;

use super::{Exit, Output, answer, table};
use lb_api::{
    client::Client,
    paths::Route,
    vrrp::{VrrpInstanceStatus, VrrpStatus},
};

#[derive(Subcommand)]
pub enum VrrpCommand {
    /// Every instance: state, configured and effective priority, master, last transition
    /// and why, adverts sent and received, refused packets by reason, what it tracks.
    Status,
    /// Remove every virtual address the file's instances may own (what systemd runs after
    /// the agent stopped, in case both it and its watchdog were killed).
    Release {
        /// The configuration file.
        #[arg(short, long, default_value = "/etc/lb/lb.yaml")]
        config: PathBuf,
    },
}

pub fn run(cmd: VrrpCommand, client: &Client, out: Output) -> Result<Exit> {
    match cmd {
        VrrpCommand::Status => super::block_on(async {
            let answer = answer::get(client, &Route::Vrrp.path()).await?;
            answer.show(out, |s: &VrrpStatus| render(s, table::unix_now()))
        }),
        VrrpCommand::Release { config } => release(&config, out),
    }
}

fn release(config: &Path, out: Output) -> Result<Exit> {
    let cfg = lb_config::load(config).with_context(|| format!("reading {}", config.display()))?;
    let done = lb_agent::vrrp::addresses::release_configured(&cfg.config.vrrp);
    let mut failed = false;
    let rows: Vec<serde_json::Value> = done
        .iter()
        .map(|(what, r)| {
            failed |= r.is_err();
            let error = r.as_ref().err().map(|e| e.to_string());
            serde_json::json!({"address": what, "error": error})
        })
        .collect();
    match out {
        Output::Json => super::print_json(&serde_json::json!({ "released": rows })),
        Output::Table => {
            for (what, r) in &done {
                match r {
                    Ok(()) => println!("released {what}"),
                    Err(e) => eprintln!("lb-ctl: {what}: {e}"),
                }
            }
        }
    }
    Ok(if failed { Exit::Failed } else { Exit::Ok })
}

fn render(s: &VrrpStatus, now: u64) -> String {
    if s.instances.is_empty() {
        return "no VRRP instances (the configuration has no `vrrp:` section)\n".into();
    }
    let mut t = table::Table::new(&[
        "INSTANCE",
        "STATE",
        "VRID",
        "IFACE",
        "PRIO",
        "EFFECTIVE",
        "MASTER",
        "SENT",
        "RECEIVED",
        "ERRORS",
    ])
    .right(&[2, 4, 5, 7, 8, 9]);
    for i in &s.instances {
        t.row(row(i));
    }
    let mut text = t.render();
    for i in &s.instances {
        text.push_str(&details(i, now));
    }
    text
}

fn row(i: &VrrpInstanceStatus) -> Vec<String> {
    let master = match (i.master, i.master_priority) {
        (Some(a), Some(p)) => format!("{a} ({p})"),
        (Some(a), None) => a.to_string(),
        _ => "-".into(),
    };
    vec![
        i.name.clone(),
        i.state.keepalived().into(),
        i.vrid.to_string(),
        i.interface.clone(),
        i.priority.to_string(),
        i.effective_priority.to_string(),
        master,
        i.adverts_sent.to_string(),
        i.adverts_received.to_string(),
        i.errors.values().sum::<u64>().to_string(),
    ]
}

/// The instance's last transition, what it tracks, and its refusals.
fn details(i: &VrrpInstanceStatus, now: u64) -> String {
    let mut out = format!(
        "\n{} (VRRPv{}, advert {} ms",
        i.name, i.version, i.advert_int_ms
    );
    if i.master_advert_int_ms != i.advert_int_ms {
        out += &format!(", master's {} ms", i.master_advert_int_ms);
    }
    out += &format!("): {}\n", i.addresses.join(", "));
    if let Some(t) = &i.last_transition {
        let when = if t.time_ms == 0 {
            String::new()
        } else {
            format!("{} ", table::ago(t.time_ms / 1000, now))
        };
        out += &format!(
            "  last transition: {when}{} -> {}: {}\n",
            t.from, t.to, t.reason
        );
    }
    for tr in &i.tracking {
        let ok = match tr.ok {
            Some(true) => "ok",
            Some(false) => "failing",
            None => "unknown",
        };
        out += &format!(
            "  tracks {} {} (weight {}): {ok}\n",
            tr.kind, tr.name, tr.weight
        );
    }
    for (reason, n) in i.errors.iter().filter(|(_, n)| **n > 0) {
        out += &format!("  refused {reason}: {n}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::vrrp::{VrrpState, VrrpTransition};

    #[test]
    fn a_table_then_details() {
        let mut i = VrrpInstanceStatus::configured("VI_1", "eth0", 51, 2, 100, 1000);
        i.state = VrrpState::Master;
        i.effective_priority = 102;
        i.master = Some("10.0.0.2".parse().unwrap());
        i.master_priority = Some(102);
        i.addresses = vec!["192.168.60.88/32".into()];
        i.last_transition = Some(VrrpTransition {
            time_ms: 1_000_000,
            from: VrrpState::Backup,
            to: VrrpState::Master,
            reason: "no advertisement for 3609 ms (Master_Down_Interval)".into(),
        });
        i.adverts_sent = 12;
        i.errors = [("auth_password".to_owned(), 3), ("ttl".to_owned(), 0)].into();
        let s = VrrpStatus { instances: vec![i] };
        let text = render(&s, 1_060);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("INSTANCE  STATE   VRID  IFACE  PRIO  EFFECTIVE"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("VI_1      MASTER    51  eth0    100        102  10.0.0.2 (102)"),
            "{text}"
        );
        assert!(
            text.contains("last transition: 1m ago backup -> master: no advertisement"),
            "{text}"
        );
        assert!(
            text.contains("refused auth_password: 3") && !text.contains("refused ttl"),
            "{text}"
        );
    }
}
