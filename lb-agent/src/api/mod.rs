//! The control API inside the agent: what the HTTP server asks the
//! reconciler ([`Request`]), the one owner of the desired state and the data
//! path, and how it waits for the answer. The server itself is
//! [`crate::http`]; the JSON shapes are `lb_api::types`.

use lb_api::types::{
    AddBackend, AddPool, AddService, ApiError, ChangeResult, Explain, FlowCount, ReloadResult,
    Stats, Status,
};
use lb_config::AdminState;
use tokio::sync::oneshot;

/// Where the reconciler sends its answer.
pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// One thing asked of the reconciler. Services are named by name or by
/// `address:port/protocol`; pools by name; backends by name (or address)
/// within their pool.
#[derive(Debug)]
pub enum Request {
    Status(Reply<Status>),
    Stats(Reply<Stats>),
    /// The configuration in effect (file + runtime changes), as JSON.
    Config(Reply<serde_json::Value>),
    /// Re-read the configuration file; an invalid file changes nothing.
    Reload(Reply<ReloadResult>),
    AddService(AddService, Reply<ChangeResult>),
    RemoveService {
        service: String,
        reply: Reply<ChangeResult>,
    },
    AddPool(AddPool, Reply<ChangeResult>),
    RemovePool {
        pool: String,
        reply: Reply<ChangeResult>,
    },
    AddBackend {
        pool: String,
        backend: AddBackend,
        reply: Reply<ChangeResult>,
    },
    RemoveBackend {
        pool: String,
        backend: String,
        reply: Reply<ChangeResult>,
    },
    SetState {
        pool: String,
        backend: String,
        state: AdminState,
        reply: Reply<ChangeResult>,
    },
    SetWeight {
        pool: String,
        backend: String,
        weight: u32,
        reply: Reply<ChangeResult>,
    },
    Flows {
        pool: String,
        backend: String,
        reply: Reply<FlowCount>,
    },
    Explain {
        service: String,
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

/// Sends one request to the reconciler and waits for its answer; 503 when
/// the agent is shutting down.
pub async fn ask<T>(
    tx: &RequestSender,
    make: impl FnOnce(Reply<T>) -> Request,
) -> Result<T, ApiError> {
    let shutting_down = || ApiError {
        code: 503,
        reason: "agent is shutting down".into(),
    };
    let (reply, answer) = oneshot::channel();
    tx.send(make(reply)).map_err(|_| shutting_down())?;
    answer.await.map_err(|_| shutting_down())?
}
