//! The seed's haproxy.cfg (its `global`, `defaults`, `frontend main`,
//! `backend static` and `backend web`) as a [`Setup`], on servers of the
//! caller's choosing: what the differential test and the benchmark start from.

use std::net::SocketAddr;

use super::setup::{Backend, Balance, Defaults, Frontend, Server, Setup};

/// `frontend main`: the static files by path to `static`, the rest to `web`.
pub fn main_frontend() -> Frontend {
    let mut f = Frontend::to("main", "web");
    for line in [
        "path_beg -i /static /images /javascript /stylesheets",
        "path_end -i .jpg .gif .png .css .js",
    ] {
        f.acls.push(("url_static".into(), line.into()));
    }
    f.use_backend.push("static if url_static".into());
    f
}

/// `backend static` (one server) and `backend web` (`web1`/`web2`, cookies
/// `server1`/`server2`, weight 6 each), without the seed's health checks.
pub fn backends(static_server: SocketAddr, web1: SocketAddr, web2: SocketAddr) -> Vec<Backend> {
    vec![
        Backend::new(
            "static",
            Balance::RoundRobin,
            vec![Server::new("static", static_server)],
        ),
        Backend::new(
            "web",
            Balance::RoundRobin,
            vec![
                Server::new("web1", web1).cookie("server1").weight(6),
                Server::new("web2", web2).cookie("server2").weight(6),
            ],
        ),
    ]
}

/// The whole seed: `global maxconn 4000`, its `defaults`, `main`, `static`
/// and `web`.
pub fn setup(static_server: SocketAddr, web1: SocketAddr, web2: SocketAddr) -> Setup {
    Setup {
        maxconn: 4000,
        threads: None,
        defaults: Defaults::seed(),
        frontends: vec![main_frontend()],
        backends: backends(static_server, web1, web2),
    }
}
