//! The L7 proxy: HTTP/1.1 and TCP frontends with HAProxy 2.x's semantics
//! (ACL routing, balance algorithms, cookie persistence, retries and
//! redispatch, timeouts), fed by the agent with the pools in effect.
//!
//! The pure parts (what a request matches, which server a balancer picks,
//! what the persistence cookie says) are separate from the sockets, so they
//! are tested on their own; docs/proxy.md describes the whole.

pub mod acl;
pub mod answer;
pub mod balance;
mod confine;
pub mod cookie;
mod cores;
mod cork;
pub mod decide;
pub mod front;
mod handle;
pub mod headers;
pub mod histogram;
pub mod listen;
pub mod log;
pub mod reject;
pub mod route;
pub mod runtime;
mod serve;
pub mod servers;
pub mod stats;
pub mod upstream;

pub use confine::ConfineError;
pub(crate) use handle::Shared;
pub use handle::{Proxy, ProxyError};
pub use runtime::{Desired, PoolView, ServerState};
