//! `lb-ctl backend ...`: a VIP's backends and their runtime state, in
//! HAProxy's words (`enable`, `drain`, `maint`, `set-weight`).

use std::{net::IpAddr, time::Duration};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use serde_json::json;

use super::{Exit, Output, answer, drain, print_change, spelled, table::Table, vip};
use lb_api::{
    client::{Client, encode},
    types::{AddBackend, BackendStatus, VipStatus},
};
use lb_config::{AdminState, duration::parse_duration};

#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// List the backends of one VIP, or of every VIP.
    List {
        /// The VIP's name or ADDRESS:PORT/PROTOCOL.
        vip: Option<String>,
    },
    /// Add a backend to a VIP at runtime (kept in the state file until removed).
    Add {
        /// The VIP's name or ADDRESS:PORT/PROTOCOL.
        vip: String,
        /// The backend's address (it must hold the VIP on a loopback: DR mode).
        #[arg(long, value_name = "IP")]
        address: IpAddr,
        /// A name for the backend [default: its address].
        #[arg(long)]
        name: Option<String>,
        /// The port; in DR mode it must be the VIP's [default: the VIP's].
        #[arg(long)]
        port: Option<u16>,
        /// Maglev weight [default: the file's].
        #[arg(long, value_name = "W")]
        weight: Option<u32>,
        /// Initial administrative state [default: up].
        #[arg(long, value_parser = spelled(AdminState::ALL, AdminState::as_str))]
        state: Option<AdminState>,
        /// Interface towards the backend [default: from the routing table].
        #[arg(long, value_name = "IF")]
        interface: Option<String>,
        /// Static next-hop MAC, e.g. 02:00:00:00:00:01 [default: from ARP/NDP].
        #[arg(long, value_name = "MAC")]
        mac: Option<String>,
    },
    /// Remove a backend; its flows are re-hashed.
    Remove(Target),
    /// Put a backend back in service (HAProxy `enable server`, `set server state ready`).
    Enable(Target),
    /// Take no new flows, keep the open ones (HAProxy `set server state drain`, LVS weight 0).
    Drain {
        #[command(flatten)]
        target: Target,
        /// Wait until no active flow is left on the backend.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this long (exit 1).
        #[arg(long, requires = "wait", default_value = "300s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Take out of service entirely; open flows are re-hashed (HAProxy `set server state maint`).
    Maint(Target),
    /// Change a backend's Maglev weight (0 behaves like drain).
    SetWeight {
        #[command(flatten)]
        target: Target,
        /// The new weight.
        #[arg(value_name = "W")]
        weight: u32,
    },
}

/// One backend of one VIP.
#[derive(Debug, Args)]
pub struct Target {
    /// The VIP's name or ADDRESS:PORT/PROTOCOL.
    pub vip: String,
    /// The backend's name or address.
    pub backend: String,
}

pub async fn run(cmd: BackendCommand, client: &Client, out: Output) -> Result<Exit> {
    match cmd {
        BackendCommand::List { vip: Some(vip) } => {
            let answer = answer::get(client, &format!("{}/backends", vip_path(&vip))).await?;
            if out == Output::Json {
                answer.print_json();
            } else {
                let backends: Vec<BackendStatus> = answer.typed()?;
                print!("{}", render_backends(&backends, 0));
            }
            Ok(Exit::Ok)
        }
        BackendCommand::List { vip: None } => {
            let answer = answer::get(client, "/v1/vips").await?;
            if out == Output::Json {
                answer.print_json();
                return Ok(Exit::Ok);
            }
            let vips: Vec<VipStatus> = answer.typed()?;
            for (i, v) in vips.iter().enumerate() {
                if i > 0 {
                    println!();
                }
                println!("{} {}", v.name, vip::vip_id(v.address, v.port, v.protocol));
                print!("{}", render_backends(&v.backends, 2));
            }
            Ok(Exit::Ok)
        }
        BackendCommand::Add {
            vip,
            address,
            name,
            port,
            weight,
            state,
            interface,
            mac,
        } => {
            let body = AddBackend {
                name,
                address,
                port,
                weight,
                state,
                interface,
                mac,
            };
            let what = format!(
                "{vip}/{}",
                body.name.clone().unwrap_or_else(|| address.to_string())
            );
            let answer = answer::post(client, &format!("{}/backends", vip_path(&vip)), &body)
                .await
                .with_context(|| format!("adding backend {what}"))?;
            print_change(
                out,
                answer,
                &format!("added backend {what}"),
                &format!("backend {what} exists as asked"),
            )
        }
        BackendCommand::Remove(Target { vip, backend }) => {
            let answer = answer::delete(client, &backend_path(&vip, &backend))
                .await
                .with_context(|| format!("removing backend {vip}/{backend}"))?;
            let what = format!("{vip}/{backend}");
            print_change(
                out,
                answer,
                &format!("removed backend {what}"),
                &format!("no backend {what}"),
            )
        }
        BackendCommand::Enable(Target { vip, backend }) => {
            set_state(client, out, &vip, &backend, AdminState::Up).await
        }
        BackendCommand::Maint(Target { vip, backend }) => {
            set_state(client, out, &vip, &backend, AdminState::Maint).await
        }
        BackendCommand::Drain {
            target: Target { vip, backend },
            wait,
            timeout,
        } => {
            let exit = set_state(client, out, &vip, &backend, AdminState::Drain).await?;
            if !wait {
                return Ok(exit);
            }
            drain::wait(client, &vip, &backend, timeout).await
        }
        BackendCommand::SetWeight {
            target: Target { vip, backend },
            weight,
        } => {
            let answer = answer::put(
                client,
                &format!("{}/weight", backend_path(&vip, &backend)),
                &json!({ "weight": weight }),
            )
            .await
            .with_context(|| format!("setting the weight of {vip}/{backend}"))?;
            let what = format!("{vip}/{backend}");
            print_change(
                out,
                answer,
                &format!("set the weight of {what} to {weight}"),
                &format!("{what} already has weight {weight}"),
            )
        }
    }
}

async fn set_state(
    client: &Client,
    out: Output,
    vip: &str,
    backend: &str,
    state: AdminState,
) -> Result<Exit> {
    let answer = answer::put(
        client,
        &format!("{}/state", backend_path(vip, backend)),
        &json!({ "state": state }),
    )
    .await
    .with_context(|| format!("setting {vip}/{backend} to {state}"))?;
    let what = format!("{vip}/{backend}");
    print_change(
        out,
        answer,
        &format!("set {what} to {state}"),
        &format!("{what} is already {state}"),
    )
}

/// `/v1/vips/{vip}`, encoded.
pub fn vip_path(vip: &str) -> String {
    format!("/v1/vips/{}", encode(vip))
}

/// `/v1/vips/{vip}/backends/{backend}`, encoded.
pub fn backend_path(vip: &str, backend: &str) -> String {
    format!("{}/backends/{}", vip_path(vip), encode(backend))
}

/// A VIP's backends as a table, then footnotes for runtime overrides
/// (`drain*` — `* b2: runtime override (config: up)`) and down reasons.
pub fn render_backends(backends: &[BackendStatus], indent: usize) -> String {
    let pad = " ".repeat(indent);
    if backends.is_empty() {
        return format!("{pad}(no backends)\n");
    }
    let mut t = Table::new(&[
        "NAME", "ADDRESS", "PORT", "STATE", "WEIGHT", "SOURCE", "NEXT HOP",
    ])
    .right(&[2, 4])
    .indent(indent);
    let mut notes = Vec::new();
    for b in backends {
        let mut state = b.state.clone();
        if let Some(o) = b.state_override {
            state.push('*');
            let config = b.config_state.map_or("none".to_owned(), |s| s.to_string());
            notes.push(format!(
                "* {}: runtime override of {o} (config: {config})",
                b.name
            ));
        }
        let mut weight = b.weight.to_string();
        if let Some(o) = b.weight_override {
            weight.push('*');
            let config = b.config_weight.map_or("none".to_owned(), |w| w.to_string());
            notes.push(format!(
                "* {}: runtime weight {o} (config: {config})",
                b.name
            ));
        }
        if let Some(why) = &b.down_reason {
            notes.push(format!("! {}: down: {why}", b.name));
        }
        let next_hop = b.next_hop.as_ref().map_or("-".to_owned(), |n| {
            format!("{} (ifindex {})", n.mac, n.ifindex)
        });
        t.row([
            b.name.clone(),
            b.address.to_string(),
            b.port.to_string(),
            state,
            weight,
            vip::source(b.source).into(),
            next_hop,
        ]);
    }
    let mut out = t.render();
    for n in notes {
        out.push_str(&format!("{pad}{n}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::types::{Counters, NextHopInfo, Source};

    fn backend(name: &str, state: &str) -> BackendStatus {
        BackendStatus {
            name: name.into(),
            address: "10.0.1.1".parse().unwrap(),
            port: 80,
            weight: 100,
            config_weight: Some(100),
            weight_override: None,
            state: state.into(),
            config_state: Some(AdminState::Up),
            state_override: None,
            down_reason: None,
            source: Source::Config,
            next_hop: Some(NextHopInfo {
                ifindex: 3,
                mac: "02:00:00:00:00:01".into(),
            }),
            counters: Counters::default(),
        }
    }

    #[test]
    fn marks_overrides_with_footnotes() {
        let mut b2 = backend("b2", "drain");
        b2.state_override = Some(AdminState::Drain);
        let mut b3 = backend("b3", "down");
        b3.down_reason = Some("no ARP answer".into());
        b3.weight = 5;
        b3.weight_override = Some(5);
        b3.next_hop = None;
        let text = render_backends(&[backend("b1", "up"), b2, b3], 0);
        assert_eq!(
            text,
            "NAME  ADDRESS   PORT  STATE   WEIGHT  SOURCE  NEXT HOP\n\
             b1    10.0.1.1    80  up         100  config  02:00:00:00:00:01 (ifindex 3)\n\
             b2    10.0.1.1    80  drain*     100  config  02:00:00:00:00:01 (ifindex 3)\n\
             b3    10.0.1.1    80  down        5*  config  -\n\
             * b2: runtime override of drain (config: up)\n\
             * b3: runtime weight 5 (config: 100)\n\
             ! b3: down: no ARP answer\n"
        );
    }

    #[test]
    fn paths_are_encoded() {
        assert_eq!(
            backend_path("10.0.0.1:80/tcp", "b 1"),
            "/v1/vips/10.0.0.1%3A80%2Ftcp/backends/b%201"
        );
        assert_eq!(render_backends(&[], 2), "  (no backends)\n");
    }
}
