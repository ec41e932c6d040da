//! `cargo xtask demo`: a client, the load balancer and three backends in network
//! namespaces, traffic through the VIP and who served it; torn down after
//! (Ctrl-C included).

use anyhow::Result;

#[derive(clap::Args)]
pub struct Demo {
    /// Client addresses to connect from.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Connections per client address.
    #[arg(long, default_value_t = 3)]
    connections: usize,
}

pub fn run(args: &Demo) -> Result<()> {
    crate::lab::run(&[
        "demo".to_string(),
        "--clients".into(),
        args.clients.to_string(),
        "--connections".into(),
        args.connections.to_string(),
    ])
}
