//! A differential run: the same requests, in the same order, from the same
//! source addresses, through HAProxy and through lb, and what each request
//! came to ([`Seen`]): the server chosen and the headers that decide
//! persistence and client addresses, on both sides of the proxy.

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context as _, Result};

use super::client::{Conn, request};

/// One request of the table.
#[derive(Clone, Debug)]
pub struct Case {
    pub label: String,
    /// Index of the frontend it is sent to.
    pub frontend: usize,
    pub src: IpAddr,
    pub target: String,
    /// Extra header lines, `Name: value`.
    pub headers: Vec<String>,
}

impl Case {
    pub fn new(label: impl Into<String>, frontend: usize, src: IpAddr, target: &str) -> Case {
        Case {
            label: label.into(),
            frontend,
            src,
            target: target.to_owned(),
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, line: &str) -> Case {
        self.headers.push(line.to_owned());
        self
    }
}

/// What one request came to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    pub status: u16,
    /// The echo server that answered.
    pub server: Option<String>,
    /// `Set-Cookie` and `Cache-Control` lines the client got.
    pub set_cookie: Vec<String>,
    pub cache_control: Vec<String>,
    /// `X-Forwarded-For` and `X-Client` lines the server got.
    pub forwarded: Vec<String>,
    /// `Cookie` lines the server got.
    pub cookie: Vec<String>,
}

/// Sends `case` to `binds[case.frontend]` on a connection of its own.
pub fn observe(case: &Case, binds: &[SocketAddr]) -> Result<Seen> {
    let dst = *binds.get(case.frontend).context("no such frontend")?;
    let headers: Vec<&str> = case.headers.iter().map(String::as_str).collect();
    let r = Conn::open(case.src, dst)?
        .send(&request("GET", &case.target, &headers))
        .with_context(|| format!("case {}", case.label))?;
    let own = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
    let mut forwarded = r.received_header("x-forwarded-for");
    forwarded.extend(r.received_header("x-client"));
    Ok(Seen {
        status: r.status,
        server: r.server().map(str::to_owned),
        set_cookie: own(r.header("set-cookie")),
        cache_control: own(r.header("cache-control")),
        forwarded,
        cookie: r.received_header("cookie"),
    })
}

/// Every case in order.
pub fn observe_all(cases: &[Case], binds: &[SocketAddr]) -> Result<Vec<Seen>> {
    cases.iter().map(|c| observe(c, binds)).collect()
}
