//! `type: mysql` (HAProxy `mysql-check`): the server's greeting must be a
//! protocol-10 handshake (an error packet there fails the check with the
//! server's code and message, e.g. 1129 "Host ... is blocked"); then the
//! check logs in without a password and leaves with `COM_QUIT`.
//!
//! With `user`, the login must be accepted (OK packet). Without one, the
//! check logs in with an empty user name and an "access denied" answer
//! passes too: the server greeted and authenticated. It does not close
//! after the greeting as HAProxy does: measured on MariaDB 10.11, every
//! such close counts in `Aborted_connects` and toward `max_connect_errors`,
//! which blocks the checking host after 100 checks in a row (the check
//! then fails with error 1129), while a refused login only counts in
//! `Aborted_connects`. A login as an existing user without a password
//! counts nowhere.

use lb_api::types::CheckFailure;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{Aim, io_failure, tcp};

/// Longest packet accepted: a greeting is ~100 bytes; anything far larger
/// is not a MySQL server talking.
const MAX_PACKET: usize = 16 * 1024;
/// Capability flags: 4.1 protocol, long password, 4.1 authentication.
const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
/// `utf8mb3_general_ci`, understood by every server version.
const CHARSET: u8 = 33;
/// `ER_ACCESS_DENIED_ERROR`.
const ACCESS_DENIED: u16 = 1045;
/// `COM_QUIT` as packet 0 of a new command.
const COM_QUIT: [u8; 5] = [1, 0, 0, 0, 0x01];

/// An error packet's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    pub code: u16,
    pub state: Option<String>,
    pub message: String,
}

impl ServerError {
    fn failure(&self) -> CheckFailure {
        let state = self
            .state
            .as_ref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        protocol(format!(
            "MySQL error {}{state}: {}",
            self.code, self.message
        ))
    }
}

/// What the greeting tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    pub version: String,
    pub capabilities: u32,
}

pub async fn check(aim: &Aim, user: Option<&str>) -> Result<(), CheckFailure> {
    let mut stream = tcp::connect(aim).await?;
    let mut buf = Vec::new();
    let (seq, payload) = read_packet(&mut stream, &mut buf).await?;
    let greeting = greeting(&payload)?;
    let login = login(user.unwrap_or(""), &greeting, seq.wrapping_add(1))?;
    stream.write_all(&login).await.map_err(|e| io_failure(&e))?;
    let (_, payload) = read_packet(&mut stream, &mut buf).await?;
    match (reply(&payload)?, user) {
        (Ok(()), _) => quit(stream).await,
        (Err(e), None) if e.code == ACCESS_DENIED => Ok(()),
        (Err(e), _) => Err(e.failure()),
    }
}

/// `COM_QUIT`, then the server's close: it counts a clean disconnect.
async fn quit(mut stream: TcpStream) -> Result<(), CheckFailure> {
    stream
        .write_all(&COM_QUIT)
        .await
        .map_err(|e| io_failure(&e))?;
    let mut rest = [0u8; 256];
    while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
    Ok(())
}

/// Reads one whole packet: its sequence number and payload.
async fn read_packet(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<(u8, Vec<u8>), CheckFailure> {
    loop {
        if let Some(p) = packet(buf)? {
            let (seq, payload, len) = (p.seq, p.payload.to_vec(), p.len);
            buf.drain(..len);
            return Ok((seq, payload));
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Err(CheckFailure::Reset),
            Ok(0) => return Err(protocol("the server closed the connection within a packet")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(io_failure(&e)),
        }
    }
}

/// One packet at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    pub seq: u8,
    pub payload: &'a [u8],
    /// Bytes it takes in the buffer, header included.
    pub len: usize,
}

/// One packet from the front of `buf` (3-byte length, sequence number,
/// payload): `None` until all of it is there.
pub fn packet(buf: &[u8]) -> Result<Option<Packet<'_>>, CheckFailure> {
    let [a, b, c, seq, rest @ ..] = buf else {
        return Ok(None);
    };
    let len = usize::from(*a) | usize::from(*b) << 8 | usize::from(*c) << 16;
    if len > MAX_PACKET {
        return Err(protocol(format!(
            "a packet of {len} bytes: not a MySQL server?"
        )));
    }
    Ok(rest.get(..len).map(|payload| Packet {
        seq: *seq,
        payload,
        len: 4 + len,
    }))
}

/// The initial handshake (protocol 10), or the error the server sent instead.
pub fn greeting(p: &[u8]) -> Result<Greeting, CheckFailure> {
    match p.first() {
        Some(0xff) => return Err(error_packet(p).failure()),
        Some(10) => {}
        Some(v) => {
            return Err(protocol(format!(
                "protocol version {v} in the greeting, expected 10: not a MySQL server?"
            )));
        }
        None => return Err(protocol("an empty greeting")),
    }
    let short = || protocol("a greeting cut short");
    let nul = p[1..].iter().position(|&b| b == 0).ok_or_else(short)?;
    let version = String::from_utf8_lossy(&p[1..1 + nul]).into_owned();
    // Connection id (4), auth data part 1 (8), filler (1), then capabilities.
    let after = &p[2 + nul..];
    let low = after.get(13..15).ok_or_else(short)?;
    let high = after.get(18..20).unwrap_or(&[0, 0]);
    let capabilities = u32::from(u16::from_le_bytes([low[0], low[1]]))
        | u32::from(u16::from_le_bytes([high[0], high[1]])) << 16;
    Ok(Greeting {
        version,
        capabilities,
    })
}

/// HandshakeResponse41 for `user` with an empty password, as packet `seq`.
pub fn login(user: &str, greeting: &Greeting, seq: u8) -> Result<Vec<u8>, CheckFailure> {
    if greeting.capabilities & CLIENT_PROTOCOL_41 == 0 {
        return Err(protocol(format!(
            "server {} does not speak protocol 4.1",
            greeting.version
        )));
    }
    let caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION;
    let mut payload = Vec::with_capacity(64);
    payload.extend_from_slice(&caps.to_le_bytes());
    payload.extend_from_slice(&(16u32 << 20).to_le_bytes()); // max packet size
    payload.push(CHARSET);
    payload.extend_from_slice(&[0; 23]);
    payload.extend_from_slice(user.as_bytes());
    payload.push(0);
    payload.push(0); // an empty authentication response
    let len = payload.len() as u32;
    let mut packet = len.to_le_bytes()[..3].to_vec();
    packet.push(seq);
    packet.extend_from_slice(&payload);
    Ok(packet)
}

/// The answer to the login: OK, or the server's error; anything else is a
/// protocol failure (an authentication switch means the user has a password
/// or another plugin).
pub fn reply(p: &[u8]) -> Result<Result<(), ServerError>, CheckFailure> {
    match p.first() {
        Some(0x00) => Ok(Ok(())),
        Some(0xff) => Ok(Err(error_packet(p))),
        Some(0xfe) => {
            let plugin = p[1..].split(|&b| b == 0).next().unwrap_or_default();
            Err(protocol(format!(
                "the server asks for authentication plugin `{}`: the check logs in \
                 without a password (give its user none)",
                String::from_utf8_lossy(plugin)
            )))
        }
        _ => Err(protocol("an unexpected answer to the login")),
    }
}

/// `0xff`, code, then `#` and a 5-character SQL state (absent in errors sent
/// before the handshake), then the message.
pub fn error_packet(p: &[u8]) -> ServerError {
    let code = match p {
        [_, a, b, ..] => u16::from_le_bytes([*a, *b]),
        _ => 0,
    };
    let rest = p.get(3..).unwrap_or_default();
    let (state, message) = match rest {
        [b'#', state @ ..] if state.len() >= 5 => (
            Some(String::from_utf8_lossy(&state[..5]).into_owned()),
            &state[5..],
        ),
        _ => (None, rest),
    };
    ServerError {
        code,
        state,
        message: String::from_utf8_lossy(message).into_owned(),
    }
}

fn protocol(detail: impl Into<String>) -> CheckFailure {
    CheckFailure::Protocol {
        detail: detail.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::hex;
    use super::*;

    // Captured from MariaDB 10.11.19 (Debian 12), see the module's notes.
    const GREETING: &str = "640000000a352e352e352d31302e31312e31392d4d6172696144422d302b64656231\
        32753100050000003b6e3d264158735d00fef7080200ff81150000000000001d00000057\
        7c2a5b692163524f747c32006d7973716c5f6e61746976655f70617373776f726400";
    const OK: &str = "0700000200000002000000";
    const DENIED: &str = "49000002ff15042332383030304163636573732064656e69656420666f72207573\
        657220276e6f737563682740276c6f63616c686f73742720287573696e67207061737377\
        6f72643a204e4f29";
    /// At the greeting, from a host without any matching user.
    const NOT_ALLOWED: &str = "44000000ff6a04486f7374202731302e39382e302e3227206973206e6f7420616c\
        6c6f77656420746f20636f6e6e65637420746f2074686973204d61726961444220736572766572";
    /// At the greeting, after `max_connect_errors` greetings closed unanswered.
    const BLOCKED: &str = "6a000000ff6904486f7374202731302e39382e302e322720697320626c6f636b6564\
        2062656361757365206f66206d616e7920636f6e6e656374696f6e206572726f72733b20756e\
        626c6f636b207769746820276d6172696164622d61646d696e20666c7573682d686f73747327";

    fn payload(packet_hex: &str) -> Vec<u8> {
        let bytes = hex(packet_hex);
        let p = packet(&bytes).unwrap().unwrap();
        assert_eq!(p.len, bytes.len(), "one whole packet");
        p.payload.to_vec()
    }

    #[test]
    fn mariadbs_greeting_is_read() {
        let g = greeting(&payload(GREETING)).unwrap();
        assert_eq!(g.version, "5.5.5-10.11.19-MariaDB-0+deb12u1");
        assert_ne!(g.capabilities & CLIENT_PROTOCOL_41, 0);
        assert_ne!(g.capabilities & CLIENT_SECURE_CONNECTION, 0);
        assert_eq!(g.capabilities, 0x81ff_f7fe);
    }

    #[test]
    fn an_error_at_the_greeting_fails_with_its_code_and_message() {
        let e = greeting(&payload(BLOCKED)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "protocol error: MySQL error 1129: Host '10.98.0.2' is blocked because of many \
             connection errors; unblock with 'mariadb-admin flush-hosts'"
        );
        let e = greeting(&payload(NOT_ALLOWED)).unwrap_err();
        assert!(
            e.to_string()
                .contains("MySQL error 1130: Host '10.98.0.2' is not allowed")
        );
    }

    #[test]
    fn the_login_is_a_handshake_response_41_with_no_password() {
        let g = greeting(&payload(GREETING)).unwrap();
        let p = login("lbcheck", &g, 1).unwrap();
        let mut want = hex("29000001"); // 41 bytes, packet 1
        want.extend_from_slice(&hex("0182000000000001"));
        want.push(33);
        want.extend_from_slice(&[0; 23]);
        want.extend_from_slice(b"lbcheck\0\0");
        assert_eq!(p, want);
        let old = Greeting {
            version: "4.0".into(),
            capabilities: 0,
        };
        assert!(login("u", &old, 1).is_err());
    }

    #[test]
    fn ok_and_access_denied_replies() {
        assert_eq!(reply(&payload(OK)), Ok(Ok(())));
        let denied = reply(&payload(DENIED)).unwrap().unwrap_err();
        assert_eq!(denied.code, ACCESS_DENIED);
        assert_eq!(denied.state.as_deref(), Some("28000"));
        assert_eq!(
            denied.failure().to_string(),
            "protocol error: MySQL error 1045 (28000): Access denied for user \
             'nosuch'@'localhost' (using password: NO)"
        );
        let switch = reply(b"\xfecaching_sha2_password\0xyz").unwrap_err();
        assert!(
            switch.to_string().contains("`caching_sha2_password`"),
            "{switch}"
        );
        assert!(reply(b"").is_err());
    }

    #[test]
    fn packets_are_framed_and_bounded() {
        let bytes = hex(OK);
        for cut in 0..bytes.len() {
            assert_eq!(packet(&bytes[..cut]), Ok(None), "cut at {cut}");
        }
        // "SSH-2.0-..." read as a MySQL length.
        assert!(packet(b"SSH-2.0-OpenSSH").is_err());
        assert!(greeting(b"\x09abc").is_err(), "protocol 9");
        assert!(greeting(b"\x0a5.5").is_err(), "no NUL after the version");
        assert!(greeting(b"").is_err());
        assert_eq!(error_packet(b"\xff").code, 0);
    }
}
