//! `GET /v1/frontends`: every L7 frontend with its counters (`lb-ctl
//! frontend list`), HAProxy's frontend rows of `show stat`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether a frontend takes new connections (HAProxy's OPEN and FULL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontendState {
    Open,
    /// At its `maxconn`: new connections wait in the listen backlog.
    Full,
}

impl FrontendState {
    pub const fn as_str(self) -> &'static str {
        match self {
            FrontendState::Open => "open",
            FrontendState::Full => "full",
        }
    }
}

/// One frontend, its counters since the agent started (kept across reloads).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrontendStatus {
    pub name: String,
    /// `http` or `tcp`.
    pub mode: String,
    /// As in the file: `*:80`, `[::]:443`, `192.0.2.1:80`.
    pub binds: Vec<String>,
    pub state: FrontendState,
    /// Client connections open now.
    pub sessions: u64,
    /// Its `maxconn`.
    pub maxconn: u32,
    /// Client connections accepted (refused ones not included).
    pub connections: u64,
    /// Request heads read whole.
    pub requests: u64,
    /// Responses sent, by status class: `1xx` … `5xx`, `other`.
    pub responses: BTreeMap<String, u64>,
    /// Connections and requests refused, by reason: `deny_list`,
    /// `conn_rate`, `conn_cur`, `http_req_rate` (its `src_deny`,
    /// `src_allow` and `rate_limit`) and `http_request` (its deny rules).
    pub denied: BTreeMap<String, u64>,
}

/// The answer of `GET /v1/frontends`, sorted by name; empty when the
/// configuration has no frontend.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frontends {
    pub frontends: Vec<FrontendStatus>,
}
