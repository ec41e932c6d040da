//! `lb-ctl explain SERVICE CLIENT_IP[:PORT]`: which backend a client lands
//! on and why — the ring slot the shared flow hash picks, and any existing flow.

use std::net::{IpAddr, SocketAddr};

use anyhow::Result;

use super::{Exit, Output, answer};
use lb_api::{client::Client, paths::ExplainQuery, types::Explain};

/// Checks a `CLIENT_IP[:PORT]` argument (for clap: a bad one is a usage error).
pub fn parse_client(text: &str) -> Result<String, String> {
    if text.parse::<SocketAddr>().is_ok() || text.parse::<IpAddr>().is_ok() {
        Ok(text.to_owned())
    } else {
        Err("expected a client IP or IP:PORT ([IPv6]:PORT)".into())
    }
}

/// `who` has passed [`parse_client`].
pub async fn run(client: &Client, out: Output, service: &str, who: &str) -> Result<Exit> {
    let with_port = who.parse::<SocketAddr>().is_ok();
    let query = ExplainQuery {
        service: service.into(),
        client: who.into(),
    };
    let answer = answer::get(client, &query.path()).await?;
    answer.show(out, |e| render(e, with_port))
}

fn render(e: &Explain, with_port: bool) -> String {
    let mut out = format!(
        "client {} -> service {} (hash {})\n",
        e.client, e.service, e.hash
    );
    let chosen = match (&e.backend, e.backend_address) {
        (Some(name), Some(addr)) => format!("{name} ({addr})"),
        (Some(name), None) => name.clone(),
        (None, _) => "empty: no usable backend, packets are dropped".into(),
    };
    out.push_str(&format!(
        "  ring: slot {} of {} -> {chosen}\n",
        e.slot, e.ring_slots
    ));
    match (&e.flow_backend, with_port) {
        (Some(b), _) => out.push_str(&format!(
            "  flow table: this tuple is pinned to {b} (it wins over the ring)\n"
        )),
        (None, true) => out.push_str(
            "  flow table: no flow for this tuple; a new connection takes the ring's choice\n",
        ),
        (None, false) => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_config::HashMode;

    #[test]
    fn says_what_wins() {
        let mut e = Explain {
            service: "web".into(),
            client: "192.0.2.7:5555".into(),
            hash: HashMode::SourcePort,
            slot: 1234,
            ring_slots: 65537,
            backend: Some("b2".into()),
            backend_address: Some("10.0.1.2".parse().unwrap()),
            flow_backend: Some("b1".into()),
        };
        assert_eq!(
            render(&e, true),
            "client 192.0.2.7:5555 -> service web (hash source-port)\n\
             \x20 ring: slot 1234 of 65537 -> b2 (10.0.1.2)\n\
             \x20 flow table: this tuple is pinned to b1 (it wins over the ring)\n"
        );
        e.flow_backend = None;
        assert!(render(&e, true).ends_with("a new connection takes the ring's choice\n"));
        e.backend = None;
        assert!(render(&e, false).ends_with("-> empty: no usable backend, packets are dropped\n"));
    }

    #[test]
    fn clients() {
        assert!(parse_client("192.0.2.7").is_ok());
        assert!(parse_client("[2001:db8::7]:443").is_ok());
        assert!(parse_client("client-7").is_err());
    }
}
