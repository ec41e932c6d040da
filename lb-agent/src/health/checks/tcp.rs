//! `type: tcp` (keepalived TCP_CHECK, HAProxy `tcp-check`): the connection
//! succeeds; with `send`, those bytes are written; with `expect`, the reply
//! must contain those bytes before the server closes or the deadline.

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream},
};

use super::{Aim, io_failure, set_option};
use lb_api::types::CheckFailure;

/// Largest reply read while looking for `expect`.
const MAX_REPLY: usize = 16 * 1024;

pub async fn check(
    aim: &Aim,
    send: Option<&str>,
    expect: Option<&str>,
) -> Result<(), CheckFailure> {
    let mut stream = connect(aim).await?;
    if let Some(data) = send {
        stream
            .write_all(data.as_bytes())
            .await
            .map_err(|e| io_failure(&e))?;
    }
    if let Some(want) = expect {
        let want = want.as_bytes();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            if got.windows(want.len().max(1)).any(|w| w == want) {
                break;
            }
            if got.len() >= MAX_REPLY {
                return Err(CheckFailure::ExpectMismatch);
            }
            match stream.read(&mut buf).await {
                Ok(0) => return Err(CheckFailure::ExpectMismatch),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(io_failure(&e)),
            }
        }
    }
    // A clean close, not a reset: the server sees an ordinary client.
    let _ = stream.shutdown().await;
    Ok(())
}

/// A TCP connection to the aim's target, its packets marked when the aim
/// says so (the other checks over TCP start here too).
pub async fn connect(aim: &Aim) -> Result<TcpStream, CheckFailure> {
    let socket = if aim.target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| io_failure(&e))?;
    if let Some(mark) = aim.mark {
        set_mark(&socket, mark)?;
    }
    socket.connect(aim.target).await.map_err(|e| io_failure(&e))
}

/// `SO_MARK`: routes the check's packets by policy (`via_service`).
pub fn set_mark(socket: &impl std::os::fd::AsRawFd, mark: u32) -> Result<(), CheckFailure> {
    set_option(socket, libc::SOL_SOCKET, libc::SO_MARK, mark as libc::c_int)
        .map_err(|e| io_failure(&e))
}
