//! lb's test rig: network namespaces joined by veths and bridges, tiny HTTP
//! backends that answer with their name, and packet builders for
//! `BPF_PROG_TEST_RUN`. Used by the integration tests and by `cargo xtask demo`.

pub mod agent;
pub mod bench;
pub mod bench_control;
pub mod bench_health;
pub mod bench_json;
pub mod bench_l7;
pub mod bench_vrrp;
pub mod cdp;
pub mod chroot;
pub mod demo;
pub mod health;
pub mod http;
pub mod l7;
pub mod lab;
pub mod lb;
pub mod netns;
pub mod notify;
pub mod packet;
pub mod rig;
pub mod routed;
pub mod rsyslog;
pub mod stats;
pub mod syslog;
pub mod vrrp;
pub mod vrrp_conf;
pub mod vrrp_probe;
