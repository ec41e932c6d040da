//! The agent's HTTP server end to end, without root: `http::Servers` in
//! front of a fake reconciler thread answering from canned data and a real
//! event bus, driven by `Client` and by raw HTTP/1.1.

mod events;
mod fake;
mod harness;
mod listen;
mod metrics;
mod rejects;
mod routes;
