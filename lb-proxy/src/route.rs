//! Where a request goes in its frontend, HAProxy's order: the
//! `http_request` rules first (the first whose condition holds applies:
//! `deny` answers, `allow` stops the rules), then the `use_backend` rules in
//! order (the first whose condition holds names the pool), then
//! `default_backend`; no pool at all: 503.

use std::net::SocketAddr;

use hyper::StatusCode;
use hyper::http::request::Parts;
use lb_config::proxy::{FrontendConfig, HttpRequestAction};

use crate::acl::{Acls, Cond, View};

/// What routing decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// Answer with this status (an `http_request` deny).
    Deny(StatusCode),
    /// Forward to this pool.
    Pool(&'a str),
    /// No rule names a pool and there is no default: 503.
    NoPool,
}

/// A frontend's rules, compiled.
#[derive(Debug)]
pub struct Routes {
    acls: Acls,
    http_request: Vec<(Action, Option<Cond>)>,
    use_backend: Vec<(Box<str>, Option<Cond>)>,
    default: Option<Box<str>>,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Deny(StatusCode),
    Allow,
}

impl Routes {
    pub fn compile(cfg: &FrontendConfig) -> Routes {
        let acls = Acls::compile(&cfg.acls);
        let http_request = cfg
            .http_request
            .iter()
            .map(|r| {
                let action = match r.action {
                    HttpRequestAction::Deny { status } => {
                        Action::Deny(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN))
                    }
                    HttpRequestAction::Allow => Action::Allow,
                };
                (action, r.cond.as_ref().map(|c| acls.condition(c)))
            })
            .collect();
        let use_backend = cfg
            .use_backend
            .iter()
            .map(|u| {
                (
                    u.pool.as_str().into(),
                    u.cond.as_ref().map(|c| acls.condition(c)),
                )
            })
            .collect();
        Routes {
            acls,
            http_request,
            use_backend,
            default: cfg.default_backend.as_deref().map(Box::from),
        }
    }

    /// Decides for a request from `peer`.
    pub fn decide(&self, head: &Parts, peer: SocketAddr) -> Decision<'_> {
        let view = View::new(head, peer.ip());
        let holds = |c: &Option<Cond>| c.as_ref().is_none_or(|c| self.acls.holds(c, &view));
        for (action, cond) in &self.http_request {
            if holds(cond) {
                match action {
                    Action::Deny(status) => return Decision::Deny(*status),
                    Action::Allow => break,
                }
            }
        }
        for (pool, cond) in &self.use_backend {
            if holds(cond) {
                return Decision::Pool(pool);
            }
        }
        self.default_pool().map_or(Decision::NoPool, Decision::Pool)
    }

    /// `default_backend` (the pool of a `mode tcp` frontend).
    pub fn default_pool(&self) -> Option<&str> {
        self.default.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use lb_config::proxy::{
        Acl, AclRef, AclTest, AclUse, Condition, Fetch, HttpRequestRule, Matcher, ProxyMode,
        Timeouts, UseBackend,
    };

    use super::*;

    fn acl(name: &str, fetch: Fetch, matcher: Matcher, values: &[&str]) -> Acl {
        Acl {
            name: name.into(),
            tests: vec![AclTest {
                fetch,
                matcher,
                ignore_case: true,
                values: values.iter().map(|v| (*v).to_owned()).collect(),
                at: "test".into(),
            }],
        }
    }

    /// `if ACL` (or `unless ACL`) for the ACL at `index`.
    fn cond(index: usize, unless: bool) -> Option<Condition> {
        Some(Condition {
            unless,
            any: vec![vec![AclRef {
                negated: false,
                acl: AclUse::Named(index),
            }]],
        })
    }

    /// The seed's frontend with a deny for /admin unless from 10.0.0.0/8,
    /// an allow for /health, and a second use_backend.
    fn frontend(default: Option<&str>) -> FrontendConfig {
        FrontendConfig {
            name: "main".into(),
            binds: Vec::new(),
            mode: ProxyMode::Http,
            maxconn: 10,
            timeouts: Timeouts::default(),
            acls: vec![
                acl(
                    "url_static",
                    Fetch::Path,
                    Matcher::Beg,
                    &["/static", "/images"],
                ),
                acl("admin", Fetch::Path, Matcher::Beg, &["/admin"]),
                acl("inside", Fetch::Src, Matcher::Ip, &["10.0.0.0/8"]),
                acl("health", Fetch::Path, Matcher::Str, &["/health"]),
                acl("api", Fetch::Path, Matcher::Beg, &["/api", "/static/api"]),
            ],
            http_request: vec![
                HttpRequestRule {
                    action: HttpRequestAction::Allow,
                    cond: cond(3, false),
                },
                HttpRequestRule {
                    action: HttpRequestAction::Deny { status: 403 },
                    cond: Some(Condition {
                        unless: false,
                        any: vec![vec![
                            AclRef {
                                negated: false,
                                acl: AclUse::Named(1),
                            },
                            AclRef {
                                negated: true,
                                acl: AclUse::Named(2),
                            },
                        ]],
                    }),
                },
                HttpRequestRule {
                    action: HttpRequestAction::Deny { status: 429 },
                    cond: cond(3, true),
                },
            ],
            use_backend: vec![
                UseBackend {
                    pool: "static".into(),
                    cond: cond(0, false),
                },
                UseBackend {
                    pool: "api".into(),
                    cond: cond(4, false),
                },
            ],
            default_backend: default.map(Into::into),
            forwardfor: None,
            forwarded_proto: false,
            http_server_close: false,
            reject: Default::default(),
            log: Default::default(),
        }
    }

    fn decide<'a>(r: &'a Routes, path: &str, src: &str) -> Decision<'a> {
        let (parts, ()) = hyper::Request::get(path).body(()).unwrap().into_parts();
        r.decide(&parts, SocketAddr::new(src.parse().unwrap(), 40000))
    }

    #[test]
    fn rules_apply_in_haproxys_order() {
        let r = Routes::compile(&frontend(Some("web")));
        let out = "192.0.2.1";
        // `allow` ends the http_request rules: the 429 rule is never reached.
        assert_eq!(decide(&r, "/health", out), Decision::Pool("web"));
        assert_eq!(
            decide(&r, "/admin/x", out),
            Decision::Deny(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            decide(&r, "/admin/x", "10.1.2.3"),
            Decision::Deny(StatusCode::TOO_MANY_REQUESTS)
        );
        // Every other request falls under `deny 429 unless health`.
        assert_eq!(
            decide(&r, "/", out),
            Decision::Deny(StatusCode::TOO_MANY_REQUESTS)
        );
    }

    #[test]
    fn use_backend_in_order_then_default_then_none() {
        let mut f = frontend(Some("web"));
        f.http_request.clear();
        let r = Routes::compile(&f);
        let out = "192.0.2.1";
        assert_eq!(
            decide(&r, "/static/api/x", out),
            Decision::Pool("static"),
            "first match wins"
        );
        assert_eq!(decide(&r, "/api/x", out), Decision::Pool("api"));
        assert_eq!(
            decide(&r, "/IMAGES/a.png", out),
            Decision::Pool("static"),
            "-i"
        );
        assert_eq!(decide(&r, "/other", out), Decision::Pool("web"));
        f.default_backend = None;
        let r = Routes::compile(&f);
        assert_eq!(decide(&r, "/other", out), Decision::NoPool);
        assert_eq!(r.default_pool(), None);
    }
}
