//! The statistics page as configured: the `stats:` section (HAProxy's
//! `listen` section with `stats uri`, `stats auth`, `stats admin`, …), served
//! by the agent's HTTP server on a listener of its own.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::proxy::{Bind, FrontendLog, LogFormat};

/// Default of `stats.uri`: the path the seed configuration uses. HAProxy's
/// own default, `/haproxy?stats`, carries a query and is no path.
pub const DEFAULT_URI: &str = "/haproxy-status";
/// Default of `stats.realm`.
pub const DEFAULT_REALM: &str = "lb statistics";
/// Shortest `stats.refresh`: a page that reloads faster than this costs
/// more than it shows.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);
/// Default of `stats.name`: the page's frontend and pool in its log lines.
pub const DEFAULT_NAME: &str = "stats";

/// The `stats:` section. Absent, or without `bind`: no statistics page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatsConfig {
    /// Where the page listens (HAProxy `bind`); `None`: no page.
    pub bind: Option<Bind>,
    /// The page's path; `;csv` and `;json` appended give the other forms.
    pub uri: String,
    /// How often the page reloads itself (`<meta http-equiv="refresh">`);
    /// zero: never (HAProxy's default).
    #[serde(serialize_with = "crate::duration::serialize")]
    pub refresh: Duration,
    /// The basic-auth realm, whole (HAProxy keeps only its first word).
    pub realm: String,
    /// Who may read the page; empty: anyone who reaches it.
    pub users: Vec<StatsUser>,
    /// Leave the agent's version off the page.
    pub hide_version: bool,
    /// Who may drain, enable, put in maintenance and set weights.
    pub admin: StatsAdmin,
    /// The name its log lines give as frontend and pool (HAProxy's
    /// `listen` section name, `admin_status` in the seed).
    pub name: String,
    /// Its access log: an httplog line per request (HAProxy's `log` in the
    /// `listen` section, `proxy.defaults`' when absent).
    pub log: FrontendLog,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            bind: None,
            uri: DEFAULT_URI.into(),
            refresh: Duration::ZERO,
            realm: DEFAULT_REALM.into(),
            users: Vec::new(),
            hide_version: false,
            admin: StatsAdmin::Nobody,
            name: DEFAULT_NAME.into(),
            log: FrontendLog {
                format: LogFormat::Http,
                ..FrontendLog::default()
            },
        }
    }
}

impl StatsConfig {
    /// Whether `user` (authenticated) may act.
    pub fn is_admin(&self, user: &str) -> bool {
        match &self.admin {
            StatsAdmin::Nobody => false,
            StatsAdmin::Everyone => true,
            StatsAdmin::Users(names) => names.iter().any(|n| n == user),
        }
    }
}

/// One `auth:` entry, `user:password`. The password never leaves the
/// agent: it is not serialized (`GET /v1/config` shows the name alone).
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct StatsUser {
    pub name: String,
    #[serde(serialize_with = "hidden")]
    pub password: String,
}

impl std::fmt::Debug for StatsUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StatsUser({:?}, <password>)", self.name)
    }
}

fn hidden<S: Serializer>(_: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("<hidden>")
}

/// `admin:`: HAProxy's `stats admin if TRUE` is `true`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsAdmin {
    /// `false` (the default): the page only shows.
    Nobody,
    /// `true`: every user of `auth`.
    Everyone,
    /// Only these users of `auth`.
    Users(Vec<String>),
}
