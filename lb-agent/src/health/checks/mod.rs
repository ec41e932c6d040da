//! The checks themselves: each type asks a backend one question and says
//! precisely why the answer is wrong ([`CheckFailure`]). They are plain async
//! functions of what to check ([`Aim`]) and a deadline; the runner
//! (`super::runner`) decides when they run and what a result means.

mod http;
mod http_parse;
mod icmp;
mod mysql;
mod script;
mod tcp;
mod tls;

use std::{net::SocketAddr, time::Duration};

use lb_api::types::CheckFailure;
use lb_config::check::CheckKind;
use tokio::time::Instant;

/// Where a check aims, and what it may tell a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Aim {
    /// The address and port checked (the backend's, or the check's own).
    pub target: SocketAddr,
    /// Pool and backend names (for scripts' environment and logs).
    pub pool: String,
    pub backend: String,
    /// Firewall mark for the check's packets (`via_service`: a policy route
    /// sends the service's address to the backend's MAC), if any.
    pub mark: Option<u32>,
}

/// Runs one check of `kind` against `aim`, which must finish by `timeout`.
/// `Ok(())` is a pass.
pub async fn run(kind: &CheckKind, aim: &Aim, timeout: Duration) -> Result<(), CheckFailure> {
    let deadline = Instant::now() + timeout;
    let work = async {
        if let Some(mark) = aim.mark {
            super::via::ready(mark).await?;
        }
        match kind {
            CheckKind::Icmp => icmp::check(aim).await,
            CheckKind::Tcp { send, expect } => {
                tcp::check(aim, send.as_deref(), expect.as_deref()).await
            }
            CheckKind::Http(http) => http::check(aim, http).await,
            CheckKind::Https(https) => http::check_tls(aim, https).await,
            CheckKind::Mysql { user } => mysql::check(aim, user.as_deref()).await,
            CheckKind::Script { command } => script::check(aim, command).await,
        }
    };
    match tokio::time::timeout_at(deadline, work).await {
        Ok(r) => r,
        Err(_) => Err(CheckFailure::Timeout {
            after_ms: timeout.as_millis() as u64,
        }),
    }
}

/// The failure an I/O error means for a check.
pub fn io_failure(e: &std::io::Error) -> CheckFailure {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => CheckFailure::Refused,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => {
            CheckFailure::Reset
        }
        ErrorKind::UnexpectedEof => CheckFailure::Reset,
        ErrorKind::TimedOut => CheckFailure::Timeout { after_ms: 0 },
        ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::AddrNotAvailable => CheckFailure::Unreachable {
            detail: e.to_string(),
        },
        _ => CheckFailure::Io {
            detail: e.to_string(),
        },
    }
}

/// `setsockopt(fd, level, name, &value)` for an `int` option.
pub fn set_option(
    socket: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> std::io::Result<()> {
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes of `value`, alive for the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
pub mod tests {
    /// Bytes from hex digits, as captures are written down.
    pub fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
