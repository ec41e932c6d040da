//! The control API end to end, without root: `UnixApi`/`TcpApi` in front of
//! a fake reconciler thread answering from canned data, driven by `Client`
//! and by raw HTTP/1.1 over the socket.

mod fake;
mod harness;
mod listen;
mod rejects;
mod routes;
