//! `host`, `host:port`, `[v6]:port`: where a relay or webhook is.

use std::net::{IpAddr, Ipv6Addr};

/// Host (IPv6 without brackets) and port of `text`, `default_port` when it
/// names none; otherwise what is wrong with it.
pub(super) fn authority(text: &str, default_port: u16) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}`: `[` without `]`"))?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| format!("`{v6}` is not an IPv6 address"))?;
        match after {
            "" => (v6, None),
            _ => (v6, Some(after.strip_prefix(':').unwrap_or(after))),
        }
    } else if text.parse::<Ipv6Addr>().is_ok() {
        (text, None)
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("`{p}` is not a port (1..=65535)")),
        },
    };
    if host.parse::<IpAddr>().is_err() {
        check_name(host)?;
    }
    Ok((host.to_owned(), port))
}

/// A DNS name: dot-separated labels of letters, digits and `-`.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let name_ok = name.len() <= 253 && name.trim_end_matches('.').split('.').all(label_ok);
    if name_ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a host name or address (letters, digits, `-` and dots)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_ports_and_their_defaults() {
        let ok = |t: &str| authority(t, 25).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(ok("127.0.0.1"), ("127.0.0.1".into(), 25));
        assert_eq!(ok("mail.example.com:587"), ("mail.example.com".into(), 587));
        assert_eq!(ok("2001:db8::25"), ("2001:db8::25".into(), 25));
        assert_eq!(ok("[2001:db8::25]:465"), ("2001:db8::25".into(), 465));
        assert_eq!(ok("[::1]"), ("::1".into(), 25));
        for bad in [
            "",
            "mail:0",
            "mail:x",
            "[::1",
            "[nope]:25",
            "a b",
            "-x.example",
            "[::1]x",
        ] {
            assert!(authority(bad, 25).is_err(), "{bad}");
        }
    }
}
