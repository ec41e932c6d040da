//! lb's test rig: network namespaces joined by veths and bridges, tiny HTTP
//! backends that answer with their name, and packet builders for
//! `BPF_PROG_TEST_RUN`. Used by the integration tests and by `cargo xtask demo`.

pub mod agent;
pub mod bench;
pub mod demo;
pub mod http;
pub mod lab;
pub mod lb;
pub mod netns;
pub mod packet;
pub mod rig;
