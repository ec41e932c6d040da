//! Who is asking: HTTP basic auth (RFC 7617) against `stats.auth`, and the
//! 401 that asks a browser for a user and password in `stats.realm`.

use base64::Engine as _;
use bytes::Bytes;
use hyper::{
    HeaderMap, StatusCode,
    header::{self, HeaderValue},
};
use lb_config::stats::StatsConfig;

use super::super::auth::constant_time_eq;
use super::super::body::{HttpResponse, full};

/// The reader of the page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who {
    /// `None` when `stats.auth` is empty (the page is open).
    pub user: Option<String>,
    pub admin: bool,
}

/// The user `headers` authenticate as; `None`: ask again (401). Every
/// configured user is compared, each in constant time, so the time taken
/// tells neither which user exists nor how much of a password was right.
pub fn identify(headers: &HeaderMap, cfg: &StatsConfig) -> Option<Who> {
    if cfg.users.is_empty() {
        return Some(Who {
            user: None,
            admin: false,
        });
    }
    let (name, password) = credentials(headers)?;
    let mut found = None;
    for u in &cfg.users {
        let ok = constant_time_eq(name.as_bytes(), u.name.as_bytes())
            & constant_time_eq(password.as_bytes(), u.password.as_bytes());
        if ok {
            found = Some(u.name.clone());
        }
    }
    let name = found?;
    Some(Who {
        admin: cfg.is_admin(&name),
        user: Some(name),
    })
}

/// `Authorization: Basic base64(user:password)`, decoded.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// 401 with `WWW-Authenticate: Basic realm="REALM"` (the realm whole; the
/// configuration refused quotes and backslashes in it).
pub fn challenge(realm: &str) -> HttpResponse {
    let mut resp = full(
        StatusCode::UNAUTHORIZED,
        "text/plain; charset=utf-8",
        Bytes::from_static(b"401 Unauthorized: this page needs a user and password\n"),
    );
    let value = format!("Basic realm=\"{realm}\", charset=\"UTF-8\"");
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_config::stats::{StatsAdmin, StatsUser};

    fn cfg() -> StatsConfig {
        let user = |n: &str, p: &str| StatsUser {
            name: n.into(),
            password: p.into(),
        };
        StatsConfig {
            users: vec![user("admin", "s3:cret"), user("guest", "guest")],
            admin: StatsAdmin::Users(vec!["admin".into()]),
            ..StatsConfig::default()
        }
    }

    fn basic(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn encoded(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    #[test]
    fn users_passwords_and_admins() {
        let c = cfg();
        let admin = identify(&basic(&format!("Basic {}", encoded("admin:s3:cret"))), &c);
        assert_eq!(
            admin,
            Some(Who {
                user: Some("admin".into()),
                admin: true
            })
        );
        let guest = identify(&basic(&format!("basic {}", encoded("guest:guest"))), &c);
        assert_eq!(
            guest.map(|w| (w.user, w.admin)),
            Some((Some("guest".into()), false))
        );
        for wrong in [
            format!("Basic {}", encoded("guest:Guest")),
            format!("Basic {}", encoded("admin:guest")),
            format!("Basic {}", encoded("guestguest")),
            format!("Bearer {}", encoded("guest:guest")),
            "Basic !!!".to_owned(),
        ] {
            assert_eq!(identify(&basic(&wrong), &c), None, "{wrong}");
        }
        assert_eq!(identify(&HeaderMap::new(), &c), None);
        let open = StatsConfig::default();
        assert_eq!(
            identify(&HeaderMap::new(), &open).map(|w| w.admin),
            Some(false)
        );
    }

    #[test]
    fn the_challenge_names_the_whole_realm() {
        let r = challenge("welcom login");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"welcom login\", charset=\"UTF-8\""
        );
    }
}
