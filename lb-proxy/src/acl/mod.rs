//! ACLs and conditions, HAProxy 2.6's semantics (docs/proxy.md, "Routing"):
//! a frontend's named ACLs compiled once ([`Acls::compile`]), conditions
//! (`if`/`unless`, AND by juxtaposition, `||`, `!`) compiled against them
//! ([`Acls::condition`]), and evaluated per request ([`Acls::holds`]).
//!
//! An ACL is true when one of its lines is; a line is true when one of the
//! values its fetch gives (every value of every occurrence of a header,
//! every occurrence of a query parameter) matches one of its patterns.
//! Evaluating the seed's `url_static` lines allocates nothing.

mod fetch;
mod nets;
mod pattern;
mod strings;

use std::net::IpAddr;

use hyper::http::HeaderName;
use hyper::http::request::Parts;
use lb_config::proxy::{self as cfg, AclUse, Condition};

use self::fetch::Fetch;
pub(crate) use self::nets::Nets;
pub use self::pattern::PatternError;
use self::pattern::Patterns;

/// The request as ACLs see it.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub head: &'a Parts,
    /// The client's address.
    pub src: IpAddr,
}

impl<'a> View<'a> {
    pub fn new(head: &'a Parts, src: IpAddr) -> Self {
        View { head, src }
    }
}

/// Why an ACL line cannot be compiled. The configuration's validation
/// refuses all of these first, so seeing one means the two disagree (a
/// bug): the line is then logged and matches nothing.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    #[error("ACL line at {at}: {source}")]
    Pattern { at: String, source: PatternError },
    #[error("ACL line at {at}: `{name}` is not a valid header name")]
    HeaderName { at: String, name: String },
}

/// A frontend's named ACLs, compiled, in file order.
#[derive(Debug)]
pub struct Acls {
    acls: Vec<Vec<Test>>,
}

/// One compiled ACL line.
#[derive(Debug)]
struct Test {
    fetch: Fetch,
    patterns: Patterns,
}

/// A compiled `if`/`unless` condition.
#[derive(Debug)]
pub struct Cond {
    unless: bool,
    /// ORed terms, each the AND of its items.
    any: Vec<Vec<Term>>,
}

#[derive(Debug)]
struct Term {
    negated: bool,
    what: What,
}

#[derive(Debug)]
enum What {
    Named(usize),
    Inline(Test),
    Always(bool),
}

impl Acls {
    pub fn compile(acls: &[cfg::Acl]) -> Acls {
        let acls = acls
            .iter()
            .map(|a| a.tests.iter().map(Test::compile_or_never).collect())
            .collect();
        Acls { acls }
    }

    /// `c` compiled against these ACLs; a reference to an ACL that does
    /// not exist (validation prevents it) is false.
    pub fn condition(&self, c: &Condition) -> Cond {
        let term = |r: &cfg::AclRef| {
            let what = match &r.acl {
                AclUse::Named(i) => What::Named(*i),
                AclUse::Inline(t) => What::Inline(Test::compile_or_never(t)),
                AclUse::Always(b) => What::Always(*b),
            };
            Term {
                negated: r.negated,
                what,
            }
        };
        let any = c
            .any
            .iter()
            .map(|all| all.iter().map(term).collect())
            .collect();
        Cond {
            unless: c.unless,
            any,
        }
    }

    /// Whether the rule with condition `c` applies to the request.
    pub fn holds(&self, c: &Cond, view: &View<'_>) -> bool {
        let any = c
            .any
            .iter()
            .any(|all| all.iter().all(|t| self.term(t, view) != t.negated));
        any != c.unless
    }

    fn term(&self, t: &Term, view: &View<'_>) -> bool {
        match &t.what {
            What::Named(i) => self
                .acls
                .get(*i)
                .is_some_and(|tests| tests.iter().any(|test| test.eval(view))),
            What::Inline(test) => test.eval(view),
            What::Always(b) => *b,
        }
    }
}

/// A frontend's rules are evaluated by many tasks at once.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Acls>();
    shared::<Cond>();
};

impl Test {
    /// The line compiled; one that cannot be (see [`AclError`]) is logged
    /// and matches nothing.
    fn compile_or_never(t: &cfg::AclTest) -> Test {
        Test::compile(t).unwrap_or_else(|e| {
            tracing::error!("{e}; the line matches nothing");
            Test {
                fetch: Fetch::Src,
                patterns: Patterns::Never,
            }
        })
    }

    fn compile(t: &cfg::AclTest) -> Result<Test, AclError> {
        let fetch = match &t.fetch {
            cfg::Fetch::Path => Fetch::Path,
            cfg::Fetch::Url => Fetch::Url,
            cfg::Fetch::UrlParam(name) => Fetch::UrlParam(name.as_bytes().into()),
            cfg::Fetch::Hdr(name) => {
                Fetch::Hdr(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    AclError::HeaderName {
                        at: t.at.clone(),
                        name: name.clone(),
                    }
                })?)
            }
            cfg::Fetch::Method => Fetch::Method,
            cfg::Fetch::Src => Fetch::Src,
            cfg::Fetch::ReqVer => Fetch::ReqVer,
        };
        let method = matches!(fetch, Fetch::Method);
        let patterns =
            Patterns::compile(t.matcher, t.ignore_case, &t.values, method).map_err(|source| {
                AclError::Pattern {
                    at: t.at.clone(),
                    source,
                }
            })?;
        Ok(Test { fetch, patterns })
    }

    fn eval(&self, view: &View<'_>) -> bool {
        self.fetch.any(view, |sample| self.patterns.matches(sample))
    }
}

#[cfg(test)]
mod tests;
