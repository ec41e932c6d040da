//! `lb-ctl vip list|add|remove`: the VIPs (ipvsadm `-A`/`-D`, HAProxy
//! frontends) the agent serves, including those added at runtime.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context as _, Result};
use clap::Subcommand;

use super::{Exit, Output, answer, print_change, spelled, table::Table};
use lb_api::{
    client::{Client, encode},
    types::{AddVip, VipStatus},
};
use lb_config::{HashMode, Protocol};

#[derive(Debug, Subcommand)]
pub enum VipCommand {
    /// List the VIPs with their hash, ring size and backends.
    List,
    /// Add a VIP at runtime (kept in the state file until removed).
    Add {
        /// The virtual address.
        #[arg(long, value_name = "IP")]
        address: IpAddr,
        /// The port; 0 takes every port.
        #[arg(long)]
        port: u16,
        /// Transport protocol [default: tcp].
        #[arg(long, value_parser = spelled(Protocol::ALL, Protocol::as_str))]
        protocol: Option<Protocol>,
        /// A name for the VIP [default: ADDRESS:PORT/PROTOCOL].
        #[arg(long)]
        name: Option<String>,
        /// What the Maglev lookup hashes [default: the file's].
        #[arg(long, value_parser = spelled(HashMode::ALL, HashMode::as_str))]
        hash: Option<HashMode>,
        /// Maglev ring size, a prime [default: the file's].
        #[arg(long, value_name = "M")]
        ring_size: Option<u32>,
    },
    /// Remove a VIP and its backends.
    Remove {
        /// The VIP's name or ADDRESS:PORT/PROTOCOL.
        vip: String,
    },
}

pub async fn run(cmd: VipCommand, client: &Client, out: Output) -> Result<Exit> {
    match cmd {
        VipCommand::List => {
            let answer = answer::get(client, "/v1/vips").await?;
            if out == Output::Json {
                answer.print_json();
            } else {
                print!("{}", vip_table(&answer.typed::<Vec<VipStatus>>()?).render());
            }
            Ok(Exit::Ok)
        }
        VipCommand::Add {
            address,
            port,
            protocol,
            name,
            hash,
            ring_size,
        } => {
            let body = AddVip {
                name,
                address,
                port,
                protocol,
                hash,
                ring_size,
                backends: Vec::new(),
            };
            let what = body.name.clone().unwrap_or_else(|| {
                let proto = protocol.unwrap_or(Protocol::Tcp);
                format!("{}/{proto}", SocketAddr::new(address, port))
            });
            let answer = answer::post(client, "/v1/vips", &body)
                .await
                .with_context(|| format!("adding VIP {what}"))?;
            print_change(
                out,
                answer,
                &format!("added VIP {what}"),
                &format!("VIP {what} exists as asked"),
            )
        }
        VipCommand::Remove { vip } => {
            let answer = answer::delete(client, &format!("/v1/vips/{}", encode(&vip)))
                .await
                .with_context(|| format!("removing VIP {vip}"))?;
            print_change(
                out,
                answer,
                &format!("removed VIP {vip}"),
                &format!("no VIP {vip}"),
            )
        }
    }
}

/// `ADDRESS:PORT/PROTOCOL` (`[v6]:port/protocol`), the id a VIP can be named by.
pub fn vip_id(address: IpAddr, port: u16, protocol: Protocol) -> String {
    format!("{}/{protocol}", SocketAddr::new(address, port))
}

fn vip_table(vips: &[VipStatus]) -> Table {
    let mut t = Table::new(&["NAME", "VIP", "HASH", "RING", "BACKENDS", "SOURCE"]).right(&[3]);
    for v in vips {
        let up = v.backends.iter().filter(|b| b.state == "up").count();
        t.row([
            v.name.clone(),
            vip_id(v.address, v.port, v.protocol),
            v.hash.to_string(),
            v.ring_size.to_string(),
            format!("{up}/{} up", v.backends.len()),
            source(v.source).into(),
        ]);
    }
    t
}

/// `config` or `runtime`.
pub fn source(s: lb_api::types::Source) -> &'static str {
    match s {
        lb_api::types::Source::Config => "config",
        lb_api::types::Source::Runtime => "runtime",
    }
}
