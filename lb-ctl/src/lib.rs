//! lb-ctl: the agent that owns lb's data path, and the operator CLI.

pub mod config;
pub mod dataplane;
pub mod neigh;
pub mod reconcile;
