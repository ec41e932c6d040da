//! `lb-ctl backend ...`: the backends of a pool and their runtime state, in
//! HAProxy's words (`enable`, `drain`, `maint`, `set-weight`). A backend is
//! named `POOL BACKEND` or `POOL/BACKEND`; a change to it holds for every
//! service using the pool.

use std::{net::IpAddr, time::Duration};

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{
    BadInput, Exit, Output, answer,
    change::{Words, report},
    drain, pool, spelled,
};
use lb_api::{
    client::Client,
    paths::Route,
    types::{AddBackend, BackendStatus, PoolStatus, SetState, SetWeight},
};
use lb_config::check::BackendCheck;
use lb_config::{AdminState, duration::parse_duration};

#[derive(Debug, Subcommand)]
pub enum BackendCommand {
    /// List the backends of one pool, or of every pool.
    List {
        /// The pool's name.
        pool: Option<String>,
    },
    /// Add a backend to a pool at runtime (kept in the state file until removed).
    Add(AddArgs),
    /// Remove a backend; its flows are re-hashed.
    Remove(Target),
    /// Put a backend back in service (HAProxy `enable server`, `set server state ready`).
    Enable(Target),
    /// Take no new flows, keep the open ones (HAProxy `set server state drain`, LVS weight 0).
    Drain {
        #[command(flatten)]
        target: Target,
        /// Wait until no active flow is left on the backend.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this long (exit 1).
        #[arg(long, requires = "wait", default_value = "300s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Take out of service entirely; open flows are re-hashed (HAProxy `set server state maint`).
    Maint(Target),
    /// Change a backend's Maglev weight (0 behaves like drain).
    #[command(override_usage = "lb-ctl backend set-weight POOL BACKEND W\n       \
                                lb-ctl backend set-weight POOL/BACKEND W")]
    SetWeight {
        /// POOL BACKEND W, or POOL/BACKEND W: the backend's pool, its name or
        /// address, and the new weight (0..=65535).
        #[arg(value_name = "ARG", num_args = 2..=3, required = true)]
        args: Vec<String>,
    },
}

/// `lb-ctl backend add POOL --address ...`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The pool's name.
    pool: String,
    /// The backend's address (it must hold the services' addresses on a loopback: DR mode).
    #[arg(long, value_name = "IP")]
    address: IpAddr,
    /// A name for the backend [default: its address].
    #[arg(long)]
    name: Option<String>,
    /// The port; in DR mode it can only be the service's [default: each service's].
    #[arg(long)]
    port: Option<u16>,
    /// Maglev weight [default: 1].
    #[arg(long, value_name = "W")]
    weight: Option<u32>,
    /// Initial administrative state [default: up].
    #[arg(long, value_parser = spelled(AdminState::ALL, AdminState::as_str))]
    state: Option<AdminState>,
    /// Interface towards the backend [default: from the routing table].
    #[arg(long, value_name = "IF")]
    interface: Option<String>,
    /// Static next-hop MAC, e.g. 02:00:00:00:00:01 [default: from ARP/NDP].
    #[arg(long, value_name = "MAC")]
    mac: Option<String>,
    /// Leave it out of its pool's health check (HAProxy: a `server` without `check`).
    #[arg(long, conflicts_with = "check_port")]
    no_check: bool,
    /// Check this port instead of the backend's (HAProxy `check port`).
    #[arg(long, value_name = "PORT")]
    check_port: Option<u16>,
}

/// One backend: `POOL BACKEND`, or `POOL/BACKEND` as one argument.
#[derive(Debug, Args)]
pub struct Target {
    /// The pool's name, or POOL/BACKEND.
    #[arg(value_name = "POOL")]
    pub pool: String,
    /// The backend's name or address.
    #[arg(value_name = "BACKEND")]
    pub backend: Option<String>,
}

impl Target {
    /// (pool, backend).
    pub fn resolve(self) -> Result<(String, String), BadInput> {
        match self.backend {
            Some(b) if !self.pool.contains('/') => Ok((self.pool, b)),
            Some(_) => Err(BadInput(format!(
                "`{}` names a backend already; give POOL BACKEND or POOL/BACKEND, not both",
                self.pool
            ))),
            None => match self.pool.split_once('/') {
                Some((p, b)) if !p.is_empty() && !b.is_empty() => Ok((p.into(), b.into())),
                _ => Err(BadInput(format!(
                    "`{}`: name a backend, as POOL BACKEND or POOL/BACKEND",
                    self.pool
                ))),
            },
        }
    }
}

/// `POOL BACKEND W` or `POOL/BACKEND W`.
fn weight_args(mut args: Vec<String>) -> Result<(String, String, u32), BadInput> {
    let w = args.pop().unwrap_or_default();
    let weight = w
        .parse()
        .map_err(|_| BadInput(format!("`{w}` is not a weight (0..=65535)")))?;
    let mut args = args.into_iter();
    let target = Target {
        pool: args.next().unwrap_or_default(),
        backend: args.next(),
    };
    let (pool, backend) = target.resolve()?;
    Ok((pool, backend, weight))
}

pub async fn run(cmd: BackendCommand, client: &Client, out: Output) -> Result<Exit> {
    match cmd {
        BackendCommand::List { pool } => list(client, out, pool).await,
        BackendCommand::Add(args) => add(client, out, args).await,
        BackendCommand::Remove(target) => {
            let (pool, backend) = target.resolve()?;
            let what = format!("backend {pool}/{backend}");
            report(
                out,
                Words::remove(&what),
                answer::delete(client, &Route::Backend(pool, backend).path()),
            )
            .await
        }
        BackendCommand::Enable(target) => {
            set_state(client, out, target.resolve()?, AdminState::Up).await
        }
        BackendCommand::Maint(target) => {
            set_state(client, out, target.resolve()?, AdminState::Maint).await
        }
        BackendCommand::Drain {
            target,
            wait,
            timeout,
        } => drain(client, out, target.resolve()?, wait.then_some(timeout)).await,
        BackendCommand::SetWeight { args } => {
            let (pool, backend, weight) = weight_args(args)?;
            let what = format!("{pool}/{backend}");
            let words = Words {
                doing: format!("setting the weight of {what}"),
                done: format!("set the weight of {what} to {weight}"),
                already: format!("{what} already has weight {weight}"),
            };
            let path = Route::BackendWeight(pool, backend).path();
            report(
                out,
                words,
                answer::put(client, &path, &SetWeight { weight }),
            )
            .await
        }
    }
}

async fn add(client: &Client, out: Output, args: AddArgs) -> Result<Exit> {
    let name = args.name.clone().unwrap_or(args.address.to_string());
    let what = format!("backend {}/{name}", args.pool);
    let body = AddBackend {
        name: args.name,
        address: args.address,
        port: args.port,
        weight: args.weight,
        state: args.state,
        interface: args.interface,
        mac: args.mac,
        check: (args.no_check || args.check_port.is_some()).then_some(BackendCheck {
            disabled: args.no_check,
            port: args.check_port,
            address: None,
        }),
    };
    let path = Route::Backends(args.pool).path();
    report(out, Words::add(&what), answer::post(client, &path, &body)).await
}

/// Drains, then (`wait`: up to that long) waits for the flows to go.
async fn drain(
    client: &Client,
    out: Output,
    (pool, backend): (String, String),
    wait: Option<Duration>,
) -> Result<Exit> {
    let names = (pool.clone(), backend.clone());
    let exit = set_state(client, out, names, AdminState::Drain).await?;
    match wait {
        Some(timeout) => drain::wait(client, &pool, &backend, timeout).await,
        None => Ok(exit),
    }
}

async fn list(client: &Client, out: Output, pool: Option<String>) -> Result<Exit> {
    match pool {
        Some(p) => answer::get(client, &Route::Backends(p).path())
            .await?
            .show(out, |b: &Vec<BackendStatus>| {
                pool::render_backends(b, 0, super::table::unix_now())
            }),
        None => answer::get(client, &Route::Pools.path())
            .await?
            .show(out, |p: &Vec<PoolStatus>| {
                pool::render_pools(p, super::table::unix_now())
            }),
    }
}

async fn set_state(
    client: &Client,
    out: Output,
    (pool, backend): (String, String),
    state: AdminState,
) -> Result<Exit> {
    let what = format!("{pool}/{backend}");
    let words = Words {
        doing: format!("setting {what} to {state}"),
        done: format!("set {what} to {state}"),
        already: format!("{what} is already {state}"),
    };
    let path = Route::BackendState(pool, backend).path();
    report(out, words, answer::put(client, &path, &SetState { state })).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(pool: &str, backend: Option<&str>) -> Result<(String, String), String> {
        let t = Target {
            pool: pool.into(),
            backend: backend.map(Into::into),
        };
        t.resolve().map_err(|e| e.0)
    }

    #[test]
    fn targets_in_one_or_two_words() {
        let web_b1 = Ok(("web".to_owned(), "b1".to_owned()));
        assert_eq!(target("web", Some("b1")), web_b1);
        assert_eq!(target("web/b1", None), web_b1);
        assert_eq!(
            target("web/2001:db8::1", None),
            Ok(("web".into(), "2001:db8::1".into()))
        );
        for (pool, backend) in [
            ("web", None),
            ("web/", None),
            ("/b1", None),
            ("web/b1", Some("b2")),
        ] {
            assert!(target(pool, backend).is_err(), "{pool} {backend:?}");
        }
    }

    #[test]
    fn weights_after_the_target() {
        let words = |w: &[&str]| weight_args(w.iter().map(|s| s.to_string()).collect());
        let expected = ("web".to_owned(), "b1".to_owned(), 3);
        assert_eq!(words(&["web", "b1", "3"]).unwrap(), expected);
        assert_eq!(words(&["web/b1", "3"]).unwrap(), expected);
        assert!(words(&["web", "b1"]).is_err());
        assert!(words(&["web/b1", "-1"]).is_err());
    }
}
