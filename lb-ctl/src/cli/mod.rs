//! The operator commands. Each returns an [`Exit`] code that means something:
//!
//! - 0: done;
//! - 1: failed — the agent is not running or answered 5xx, a request timed
//!   out, `drain --wait` ran out of time, a data path operation failed;
//! - 2: bad input — usage errors (clap), an invalid configuration file, and
//!   every 4xx from the API: the request named a service, pool or backend
//!   that does not exist (404), conflicts with what is there (409), or would
//!   make the configuration invalid (422). Retrying the same command cannot
//!   succeed.

pub mod answer;
pub mod apply;
pub mod backend;
pub mod change;
pub mod config_check;
pub mod doctor;
pub mod drain;
pub mod events;
pub mod explain;
pub mod frontend;
pub mod manpages;
pub mod pool;
pub mod reload;
pub mod service;
pub mod stats;
pub mod status;
pub mod table;
pub mod teardown;
pub mod vrrp;

use std::{future::Future, path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::builder::{PossibleValuesParser, TypedValueParser};

use lb_api::client::ClientError;

/// What a command's exit status says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Failed = 1,
    BadInput = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned tables for people.
    #[default]
    Table,
    /// One JSON document on stdout, for scripts.
    Json,
}

/// Prints an error with its chain of causes, one per line.
pub fn print_error(err: &anyhow::Error) {
    eprintln!("lb-ctl: error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}

/// A command line clap accepts but that names nothing usable (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// The exit code for a command that failed with `err` (see the module docs).
pub fn exit_for(err: &anyhow::Error) -> Exit {
    if err.chain().any(|e| e.is::<BadInput>()) {
        return Exit::BadInput;
    }
    let api = err.chain().find_map(|e| e.downcast_ref::<ClientError>());
    match api {
        Some(ClientError::Api(e)) if (400..500).contains(&e.code) => Exit::BadInput,
        _ => Exit::Failed,
    }
}

/// The environment variable naming the agent's socket, below `--socket`.
pub const SOCKET_ENV: &str = "LB_SOCKET";

/// The agent's socket: `--socket`, else `$LB_SOCKET`, else the default.
pub fn socket_path(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os(SOCKET_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| lb_config::DEFAULT_SOCKET.into())
}

/// Runs a command's async body on a runtime of its own (the CLI makes a few
/// requests; one thread is plenty).
pub fn block_on<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

/// Prints JSON the CLI made itself (answers print with [`answer::Answer::print_json`]).
pub fn print_json(value: &serde_json::Value) {
    // A `Value` always serializes.
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// A clap parser for one of the config's spelled enums (`tcp`/`udp`, ...),
/// listing the spellings in `--help` and completions.
pub fn spelled<T: Copy + Send + Sync + 'static>(
    all: &'static [T],
    name: fn(T) -> &'static str,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(all.iter().map(move |v| name(*v))).try_map(move |s| {
        all.iter()
            .copied()
            .find(|v| name(*v) == s)
            .ok_or("not one of the possible values")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_api::types::ApiError;

    #[test]
    fn api_errors_map_to_exit_codes() {
        let api = |code| {
            anyhow::Error::new(ClientError::Api(ApiError {
                code,
                reason: "x".into(),
            }))
        };
        assert_eq!(exit_for(&api(404)), Exit::BadInput);
        assert_eq!(exit_for(&api(422)), Exit::BadInput);
        assert_eq!(exit_for(&api(503)), Exit::Failed);
        assert_eq!(
            exit_for(&api(400).context("adding a service")),
            Exit::BadInput
        );
        let usage = anyhow::Error::new(BadInput("name a backend".into()));
        assert_eq!(exit_for(&usage.context("draining")), Exit::BadInput);
        let gone = ClientError::NotRunning {
            socket: "/run/lb/lb.sock".into(),
            source: std::io::ErrorKind::NotFound.into(),
        };
        assert_eq!(exit_for(&anyhow::Error::new(gone)), Exit::Failed);
        assert_eq!(exit_for(&anyhow::anyhow!("other")), Exit::Failed);
    }

    #[test]
    fn socket_flag_wins() {
        assert_eq!(
            socket_path(Some("/tmp/x.sock".into())),
            PathBuf::from("/tmp/x.sock")
        );
    }
}
