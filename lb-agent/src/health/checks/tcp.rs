//! `type: tcp` (keepalived TCP_CHECK, HAProxy `tcp-check`): the connection
//! succeeds; with `send`, those bytes are written; with `expect`, the reply
//! must contain those bytes before the server closes or the deadline. A
//! check that sent nothing ends with a reset, one that sent with a close.

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
    if send.is_none() {
        // Nothing was said: reset instead of closing (HAProxy does the same
        // unless told `linger`). A close would leave the connection in
        // TIME_WAIT here for a minute: at 10,000 checks a second the
        // kernel's table of them fills and every close costs a FIN more.
        let _ = stream.set_zero_linger();
        return Ok(());
    }
    // After sending, a clean close, not a reset, which could discard what
    // the server has not read yet.
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

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read as _};

    use super::*;

    fn aim(target: std::net::SocketAddr) -> Aim {
        Aim {
            target,
            pool: "web".into(),
            backend: "b1".into(),
            mark: None,
        }
    }

    /// What the server reads after the check: the bytes, then how it ended.
    fn server_side(listener: &std::net::TcpListener) -> (Vec<u8>, std::io::Result<usize>) {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return (got, Ok(0)),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return (got, Err(e)),
            }
        }
    }

    #[tokio::test]
    async fn a_connect_only_check_resets_and_one_that_sent_closes() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = aim(listener.local_addr().unwrap());
        assert_eq!(check(&a, None, None).await, Ok(()));
        let (got, end) = server_side(&listener);
        assert!(got.is_empty());
        assert_eq!(end.map_err(|e| e.kind()), Err(ErrorKind::ConnectionReset));
        assert_eq!(check(&a, Some("PING\r\n"), None).await, Ok(()));
        let (got, end) = server_side(&listener);
        assert_eq!(got, b"PING\r\n");
        assert_eq!(end.map_err(|e| e.kind()), Ok(0));
    }

    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = aim(listener.local_addr().unwrap());
        drop(listener);
        assert_eq!(check(&a, None, None).await, Err(CheckFailure::Refused));
    }
}
