//! Reading `/proc` for the doctor: parsers of the kernel's text formats
//! (pure, unit-tested) and the few functions that read the files.

use std::{
    collections::BTreeMap,
    fs,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
};

use lb_config::Protocol;

/// A socket waiting for traffic: a TCP listener or an unconnected UDP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    /// The socket's inode, which names it in `/proc/<pid>/fd`.
    pub inode: u64,
}

/// A process: its pid and `comm` (the first 15 bytes of its name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub comm: String,
}

/// `(major, minor)` of a release string such as `6.18.44-fc-v669`.
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The listening sockets of `/proc/net/{tcp,tcp6,udp,udp6}` text: TCP in
/// state `0A` (LISTEN), UDP in state `07` (unconnected).
pub fn parse_sockets(text: &str, protocol: Protocol) -> Vec<Listener> {
    let listening = match protocol {
        Protocol::Tcp => "0A",
        Protocol::Udp => "07",
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) != Some(&listening) {
                return None;
            }
            Some(Listener {
                protocol,
                addr: parse_hex_addr(f.get(1)?)?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// `0100007F:1F90` (IPv4, the address's 32-bit word in host order) or 32 hex
/// digits of four host-order words for IPv6, then the port in hex.
fn parse_hex_addr(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The systemd unit a process runs in, from `/proc/<pid>/cgroup`
/// (`0::/system.slice/lb.service`); `None` outside a `.service`.
pub fn unit_of(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|l| {
        let path = l.strip_prefix("0::")?;
        path.split('/')
            .rev()
            .find(|part| part.ends_with(".service"))
            .map(str::to_owned)
    })
}

/// Every listening socket of this network namespace; unreadable files
/// (IPv6 disabled) count as empty.
pub fn listeners() -> Vec<Listener> {
    let mut all = Vec::new();
    for (file, protocol) in [
        ("tcp", Protocol::Tcp),
        ("tcp6", Protocol::Tcp),
        ("udp", Protocol::Udp),
        ("udp6", Protocol::Udp),
    ] {
        // thread-self: the namespace `--netns` moved this thread into.
        if let Ok(text) = fs::read_to_string(format!("/proc/thread-self/net/{file}")) {
            all.extend(parse_sockets(&text, protocol));
        }
    }
    all
}

/// Every process with its `comm`.
pub fn processes() -> Vec<Process> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut all: Vec<Process> = dir
        .filter_map(|e| {
            let pid = e.ok()?.file_name().to_str()?.parse().ok()?;
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
            Some(Process {
                pid,
                comm: comm.trim_end().to_owned(),
            })
        })
        .collect();
    all.sort_by_key(|p| p.pid);
    all
}

/// Which processes hold each of `inodes` open (`/proc/<pid>/fd/* ->
/// socket:[inode]`); needs root to see other users' descriptors.
pub fn socket_owners(inodes: &[u64], processes: &[Process]) -> BTreeMap<u64, Vec<Process>> {
    let mut owners: BTreeMap<u64, Vec<Process>> = BTreeMap::new();
    if inodes.is_empty() {
        return owners;
    }
    for p in processes {
        let Ok(fds) = fs::read_dir(format!("/proc/{}/fd", p.pid)) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse().ok());
            if let Some(inode) = inode.filter(|i| inodes.contains(i)) {
                let list = owners.entry(inode).or_default();
                if !list.iter().any(|o| o.pid == p.pid) {
                    list.push(p.clone());
                }
            }
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(kernel_version("6.18.44-fc-v669"), Some((6, 18)));
        assert_eq!(kernel_version("6.1.0-28-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("6.15"), Some((6, 15)));
        assert_eq!(kernel_version("garbage"), None);
    }

    #[test]
    fn tcp_listeners_v4_and_v6() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:2120 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 24117 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:2120 0200007F:D0A4 01 00000000:00000000 00:00000000 00000000     0        0 99 1\n";
        assert_eq!(
            parse_sockets(v4, Protocol::Tcp),
            vec![Listener {
                protocol: Protocol::Tcp,
                addr: "127.0.0.1:8480".parse().unwrap(),
                inode: 24117
            }]
        );
        let v6 = "  sl  local_address rem_address st\n\
   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1\n";
        assert_eq!(
            parse_sockets(v6, Protocol::Tcp)[0].addr,
            "[::1]:80".parse().unwrap()
        );
        assert!(parse_sockets(v6, Protocol::Udp).is_empty());
    }

    #[test]
    fn meminfo_and_cgroup() {
        assert_eq!(
            mem_available("MemTotal: 100 kB\nMemAvailable:   2048 kB\n"),
            Some(2 << 20)
        );
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        assert_eq!(
            unit_of("0::/system.slice/lb.service\n").as_deref(),
            Some("lb.service")
        );
        assert_eq!(
            unit_of("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
    }
}
