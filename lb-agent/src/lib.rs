//! lb's agent as a library: the desired state (configuration file + runtime
//! overrides), the reconciler that alone writes the data path, the control
//! API and the metrics. `lb-ctl agent` runs it.

pub mod agent;
pub mod api;
pub mod desired;
pub mod events;
pub mod frontends;
pub mod health;
pub mod http;
pub mod loader;
pub mod metrics;
pub mod neigh;
pub mod notify;
pub mod proxy;
pub mod state;
pub mod vrrp;
