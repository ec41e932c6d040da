//! Runtime overrides end to end: the effective configuration and its
//! provenance, every mutation with its errors, persistence.

mod effective;
mod mutate;
mod persist;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use lb_api::types::{AddBackend, AddVip, ApiError, Source};
use lb_config::{Config, parse};

/// Two VIPs: `web` with an explicit name, three backends (one drained in the
/// file, one without a name) and a small ring; a UDP VIP with the default
/// name and a ring of 2, full after one more backend.
const FILE: &str = "\
interfaces:
  - name: eth0
  - name: eth1
vips:
  - name: web
    address: 10.0.0.1
    port: 80
    ring_size: 1009
    backends:
      - {name: b1, address: 10.0.1.1, weight: 2}
      - {name: b2, address: 10.0.1.2, state: drain}
      - {address: 10.0.1.3}
  - address: 10.0.0.2
    port: 53
    protocol: udp
    ring_size: 2
    backends:
      - {address: 10.0.2.1}
";

/// The default name of the UDP VIP of [`FILE`].
const DNS: &str = "10.0.0.2:53/udp";

fn file() -> Config {
    config(FILE)
}

fn config(text: &str) -> Config {
    parse(text, "t.yaml")
        .unwrap_or_else(|d| panic!("test file has problems:\n{d}"))
        .config
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn vip_req(name: Option<&str>, address: &str, port: u16) -> AddVip {
    AddVip {
        name: name.map(str::to_owned),
        address: ip(address),
        port,
        protocol: None,
        hash: None,
        ring_size: None,
        backends: Vec::new(),
    }
}

fn backend_req(name: Option<&str>, address: &str) -> AddBackend {
    AddBackend {
        name: name.map(str::to_owned),
        address: ip(address),
        port: None,
        weight: None,
        state: None,
        interface: None,
        mac: None,
    }
}

/// The request that re-creates `web` exactly as [`FILE`] defines it.
fn web_as_in_file() -> AddVip {
    AddVip {
        ring_size: Some(1009),
        backends: vec![
            AddBackend {
                weight: Some(2),
                ..backend_req(Some("b1"), "10.0.1.1")
            },
            AddBackend {
                state: Some(AdminState::Drain),
                ..backend_req(Some("b2"), "10.0.1.2")
            },
            backend_req(None, "10.0.1.3"),
        ],
        ..vip_req(Some("web"), "10.0.0.1", 80)
    }
}

/// A backend in effect with its provenance, by names.
fn backend<'a>(
    eff: &'a Effective,
    vip: &str,
    backend: &str,
) -> (&'a lb_config::BackendConfig, &'a BackendProvenance) {
    let (i, j) = eff
        .find_backend(vip, backend)
        .unwrap_or_else(|e| panic!("{vip}/{backend}: {e}"));
    (
        &eff.config.vips[i].backends[j],
        &eff.provenance[i].backends[j],
    )
}

/// A VIP's name and source, and its backends' names and sources.
type Layout = (String, Source, Vec<(String, Source)>);

/// The VIPs in effect with their sources, and each one's backends.
fn layout(eff: &Effective) -> Vec<Layout> {
    eff.config
        .vips
        .iter()
        .zip(&eff.provenance)
        .map(|(v, p)| {
            (
                v.name.clone(),
                p.source,
                v.backends
                    .iter()
                    .zip(&p.backends)
                    .map(|(b, bp)| (b.name.clone(), bp.source))
                    .collect(),
            )
        })
        .collect()
}

/// Asserts `r` is the API error `code` with `want` in its reason.
#[track_caller]
fn assert_err<T: std::fmt::Debug>(r: Result<T, ApiError>, code: u16, want: &str) {
    match r {
        Err(e) => {
            assert_eq!(e.code, code, "{}", e.reason);
            assert!(e.reason.contains(want), "`{want}` not in: {}", e.reason);
        }
        Ok(v) => panic!("expected error {code} `{want}`, got Ok({v:?})"),
    }
}

/// A directory under the system temp dir, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "lb-state-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
