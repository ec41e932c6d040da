//! Runtime overrides end to end: the effective configuration and its
//! provenance, every mutation with its errors, persistence.

mod effective;
mod mutate;
mod persist;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use lb_api::types::{AddBackend, AddPool, AddService, ApiError, Source};
use lb_config::{BackendConfig, Config, parse, rules::check_config};

/// Three pools and three services: pool `web` (three backends, one drained
/// in the file, one without a name) serves two services, `web` with a fixed
/// ring and `web-tls`; pool `dns` serves a UDP service with the default name
/// and a ring of 2, full after one more backend; pool `spare` serves nothing.
const FILE: &str = "\
interfaces:
  - name: eth0
  - name: eth1
pools:
  web:
    backends:
      - {name: b1, address: 10.0.1.1, weight: 2}
      - {name: b2, address: 10.0.1.2, state: drain}
      - {address: 10.0.1.3}
  dns:
    backends:
      - {address: 10.0.2.1}
  spare:
    backends:
      - {name: s1, address: 10.0.3.1}
services:
  - {name: web, address: 10.0.0.1, port: 80, ring_size: 1009, pool: web}
  - {name: web-tls, address: 10.0.0.1, port: 443, pool: web}
  - {address: 10.0.0.2, port: 53, protocol: udp, ring_size: 2, pool: dns}
";

/// The default name of the UDP service of [`FILE`].
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

fn backend_req(name: Option<&str>, address: &str) -> AddBackend {
    AddBackend {
        name: name.map(str::to_owned),
        address: ip(address),
        port: None,
        weight: None,
        state: None,
        interface: None,
        mac: None,
        check: None,
    }
}

fn pool_req(name: &str, backends: Vec<AddBackend>) -> AddPool {
    AddPool {
        name: name.to_owned(),
        backends,
        check: None,
    }
}

fn service_req(name: Option<&str>, address: &str, port: u16, pool: &str) -> AddService {
    AddService {
        name: name.map(str::to_owned),
        address: ip(address),
        port,
        protocol: None,
        hash: None,
        ring_size: None,
        pool: pool.to_owned(),
    }
}

/// The request that re-creates pool `web` exactly as [`FILE`] defines it.
fn web_pool_as_in_file() -> AddPool {
    pool_req(
        "web",
        vec![
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
    )
}

/// The request that re-creates service `web` exactly as [`FILE`] defines it.
fn web_service_as_in_file() -> AddService {
    AddService {
        ring_size: Some(lb_api::types::RingSizeSetting::Fixed(1009)),
        ..service_req(Some("web"), "10.0.0.1", 80, "web")
    }
}

/// A mutation as the API server calls it.
type Mutation<'a> =
    Box<dyn FnOnce(&mut Overrides, &Config, &Effective) -> Result<Touched, ApiError> + 'a>;

/// The file, the overrides and the configuration in effect, kept up to date
/// the way the reconciler does it. Every change run through it is checked:
/// a refused one left the overrides as they were, an accepted one says
/// truly whether it changed them, keeps them normalized, and leaves an
/// incrementally refreshed [`Effective`] equal to one computed from scratch
/// that passes every rule of the file.
struct Live {
    file: Config,
    ov: Overrides,
    eff: Effective,
}

impl Live {
    fn new(file: Config) -> Live {
        Live::with(file, Overrides::default())
    }

    fn with(file: Config, ov: Overrides) -> Live {
        let eff = effective(&file, &ov);
        Live { file, ov, eff }
    }

    /// The configuration file changed (a reload): everything is recomputed.
    fn reload(&mut self, file: Config) {
        self.file = file;
        self.eff = effective(&self.file, &self.ov);
    }

    #[track_caller]
    fn run(&mut self, m: Mutation<'_>) -> Result<Touched, ApiError> {
        let before = self.ov.clone();
        let r = m(&mut self.ov, &self.file, &self.eff);
        match &r {
            Err(e) => {
                assert_eq!(self.ov, before, "refused ({e:?}) but changed the overrides");
                assert!(
                    (400..500).contains(&e.code),
                    "not the caller's fault: {e:?}"
                );
            }
            Ok(t) => {
                assert_eq!(t.changed(), self.ov != before, "{t:?}");
                let mut normal = self.ov.clone();
                normal.normalize();
                assert_eq!(normal, self.ov, "empty entries stored");
                refresh(&mut self.eff, &self.file, &self.ov, t);
                assert_eq!(
                    self.eff,
                    effective(&self.file, &self.ov),
                    "incremental refresh after {t:?} differs from a recomputation"
                );
                let errors = check_config(&self.eff.config(&self.file));
                assert!(errors.is_empty(), "accepted, but invalid: {errors:#?}");
            }
        }
        r
    }

    fn set_state(&mut self, pool: &str, b: &str, s: AdminState) -> Result<bool, ApiError> {
        self.run(Box::new(|ov, f, e| set_state(ov, f, e, pool, b, s)))
            .map(|t| t.changed())
    }

    fn set_weight(&mut self, pool: &str, b: &str, w: u32) -> Result<bool, ApiError> {
        self.run(Box::new(|ov, f, e| set_weight(ov, f, e, pool, b, w)))
            .map(|t| t.changed())
    }

    fn add_backend(&mut self, pool: &str, req: AddBackend) -> Result<bool, ApiError> {
        self.run(Box::new(|ov, f, e| add_backend(ov, f, e, pool, &req)))
            .map(|t| t.changed())
    }

    fn remove_backend(&mut self, pool: &str, b: &str) -> Result<bool, ApiError> {
        self.run(Box::new(|ov, f, e| remove_backend(ov, f, e, pool, b)))
            .map(|t| t.changed())
    }

    fn add_pool(&mut self, req: AddPool) -> Result<bool, ApiError> {
        self.run(Box::new(|ov, f, e| add_pool(ov, f, e, &req)))
            .map(|t| t.changed())
    }

    fn remove_pool(&mut self, pool: &str) -> Result<bool, ApiError> {
        self.run(Box::new(|ov, f, e| remove_pool(ov, f, e, pool)))
            .map(|t| t.changed())
    }

    fn add_service(&mut self, req: AddService) -> Result<bool, ApiError> {
        self.run(Box::new(|ov, f, e| add_service(ov, f, e, &req)))
            .map(|t| t.changed())
    }

    fn remove_service(&mut self, service: &str) -> Result<bool, ApiError> {
        self.run(Box::new(|ov, f, e| remove_service(ov, f, e, service)))
            .map(|t| t.changed())
    }

    fn orphans(&self) -> Vec<String> {
        self.eff.orphans(&self.file, &self.ov)
    }

    fn config(&self) -> Config {
        self.eff.config(&self.file)
    }
}

/// What a change should say it touched.
fn touched(pools: &[&str], pool_set: bool, services: bool) -> Touched {
    Touched {
        pools: pools.iter().map(|p| p.to_string()).collect(),
        pool_set,
        services,
    }
}

/// Brings `eff` up to date with what a change touched, as the reconciler does.
fn refresh(eff: &mut Effective, file: &Config, ov: &Overrides, t: &Touched) {
    if t.pool_set {
        eff.rebuild_pools(file, ov);
    } else {
        for p in &t.pools {
            eff.refresh_pool(file, ov, p);
        }
    }
    if t.services {
        eff.rebuild_services(file, ov);
    }
}

/// A backend in effect with its provenance, by names.
fn backend<'a>(
    eff: &'a Effective,
    pool: &str,
    b: &str,
) -> (&'a BackendConfig, &'a BackendProvenance) {
    let (i, j) = eff
        .find_backend(pool, b)
        .unwrap_or_else(|e| panic!("{pool}/{b}: {e:?}"));
    (
        &eff.pools[i].backends[j],
        &eff.pool_provenance[i].backends[j],
    )
}

/// A pool's name and source, and its backends' names and sources.
type Layout = (String, Source, Vec<(String, Source)>);

/// The pools in effect with their sources, and each one's backends.
fn layout(eff: &Effective) -> Vec<Layout> {
    eff.pools
        .iter()
        .zip(&eff.pool_provenance)
        .map(|(p, prov)| {
            (
                p.name.clone(),
                prov.source,
                p.backends
                    .iter()
                    .zip(&prov.backends)
                    .map(|(b, bp)| (b.name.clone(), bp.source))
                    .collect(),
            )
        })
        .collect()
}

/// A [`Layout`] as written in tests: `("web", F, &[("b1", F)])`.
type LayoutRow<'a> = (&'a str, Source, &'a [(&'a str, Source)]);

/// The layout as written in tests.
fn want_layout(rows: &[LayoutRow<'_>]) -> Vec<Layout> {
    rows.iter()
        .map(|(p, s, bs)| {
            (
                p.to_string(),
                *s,
                bs.iter().map(|(b, s)| (b.to_string(), *s)).collect(),
            )
        })
        .collect()
}

/// The services in effect: name, source and pool.
fn services(eff: &Effective) -> Vec<(String, Source, String)> {
    eff.services
        .iter()
        .zip(&eff.service_sources)
        .map(|(s, src)| (s.name.clone(), *src, s.pool.clone()))
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
