//! lb-ctl: the agent that owns lb's data path, and the operator CLI.

pub mod agent;
pub mod api;
pub mod cli;
pub mod config;
pub mod dataplane;
pub mod desired;
pub mod metrics;
pub mod neigh;
pub mod reconcile;
pub mod state;
pub mod sys;
