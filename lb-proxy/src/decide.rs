//! A pool's decision logic as the server side drives it
//! ([`crate::upstream::Chooser`]): its persistence cookie, its balancer
//! and its servers' states, built from the pool the agent has in effect
//! and the server side's per-server links (whose load the balancers read).
//!
//! A [`PoolChooser`] is rebuilt whenever the pool changes; built from the
//! previous one, the balancer keeps its place (round robin positions,
//! servers' points on a consistent ring).

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::HeaderMap;

use crate::balance::{self, Balancer};
use crate::cookie::{self, CookieRules, Reply, SetCookie};
use crate::runtime::{PoolView, ServerState as ViewState};
use crate::servers::{Load, Server, ServerSpec, ServerState};
use crate::upstream::{Answered, Chooser, Link, Persisted, Pick, Subject};

/// The port of a backend written without one (the runtime's links use it too).
const DEFAULT_PORT: u16 = 80;

/// One pool's cookie rules and balancer.
#[derive(Debug)]
pub struct PoolChooser {
    balancer: Balancer,
    cookie: Option<CookieRules>,
}

impl PoolChooser {
    /// The chooser of `view`, whose backends are `links`, in the same
    /// order; `previous` is the same pool's chooser before the change.
    pub fn new(
        view: &PoolView,
        links: &[Arc<Link>],
        previous: Option<&PoolChooser>,
    ) -> PoolChooser {
        let specs: Vec<ServerSpec> = view
            .config
            .backends
            .iter()
            .zip(links)
            .zip(&view.states)
            .map(|((b, link), state)| ServerSpec {
                name: b.name.clone(),
                addr: SocketAddr::new(b.address, b.port.unwrap_or(DEFAULT_PORT)),
                config_weight: b.weight,
                weight: b.weight,
                state: state_of(*state),
                cookie: b.proxy.cookie.clone(),
                maxconn: b.proxy.maxconn,
                load: Arc::clone(link) as Arc<dyn Load>,
            })
            .collect();
        let cfg = &view.config.proxy;
        PoolChooser {
            balancer: Balancer::new(cfg, &specs, previous.map(|p| &p.balancer)),
            cookie: cfg.cookie.as_ref().map(CookieRules::new),
        }
    }

    fn server(&self, index: usize) -> Option<&Server> {
        let servers = self.balancer.servers();
        servers.get(servers.id_at(index)?)
    }
}

fn state_of(s: ViewState) -> ServerState {
    match s {
        ViewState::Up => ServerState::Up,
        ViewState::Drain => ServerState::Drain,
        ViewState::Down => ServerState::Down,
        ViewState::Maint => ServerState::Maint,
    }
}

impl Chooser for PoolChooser {
    fn persisted(&self, headers: &mut HeaderMap) -> Persisted {
        let Some(rules) = &self.cookie else {
            return Persisted::No;
        };
        match rules.on_request(headers, self.balancer.servers()) {
            cookie::Persisted::No => Persisted::No,
            cookie::Persisted::Invalid => Persisted::Invalid,
            cookie::Persisted::To(id) => Persisted::To(id.index()),
            cookie::Persisted::Down(id) => Persisted::Down(id.index()),
        }
    }

    fn logs_cookie(&self) -> bool {
        self.cookie.as_ref().is_some_and(CookieRules::is_logged)
    }

    fn pick(&self, subject: Subject<'_>, avoid: Option<usize>) -> Pick {
        let avoid = avoid.and_then(|i| self.balancer.servers().id_at(i));
        match self.balancer.pick(subject.client.ip(), subject.head, avoid) {
            balance::Pick::Server(id) => Pick::Server(id.index()),
            balance::Pick::Full => Pick::AllFull,
            balance::Pick::NoServer => Pick::NoServer,
        }
    }

    fn running(&self, server: usize) -> bool {
        self.server(server).is_some_and(Server::is_running)
    }

    fn usable(&self, server: usize) -> bool {
        self.server(server).is_some_and(Server::takes_new_traffic)
    }

    fn usable_count(&self) -> usize {
        self.balancer.servers().usable_count()
    }

    fn on_response(&self, answered: Answered<'_>, headers: &mut HeaderMap) -> SetCookie {
        let (Some(rules), Some(server)) = (&self.cookie, self.server(answered.server)) else {
            return SetCookie::None;
        };
        let reply = Reply {
            server,
            direct: answered.persisted == Persisted::To(answered.server),
            method: answered.method,
            status: answered.status,
        };
        rules.on_response(reply, headers)
    }
}

/// The runtime keeps a pool's chooser to build the next one from it, and
/// hands the server side a shared handle.
impl<T: Chooser> Chooser for Arc<T> {
    fn persisted(&self, headers: &mut HeaderMap) -> Persisted {
        (**self).persisted(headers)
    }

    fn logs_cookie(&self) -> bool {
        (**self).logs_cookie()
    }

    fn pick(&self, subject: Subject<'_>, avoid: Option<usize>) -> Pick {
        (**self).pick(subject, avoid)
    }

    fn running(&self, server: usize) -> bool {
        (**self).running(server)
    }

    fn usable(&self, server: usize) -> bool {
        (**self).usable(server)
    }

    fn usable_count(&self) -> usize {
        (**self).usable_count()
    }

    fn on_response(&self, answered: Answered<'_>, headers: &mut HeaderMap) -> SetCookie {
        (**self).on_response(answered, headers)
    }
}
