//! The control API: HTTP/JSON (hyper 1) on a unix socket, optionally on TCP
//! with a bearer token. The server turns requests into [`Request`]s for the
//! agent's reconciler, the only owner of the data path, and waits for its
//! answer; the CLI is its client.

pub mod server;

use tokio::sync::oneshot;

use lb_api::types::{
    AddBackend, AddVip, ApiError, ChangeResult, Explain, FlowCount, ReloadResult, Stats, Status,
};
use lb_config::AdminState;

/// Where the reconciler sends its answer.
pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// One thing asked of the reconciler. VIPs are named by name or by
/// `address:port/protocol`; backends by name or address within their VIP.
#[derive(Debug)]
pub enum Request {
    Status(Reply<Status>),
    Stats(Reply<Stats>),
    /// The configuration in effect (file + runtime changes), as JSON.
    Config(Reply<serde_json::Value>),
    /// Re-read the configuration file; an invalid file changes nothing.
    Reload(Reply<ReloadResult>),
    AddVip(AddVip, Reply<ChangeResult>),
    RemoveVip {
        vip: String,
        reply: Reply<ChangeResult>,
    },
    AddBackend {
        vip: String,
        backend: AddBackend,
        reply: Reply<ChangeResult>,
    },
    RemoveBackend {
        vip: String,
        backend: String,
        reply: Reply<ChangeResult>,
    },
    SetState {
        vip: String,
        backend: String,
        state: AdminState,
        reply: Reply<ChangeResult>,
    },
    SetWeight {
        vip: String,
        backend: String,
        weight: u32,
        reply: Reply<ChangeResult>,
    },
    Flows {
        vip: String,
        backend: String,
        reply: Reply<FlowCount>,
    },
    Explain {
        vip: String,
        /// `IP` or `IP:PORT` (`[v6]:port`).
        client: String,
        reply: Reply<Explain>,
    },
    /// Detach, unpin everything and stop the agent.
    Teardown(Reply<ChangeResult>),
}

/// How the server reaches the reconciler. A std channel: the reconciler is a
/// thread of its own (map syscalls never block the async runtime), and sending
/// never blocks.
pub type RequestSender = std::sync::mpsc::Sender<Request>;
