//! The statistics page (HAProxy's `stats uri`), on the `stats.bind`
//! listener: `URI` as HTML, `URI;csv` as HAProxy's CSV, `URI;json` as lb's
//! JSON ([`table::Table`]); basic auth with `stats.auth`; admin actions
//! posted to `URI`. A GET never changes anything. With `stats.log`, every
//! request gets an access log line ([`log`]).

mod action;
mod csrf;
mod csv;
mod downtime;
mod html;
mod log;
mod login;
mod table;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::{
    Method, StatusCode,
    header::{self, HeaderValue},
};
use lb_api::types::ApiError;
use lb_config::stats::StatsConfig;
use tokio::task::JoinHandle;

use super::Shared;
use super::body::{HttpRequest, HttpResponse, full, method_not_allowed};
use crate::api::{Request, ask};
use crate::events::EventBus;
pub use csrf::Csrf;
use table::Table;

/// The page's settings and what it keeps while the agent runs.
pub struct Page {
    cfg: StatsConfig,
    csrf: Csrf,
    tracked: downtime::Tracked,
    log: Option<log::PageLog>,
}

/// What a path under the page's listener asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Html,
    Csv,
    Json,
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Page")
            .field("uri", &self.cfg.uri)
            .finish_non_exhaustive()
    }
}

impl Page {
    /// The page for `cfg`, following `events` for downtime, its log lines
    /// tagged `log_tag`; the task runs until aborted.
    pub fn start(
        cfg: StatsConfig,
        log_tag: &str,
        events: &EventBus,
    ) -> anyhow::Result<(Page, JoinHandle<()>)> {
        let csrf = Csrf::new()
            .map_err(|_| anyhow::anyhow!("no randomness for the stats page's CSRF key"))?;
        let (tracked, task) = downtime::Tracked::start(events);
        let log = log::PageLog::new(&cfg, log_tag);
        let page = Page {
            cfg,
            csrf,
            tracked,
            log,
        };
        Ok((page, task))
    }
}

/// Answers one request on the stats listener, and logs it.
pub(super) async fn respond(shared: &Shared, page: &Page, req: HttpRequest) -> HttpResponse {
    let entry = page.log.as_ref().map(|l| l.begin(&req));
    let (resp, answered) = answer(shared, page, req).await;
    if let Some(entry) = entry {
        entry.end(&resp, answered);
    }
    resp
}

/// The answer, and who gave it (for the log line).
async fn answer(shared: &Shared, page: &Page, req: HttpRequest) -> (HttpResponse, log::Answered) {
    let path = req.uri().path();
    let form = match path.strip_prefix(page.cfg.uri.as_str()) {
        Some("") => Form::Html,
        Some(";csv") => Form::Csv,
        Some(";json") => Form::Json,
        _ => {
            let why = format!("no page {path} (the statistics are at {})", page.cfg.uri);
            return (text(StatusCode::NOT_FOUND, &why), log::Answered::Elsewhere);
        }
    };
    let Some(who) = login::identify(req.headers(), &page.cfg) else {
        let challenge = secure(login::challenge(&page.cfg.realm));
        return (challenge, log::Answered::Challenge);
    };
    let now = unix_now();
    let resp = match (req.method(), form) {
        (&Method::GET | &Method::HEAD, _) => {
            view(shared, page, &who, form, req.uri().query(), now).await
        }
        (&Method::POST, Form::Html) => {
            match action::apply(&shared.ctx.requests, &page.csrf, &who, req, now).await {
                Ok(query) => see_other(&format!("{}?{query}", page.cfg.uri)),
                Err(e) => failed(&e),
            }
        }
        (m, _) => {
            let allow: &[Method] = if form == Form::Html {
                &[Method::GET, Method::HEAD, Method::POST]
            } else {
                &[Method::GET, Method::HEAD]
            };
            method_not_allowed(allow, m, path)
        }
    };
    (secure(resp), log::Answered::Page)
}

/// A GET: the table now, in the form asked for.
async fn view(
    shared: &Shared,
    page: &Page,
    who: &login::Who,
    form: Form,
    query: Option<&str>,
    now: u64,
) -> HttpResponse {
    let status = match ask(&shared.ctx.requests, Request::Status).await {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let proxy = crate::proxy::stats();
    let t = table::build(&status, proxy.as_ref(), &page.tracked, now);
    match form {
        Form::Csv => full(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Bytes::from(csv::render(&t)),
        ),
        Form::Json => match serde_json::to_vec_pretty(&t) {
            Ok(body) => full(StatusCode::OK, "application/json", Bytes::from(body)),
            Err(e) => failed(&ApiError::internal(format!("encoding the table: {e}"))),
        },
        Form::Html => {
            let token = match (&who.user, who.admin) {
                (Some(u), true) => Some(page.csrf.token(u, now)),
                _ => None,
            };
            let p = html::Page {
                uri: &page.cfg.uri,
                refresh: page.cfg.refresh,
                version: (!page.cfg.hide_version).then_some(env!("CARGO_PKG_VERSION")),
                user: who.user.as_deref(),
                csrf: token.as_deref(),
                notice: query.and_then(|q| notice(&t, q)),
            };
            full(
                StatusCode::OK,
                "text/html; charset=utf-8",
                Bytes::from(html::render(&t, &p)),
            )
        }
    }
}

/// `done=ACTION&pool=P&server=S` (the 303 after an action) as a sentence,
/// if the server is in the table: nothing a link could make the page say.
fn notice(t: &Table, query: &str) -> Option<String> {
    let mut done = None;
    let (mut pool, mut server) = (None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "done" => done = Some(v.into_owned()),
            "pool" => pool = Some(v.into_owned()),
            "server" => server = Some(v.into_owned()),
            _ => {}
        }
    }
    let action = ["enable", "drain", "maint", "set-weight"]
        .into_iter()
        .find(|a| Some(*a) == done.as_deref())?;
    let p = t.pools.iter().find(|p| Some(&p.name) == pool.as_ref())?;
    let s = p
        .servers
        .iter()
        .find(|s| Some(&s.name) == server.as_ref())?;
    Some(format!(
        "{}/{}: {action} done; it is now {} with weight {}",
        p.name, s.name, s.state, s.weight
    ))
}

fn see_other(location: &str) -> HttpResponse {
    let mut resp = full(
        StatusCode::SEE_OTHER,
        "text/plain; charset=utf-8",
        Bytes::from(format!("see {location}\n")),
    );
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn failed(e: &ApiError) -> HttpResponse {
    let status = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    text(status, &e.reason)
}

fn text(status: StatusCode, reason: &str) -> HttpResponse {
    let body = format!(
        "{} {}: {reason}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    full(status, "text/plain; charset=utf-8", Bytes::from(body))
}

/// Headers every answer gets: never cached, never framed (clickjacking an
/// admin's buttons), no script, forms only to this page.
fn secure(mut resp: HttpResponse) -> HttpResponse {
    let h = resp.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
