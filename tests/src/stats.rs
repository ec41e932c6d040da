//! The statistics page in a real agent, for its tests: a [`Lab`] whose LB
//! runs `lb-ctl agent` with the seed's `listen admin_status` as `stats:`, an
//! HTTP frontend and an L4 service over one pool of two real HTTP backends,
//! and a plain HTTP/1.1 client for the page.

use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;

use crate::agent::Agent;
use crate::http::{HttpBackend, connect, http_get};
use crate::lab::{Lab, LabSpec};
use crate::netns::NetNs;

/// The stats page's port, on every address of the LB namespace.
pub const STATS_PORT: u16 = 9188;
/// The HTTP frontend's port.
pub const FRONTEND_PORT: u16 = 8080;
/// The page's path (the seed's `stats uri`).
pub const URI: &str = "/haproxy-status";
/// The seed's realm, kept whole.
pub const REALM: &str = "welcom login";
/// An admin (`admin: [admin]`) and a reader.
pub const ADMIN: (&str, &str) = ("admin", "admin");
pub const GUEST: (&str, &str) = ("guest", "guest");
/// The pool of the frontend and of the L4 service, and its servers.
pub const POOL: &str = "web";
pub const SERVERS: [&str; 2] = ["b1", "b2"];
/// The HTTP frontend and the L4 service.
pub const FRONTEND: &str = "main";
pub const SERVICE: &str = "vip";

const T: Duration = Duration::from_secs(5);

/// A lab, its two HTTP backends and the agent serving the page.
pub struct StatsLab {
    // Dropped in this order: the agent, then the backends, then the namespaces.
    pub agent: Agent,
    pub http: Vec<HttpBackend>,
    pub lab: Lab,
}

/// One answer of the page.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    /// Names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The first header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The seed's `listen admin_status` as the `stats:` section, with the
/// guest read-only (`admin: [admin]`).
pub fn stats_section() -> String {
    format!(
        "stats:
  bind: \"0.0.0.0:{STATS_PORT}\"
  uri: {URI}
  refresh: 30s
  realm: {REALM}
  auth: [\"{}:{}\", \"{}:{}\"]
  hide_version: true
  admin: [{}]
",
        ADMIN.0, ADMIN.1, GUEST.0, GUEST.1, ADMIN.0
    )
}

impl StatsLab {
    /// Builds the lab and starts the agent with [`stats_section`].
    pub fn start() -> Result<StatsLab> {
        StatsLab::start_with(&stats_section())
    }

    /// [`StatsLab::start`] with another `stats:` section (whole, from `stats:`).
    pub fn start_with(stats: &str) -> Result<StatsLab> {
        StatsLab::start_in(StatsLab::lab()?, stats)
    }

    /// The lab alone, for a test that binds something in it (a log
    /// receiver) before [`StatsLab::start_in`].
    pub fn lab() -> Result<Lab> {
        Lab::new(LabSpec {
            backends: SERVERS.len(),
            client_aliases: 0,
            ipv6: false,
        })
        .context("building the lab (needs root)")
    }

    /// Starts the backends and the agent with `stats` in `lab`.
    pub fn start_in(lab: Lab, stats: &str) -> Result<StatsLab> {
        let http = lab.start_http(80).context("HTTP backends")?;
        let agent = Agent::start(&lab, &format!("{}{stats}", config(&lab)))?;
        Ok(StatsLab { agent, http, lab })
    }

    /// The page's address, reachable from [`Self::client_ns`] (and from the
    /// LB namespace).
    pub fn stats_addr(&self) -> SocketAddr {
        SocketAddr::new(self.lab.lb().ip(false), STATS_PORT)
    }

    /// `http://ADDR:PORT/haproxy-status`, for a browser started in
    /// [`Self::client_ns`] (`ip netns exec NAME chromium ...`).
    pub fn url(&self) -> String {
        format!("http://{}{URI}", self.stats_addr())
    }

    /// The namespace the page and the frontend are reached from.
    pub fn client_ns(&self) -> &NetNs {
        &self.lab.client().ns
    }

    /// `GET /` through the HTTP frontend: the name of the server that answered.
    pub fn through_frontend(&self) -> Result<String> {
        let addr = SocketAddr::new(self.lab.lb().ip(false), FRONTEND_PORT);
        http_get(self.client_ns(), None, addr, T)
    }

    /// The state of `server` of `pool` as `lb-ctl backend list -o json`
    /// says: `up`, `drain`, `down` or `maint`.
    pub fn server_state(&self, pool: &str, server: &str) -> String {
        self.server(pool, server)["state"]
            .as_str()
            .expect("a state")
            .to_owned()
    }

    /// The weight in effect of `server` of `pool`.
    pub fn server_weight(&self, pool: &str, server: &str) -> u64 {
        self.server(pool, server)["weight"]
            .as_u64()
            .expect("a weight")
    }

    fn server(&self, pool: &str, server: &str) -> serde_json::Value {
        let list = self.agent.json(&["backend", "list", pool]);
        let all = list.as_array().cloned().unwrap_or_default();
        all.into_iter()
            .find(|b| b["name"] == server)
            .unwrap_or_else(|| panic!("no backend {server} in {pool}: {list}"))
    }

    /// `GET path` on the page as `user` (`None`: without credentials).
    pub fn get(&self, path: &str, user: Option<(&str, &str)>) -> Answer {
        self.request("GET", path, user, &[], "")
    }

    /// `POST path` with a form body (`application/x-www-form-urlencoded`).
    pub fn post(&self, path: &str, user: Option<(&str, &str)>, form: &str) -> Answer {
        let ty = [("Content-Type", "application/x-www-form-urlencoded")];
        self.request("POST", path, user, &ty, form)
    }

    /// Any request to the page, from the client namespace; panics when the
    /// page cannot be reached.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        user: Option<(&str, &str)>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.stats_addr(),
            body.len()
        );
        if let Some((u, p)) = user {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            head += &format!("Authorization: Basic {token}\r\n");
        }
        for (n, v) in headers {
            head += &format!("{n}: {v}\r\n");
        }
        let raw = format!("{head}\r\n{body}");
        exchange(self.client_ns(), self.stats_addr(), &raw)
            .unwrap_or_else(|e| panic!("{method} {path}: {e:#}\n{}", self.agent.log()))
    }
}

/// One pool of the lab's two backends, served by the frontend `main` and
/// by the L4 service `vip` (direct routing on the VIP).
fn config(lab: &Lab) -> String {
    let b = |n: &str| lab.backend(n).ip(false);
    format!(
        "interfaces: [{{name: eth0}}]
pools:
  {POOL}:
    backends:
      - {{name: {s1}, address: {b1}, port: 80}}
      - {{name: {s2}, address: {b2}, port: 80}}
services:
  - {{name: {SERVICE}, address: {vip}, port: 80, pool: {POOL}}}
frontends:
  {FRONTEND}:
    bind: \"*:{FRONTEND_PORT}\"
    default_backend: {POOL}
",
        s1 = SERVERS[0],
        s2 = SERVERS[1],
        b1 = b(SERVERS[0]),
        b2 = b(SERVERS[1]),
        vip = lab.vip4(),
    )
}

/// Sends `raw` on a new connection made in `ns` and reads the whole answer.
fn exchange(ns: &NetNs, addr: SocketAddr, raw: &str) -> Result<Answer> {
    let mut s = ns.try_run(|| connect(None, addr, T))??;
    s.set_read_timeout(Some(T))?;
    s.write_all(raw.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    parse(&String::from_utf8_lossy(&out))
}

fn parse(text: &str) -> Result<Answer> {
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        bail!("no complete answer: {text:?}");
    };
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no status line: {head:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}
