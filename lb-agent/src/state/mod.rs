//! Runtime overrides: the changes made through the CLI/API on top of the
//! configuration file, persisted so that they survive reload and restart
//! (HAProxy's runtime API loses them on reload, its users' first complaint).
//!
//! The agent's desired state is [`effective`]`(file, overrides)`. Everything
//! here is pure except [`load`] and [`save`]:
//! - `spec`: how an API request becomes a pool, backend or service (which
//!   are persisted as the configuration model), and how two differ;
//! - `effective`: file + overrides → the configuration in effect, with where
//!   each entry and value comes from, and the overrides that apply to nothing;
//!   one pool at a time, so a change costs what it touches;
//! - `mutate`: the operator's changes, each checked with lb-config's rules
//!   against what it touches before anything changes;
//! - `persist`: the versioned JSON file, written atomically;
//! - `writer`: the thread that persists them off the request path.

mod effective;
mod mutate;
mod persist;
mod spec;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use lb_config::{AdminState, BackendConfig, PoolConfig, ServiceConfig};

pub use effective::{BackendProvenance, Effective, PoolProvenance, effective};
pub use mutate::{
    Touched, add_backend, add_pool, add_service, remove_backend, remove_pool, remove_service,
    set_state, set_weight,
};
pub use persist::{StateError, load, save};
pub use writer::Writer;

/// Name of the overrides file inside `agent.state_dir`.
pub const FILE_NAME: &str = "overrides.json";

/// The file format's version; a file of another version is refused, never
/// guessed at. Version 2 keys backends by pool (configuration schema v2).
pub const FORMAT_VERSION: u32 = 2;

/// How desired state is composed, in words (`lb-ctl status`).
pub const PRECEDENCE: &str = "\
desired state = configuration file + runtime changes (CLI/API), persisted in \
<state_dir>/overrides.json; they survive reload and restart.
- a runtime change wins over the file: a backend's runtime state or weight replaces the file's;
- a pool, backend or service added at runtime is in effect as added, and hides a file entry with the same name (or address);
- a pool, backend or service removed at runtime stays hidden while the file lists it; adding it back exactly as in the file restores the file's;
- setting a value back to the file's drops the override: the file's value is used again, also after later edits;
- a change whose target left the file is kept, inactive (orphaned, listed by status), and applies again when the target returns.";

/// Everything changed at runtime, keyed by names: pool names, backend names
/// within a pool and service names are unique in a valid configuration, and
/// an entry written without a name has its default one (the address for a
/// backend, `<address>:<port>/<protocol>` for a service).
///
/// Invariant kept by the mutations: no empty entry is stored, so two values
/// are equal exactly when they change the same things.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    version: Version,
    /// Pool name → backend name → the values set at runtime. Applies to the
    /// backend in effect with that name, from the file or added at runtime.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    backend_overrides: BTreeMap<String, BTreeMap<String, BackendOverride>>,
    /// Pools added at runtime with all their backends, in the order added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    added_pools: Vec<PoolConfig>,
    /// File pool name → backends added to it at runtime, in the order added.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    added_backends: BTreeMap<String, Vec<BackendConfig>>,
    /// Names of file pools removed at runtime (tombstones).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    removed_pools: BTreeSet<String>,
    /// File pool name → names of its file backends removed at runtime.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    removed_backends: BTreeMap<String, BTreeSet<String>>,
    /// Services added at runtime, in the order added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    added_services: Vec<ServiceConfig>,
    /// Names of file services removed at runtime (tombstones).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    removed_services: BTreeSet<String>,
}

impl Overrides {
    /// Whether nothing was changed at runtime: the file alone is in effect.
    pub fn is_empty(&self) -> bool {
        *self == Overrides::default()
    }

    /// Drops empty entries (see the invariant on [`Overrides`]).
    fn normalize(&mut self) {
        for per_pool in self.backend_overrides.values_mut() {
            per_pool.retain(|_, o| !o.is_empty());
        }
        self.backend_overrides.retain(|_, m| !m.is_empty());
        self.added_backends.retain(|_, l| !l.is_empty());
        self.removed_backends.retain(|_, s| !s.is_empty());
    }

    /// Forgets every change keyed by the pool `pool`, not the pool itself.
    fn forget_pool_children(&mut self, pool: &str) {
        self.backend_overrides.remove(pool);
        self.added_backends.remove(pool);
        self.removed_backends.remove(pool);
    }
}

/// Values set at runtime for one backend; `None` leaves the base value (the
/// file's, or the one the backend was added with).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<AdminState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
}

impl BackendOverride {
    fn is_empty(&self) -> bool {
        self.state.is_none() && self.weight.is_none()
    }
}

/// The `version` key: written as [`FORMAT_VERSION`], and any other value is
/// refused when read (a newer agent's file is not silently misread).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Version;

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(FORMAT_VERSION)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u64::deserialize(d)?;
        if v == u64::from(FORMAT_VERSION) {
            Ok(Version)
        } else {
            Err(de::Error::custom(format!(
                "unsupported format version {v} (this lb-ctl reads version {FORMAT_VERSION}; \
                 version 1 keyed changes by VIP, before pools: move the file aside and make the \
                 changes again)"
            )))
        }
    }
}
