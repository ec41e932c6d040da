//! lb's control API as its users see it: the JSON shapes of `/v1/...` (field
//! names are the contract: add, never rename), the event stream, and the
//! client the CLI uses.

pub mod client;
pub mod event_stream;
pub mod events;
pub mod paths;
pub mod proxy;
pub mod types;
pub mod vrrp;
