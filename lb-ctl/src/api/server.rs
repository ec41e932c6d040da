//! Control API server.
