//! An admin's POST: who may act, whether the form came from our page
//! (`Origin`/`Referer`, then the CSRF token), what it asks, and the same
//! reconciler request `lb-ctl backend drain|enable|maint|set-weight` sends
//! (overrides persisted, events, metrics). The answer is a 303 back to the
//! page, which then shows what was done.

use hyper::{HeaderMap, header};
use lb_api::{paths::encode, types::ApiError};
use lb_config::AdminState;

use super::super::body::{HttpRequest, read_body};
use super::csrf::Csrf;
use super::login::Who;
use crate::api::{Request, RequestSender, ask};

/// What a form asks.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    State(AdminState),
    Weight(u32),
}

/// A checked form.
#[derive(Debug, PartialEq, Eq)]
pub struct Form {
    pub pool: String,
    pub server: String,
    pub action: Action,
    csrf: Option<String>,
}

/// Checks and applies one POST; `Ok` is the query of the page to go back to.
pub async fn apply(
    tx: &RequestSender,
    csrf: &Csrf,
    who: &Who,
    req: HttpRequest,
    now: u64,
) -> Result<String, ApiError> {
    let user = match (&who.user, who.admin) {
        (Some(u), true) => u.clone(),
        (u, _) => {
            return Err(forbidden(format!(
                "{} may not act on this page (stats.admin)",
                u.as_deref()
                    .map_or("an anonymous reader".into(), |u| format!("user `{u}`"))
            )));
        }
    };
    same_origin(req.headers()).map_err(forbidden)?;
    let form = parse(&read_body(req).await?)?;
    csrf.check(&user, form.csrf.as_deref(), now)
        .map_err(|e| forbidden(e.to_string()))?;
    let (pool, backend) = (form.pool.clone(), form.server.clone());
    let done = match form.action {
        Action::State(state) => {
            ask(tx, |reply| Request::SetState {
                pool,
                backend,
                state,
                reply,
            })
            .await?
        }
        Action::Weight(weight) => {
            ask(tx, |reply| Request::SetWeight {
                pool,
                backend,
                weight,
                reply,
            })
            .await?
        }
    };
    tracing::info!(user, pool = form.pool, server = form.server, action = ?form.action, changed = done.changed, "stats page action");
    Ok(format!(
        "done={}&pool={}&server={}",
        form.action.name(),
        encode(&form.pool),
        encode(&form.server)
    ))
}

impl Action {
    /// As in the form and the notice.
    pub fn name(&self) -> &'static str {
        match self {
            Action::State(AdminState::Up) => "enable",
            Action::State(AdminState::Drain) => "drain",
            Action::State(AdminState::Maint) => "maint",
            Action::Weight(_) => "set-weight",
        }
    }
}

fn forbidden(reason: String) -> ApiError {
    ApiError { code: 403, reason }
}

/// When the browser says where the form was, it must be this page's site
/// (the `Host` it was asked for); a browser that says nothing is left to
/// the token.
fn same_origin(h: &HeaderMap) -> Result<(), String> {
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let from = |v: &str| {
        let rest = v
            .strip_prefix("http://")
            .or_else(|| v.strip_prefix("https://"))?;
        Some(rest.split('/').next().unwrap_or("").to_owned())
    };
    for name in [header::ORIGIN, header::REFERER] {
        if let Some(v) = h.get(&name) {
            let site = v.to_str().ok().and_then(from);
            if site.as_deref() != Some(host) || host.is_empty() {
                return Err(format!(
                    "the form was posted from another site ({name}: {}): only this page may act",
                    String::from_utf8_lossy(v.as_bytes())
                ));
            }
            return Ok(());
        }
    }
    Ok(())
}

/// `application/x-www-form-urlencoded`: `action`, `pool`, `server`, `csrf`
/// and, for `set-weight`, `weight`.
pub fn parse(body: &[u8]) -> Result<Form, ApiError> {
    let (mut action, mut pool, mut server, mut weight, mut csrf) = (None, None, None, None, None);
    for (k, v) in form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "action" => &mut action,
            "pool" => &mut pool,
            "server" => &mut server,
            "weight" => &mut weight,
            "csrf" => &mut csrf,
            _ => continue,
        };
        *slot = Some(v.into_owned());
    }
    let need = |v: Option<String>, what: &str| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request(format!("the form has no `{what}`")))
    };
    let action = match need(action, "action")?.as_str() {
        "enable" | "ready" => Action::State(AdminState::Up),
        "drain" => Action::State(AdminState::Drain),
        "maint" => Action::State(AdminState::Maint),
        "set-weight" => {
            let w = need(weight, "weight")?;
            Action::Weight(
                w.trim()
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("weight `{w}` is not a number")))?,
            )
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown action `{other}` (enable, drain, maint, set-weight)"
            )));
        }
    };
    Ok(Form {
        pool: need(pool, "pool")?,
        server: need(server, "server")?,
        action,
        csrf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn forms_parse_or_say_why_not() {
        let f = parse(b"csrf=ab&pool=web&server=b%201&action=drain").unwrap();
        assert_eq!((f.pool.as_str(), f.server.as_str()), ("web", "b 1"));
        assert_eq!(
            (f.action, f.csrf.as_deref()),
            (Action::State(AdminState::Drain), Some("ab"))
        );
        let f = parse(b"pool=web&server=b1&action=set-weight&weight=+7").unwrap();
        assert_eq!((f.action, f.csrf), (Action::Weight(7), None));
        for (body, why) in [
            (&b"pool=web&server=b1"[..], "no `action`"),
            (b"pool=web&server=b1&action=kill", "unknown action `kill`"),
            (
                b"pool=web&server=b1&action=set-weight&weight=x",
                "weight `x`",
            ),
            (b"pool=web&action=drain", "no `server`"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.reason.contains(why), "{e:?}");
        }
    }

    #[test]
    fn origin_and_referer_must_be_this_site() {
        let h = |pairs: &[(header::HeaderName, &str)]| {
            let mut m = HeaderMap::new();
            for (n, v) in pairs {
                m.insert(n.clone(), HeaderValue::from_str(v).unwrap());
            }
            m
        };
        let host = (header::HOST, "10.0.0.2:9188");
        assert!(same_origin(&h(std::slice::from_ref(&host))).is_ok());
        assert!(
            same_origin(&h(&[
                host.clone(),
                (header::ORIGIN, "http://10.0.0.2:9188")
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&h(&[
                host.clone(),
                (header::REFERER, "http://10.0.0.2:9188/haproxy-status")
            ]))
            .is_ok()
        );
        assert!(same_origin(&h(&[host.clone(), (header::ORIGIN, "http://evil.example")])).is_err());
        assert!(same_origin(&h(&[host.clone(), (header::ORIGIN, "null")])).is_err());
        assert!(same_origin(&h(&[host, (header::REFERER, "http://10.0.0.2:91880/")])).is_err());
    }
}
