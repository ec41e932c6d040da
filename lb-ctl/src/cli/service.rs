//! `lb-ctl service list|add|remove`: the L4 services (ipvsadm `-A`/`-D`,
//! keepalived `virtual_server`) the agent serves, including those added at
//! runtime; and how services are printed, here and in `status`.

use std::net::IpAddr;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{
    Exit, Output, answer,
    change::{Words, report},
    spelled, table,
};
use lb_api::{
    client::Client,
    paths::Route,
    types::{AddService, RingSizeSetting, ServiceStatus},
};
use lb_config::{HashMode, Protocol, ServiceKey};

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// List the services with their hash, ring, pool and traffic.
    List,
    /// Add a service at runtime (kept in the state file until removed).
    Add(AddArgs),
    /// Remove a service; its pool stays.
    Remove {
        /// The service's name or ADDRESS:PORT/PROTOCOL.
        service: String,
    },
}

/// `lb-ctl service add --address ... --port ... --pool ...`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The virtual address.
    #[arg(long, value_name = "IP")]
    address: IpAddr,
    /// The port; 0 takes every port.
    #[arg(long)]
    port: u16,
    /// Transport protocol [default: tcp].
    #[arg(long, value_parser = spelled(Protocol::ALL, Protocol::as_str))]
    protocol: Option<Protocol>,
    /// What the Maglev lookup hashes [default: source].
    #[arg(long, value_parser = spelled(HashMode::ALL, HashMode::as_str))]
    hash: Option<HashMode>,
    /// Maglev ring size: `auto` (from the pool's size) or a prime [default: auto].
    #[arg(long, value_name = "auto|M", value_parser = parse_ring_size)]
    ring_size: Option<RingSizeSetting>,
    /// The pool whose backends serve it.
    #[arg(long)]
    pool: String,
    /// A name for the service [default: ADDRESS:PORT/PROTOCOL].
    #[arg(long)]
    name: Option<String>,
}

/// `auto` or a ring size (for clap: anything else is a usage error).
pub fn parse_ring_size(text: &str) -> Result<RingSizeSetting, String> {
    if text == "auto" {
        return Ok(RingSizeSetting::Auto);
    }
    text.parse()
        .map(RingSizeSetting::Fixed)
        .map_err(|_| "expected `auto` or a prime number of slots".into())
}

pub async fn run(cmd: ServiceCommand, client: &Client, out: Output) -> Result<Exit> {
    match cmd {
        ServiceCommand::List => {
            let answer = answer::get(client, &Route::Services.path()).await?;
            answer.show(out, |s: &Vec<ServiceStatus>| render_services(s))
        }
        ServiceCommand::Add(args) => add(client, out, args).await,
        ServiceCommand::Remove { service } => {
            report(
                out,
                Words::remove(&format!("service {service}")),
                answer::delete(client, &Route::Service(service.clone()).path()),
            )
            .await
        }
    }
}

async fn add(client: &Client, out: Output, args: AddArgs) -> Result<Exit> {
    let key = ServiceKey {
        address: args.address,
        port: args.port,
        protocol: args.protocol.unwrap_or(Protocol::Tcp),
    };
    let what = format!("service {}", args.name.clone().unwrap_or(key.to_string()));
    let body = AddService {
        name: args.name,
        address: args.address,
        port: args.port,
        protocol: args.protocol,
        hash: args.hash,
        ring_size: args.ring_size,
        pool: args.pool,
    };
    let path = Route::Services.path();
    report(out, Words::add(&what), answer::post(client, &path, &body)).await
}

/// `ADDRESS:PORT/PROTOCOL` of a service.
pub fn key(s: &ServiceStatus) -> String {
    ServiceKey {
        address: s.address,
        port: s.port,
        protocol: s.protocol,
    }
    .to_string()
}

/// The services as one table: what they are, then their traffic.
pub fn render_services(services: &[ServiceStatus]) -> String {
    if services.is_empty() {
        return "no services\n".into();
    }
    let head = [
        "NAME",
        "SERVICE",
        "HASH",
        "RING",
        "POOL",
        "SOURCE",
        "NEW FLOWS",
        "PACKETS",
        "BYTES",
    ];
    let mut t = table::Table::new(&head).right(&[6, 7, 8]);
    for s in services {
        let c = s.counters;
        t.row([
            s.name.clone(),
            key(s),
            s.hash.to_string(),
            ring(s),
            s.pool.clone(),
            s.source.as_str().to_owned(),
            c.new_flows.to_string(),
            c.packets.to_string(),
            table::bytes(c.bytes),
        ]);
    }
    t.render()
}

/// `auto (8191)` or `65537`.
fn ring(s: &ServiceStatus) -> String {
    match s.ring_size {
        RingSizeSetting::Auto => format!("auto ({})", s.ring_slots),
        RingSizeSetting::Fixed(m) => m.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use lb_api::types::{Counters, Source};

    pub(crate) fn service(name: &str, ring_size: RingSizeSetting) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            address: "2001:db8::1".parse().unwrap(),
            port: 80,
            protocol: Protocol::Tcp,
            hash: HashMode::SourcePort,
            ring_size,
            ring_slots: 8191,
            pool: "web".into(),
            source: Source::Config,
            counters: Counters {
                packets: 3400,
                bytes: 1536 * 1024,
                new_flows: 12,
            },
            backends: vec![],
        }
    }

    #[test]
    fn services_table() {
        let auto = service("web", RingSizeSetting::Auto);
        let mut fixed = service("web-tls", RingSizeSetting::Fixed(65537));
        fixed.port = 443;
        fixed.source = Source::Runtime;
        assert_eq!(
            render_services(&[auto, fixed]),
            "NAME     SERVICE                HASH         RING         POOL  SOURCE   NEW FLOWS  PACKETS    BYTES\n\
             web      [2001:db8::1]:80/tcp   source-port  auto (8191)  web   config          12     3400  1.5 MiB\n\
             web-tls  [2001:db8::1]:443/tcp  source-port  65537        web   runtime         12     3400  1.5 MiB\n"
        );
        assert_eq!(render_services(&[]), "no services\n");
    }

    #[test]
    fn ring_sizes() {
        assert_eq!(parse_ring_size("auto"), Ok(RingSizeSetting::Auto));
        assert_eq!(parse_ring_size("65537"), Ok(RingSizeSetting::Fixed(65537)));
        assert!(parse_ring_size("big").is_err());
    }
}
