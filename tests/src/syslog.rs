//! A UDP socket standing in for a syslog server: bound on a free port of a
//! namespace's loopback, where an agent in that namespace sends its access
//! log lines, and read one datagram (one line) at a time.

use std::net::UdpSocket;
use std::time::Duration;

use crate::netns::NetNs;

/// How long [`next_line`] waits.
const T: Duration = Duration::from_secs(5);

/// A receiver on `127.0.0.1:0` in `ns`.
pub fn receiver(ns: &NetNs) -> UdpSocket {
    let s = ns
        .try_run(|| UdpSocket::bind("127.0.0.1:0"))
        .expect("netns")
        .expect("binding the receiver");
    s.set_read_timeout(Some(T)).unwrap();
    s
}

/// The next line; panics when none comes within 5 s.
pub fn next_line(s: &UdpSocket) -> String {
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).expect("a log line within 5 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}
