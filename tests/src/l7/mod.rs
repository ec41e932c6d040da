//! The L7 rig: one [`setup::Setup`] written out as HAProxy 2.6's
//! haproxy.cfg and as lb's lb.yaml, both proxies run on it on loopback
//! ([`procs`]), echo servers that say who they are and what they received
//! ([`echo`]), and a raw HTTP client that picks its source address
//! ([`client`]). Used by tests/tests/l7_*.rs and `lb-lab bench-l7`.

pub mod client;
pub mod diff;
pub mod echo;
pub mod haproxy_cfg;
pub mod lb_yaml;
pub mod procs;
pub mod seed;
pub mod setup;
