//! Cookie persistence, HAProxy 2.6's `cookie NAME [insert|rewrite|prefix]
//! [indirect] [nocache] [httponly] [secure]` and the bare `cookie NAME`
//! (read only): which server a request's cookie names, what is removed from
//! the request before it reaches the server, and what the response gets
//! (docs/proxy.md, "Cookie persistence").
//!
//! Pure functions over header maps: [`CookieRules::on_request`] reads and
//! edits the request's `Cookie` headers, [`CookieRules::on_response`] the
//! response's `Set-Cookie` (and `Cache-Control`). A request with no cookie
//! of ours costs a scan of its `Cookie` headers and allocates nothing.

mod cache;
mod parse;

use hyper::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use lb_config::proxy::{CookieConfig, CookieMode};

use self::parse::{Item, cookie_items, set_cookie_item};
use crate::servers::{Server, ServerId, Servers};

/// Separates the server's value from the application's in `prefix` mode.
const PREFIX_DELIM: u8 = b'~';
/// Ends the server's value in the other modes (HAProxy writes dates after
/// it with `maxidle`/`maxlife`, which lb does not offer, but reads them).
const DATE_DELIM: u8 = b'|';

/// What a request's persistence cookie says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persisted {
    /// No cookie of ours: balance (and, with `insert`, set the cookie on
    /// the response).
    No,
    /// A cookie of ours that is empty or names no server of the pool: as
    /// [`Persisted::No`], but logged apart (HAProxy's `I`: a configuration
    /// change, a cookie of another site, an attack).
    Invalid,
    /// The cookie names this server and it is running (up or draining,
    /// whatever its weight): the request goes there.
    To(ServerId),
    /// The cookie names this server but it is down or in maintenance.
    /// HAProxy 2.6 then balances the request as if there were no cookie,
    /// with or without `option redispatch` (only `option persist`, which
    /// lb does not offer, would insist); with `insert` the response sets
    /// the cookie of the server that answered.
    Down(ServerId),
}

impl Persisted {
    /// Whether `server` is the one the cookie sent the request to (HAProxy's
    /// "direct" access): only then is the client's cookie left as it is.
    pub fn is_direct_to(self, server: ServerId) -> bool {
        self == Persisted::To(server)
    }

    /// What a request saying `self` and then carrying another cookie of
    /// ours that says `next` says, as HAProxy reads them in order: the
    /// first running server wins, a down one beats one naming nothing.
    fn then(self, next: Persisted) -> Persisted {
        match (self, next) {
            (_, Persisted::No)
            | (Persisted::To(_), _)
            | (Persisted::Down(_), Persisted::Invalid | Persisted::Down(_)) => self,
            _ => next,
        }
    }
}

/// What the cookie rules did to a response's cookie of ours (HAProxy's
/// fourth termination-state letter), the last thing done when several.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetCookie {
    /// `N`: the server sent none and none was inserted.
    #[default]
    None,
    /// `P`: the server's went to the client as it was.
    Provided,
    /// `R`: the server's was rewritten (`rewrite`) or prefixed (`prefix`).
    Rewritten,
    /// `D`: the server's was removed (`insert`, or `indirect` on a request
    /// that came by its cookie).
    Deleted,
    /// `I`: lb set one (`insert`), in place of any the server sent.
    Inserted,
}

/// A pool's `cookie` line, ready for requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieRules {
    name: Box<str>,
    mode: CookieMode,
    indirect: bool,
    nocache: bool,
    httponly: bool,
    secure: bool,
}

/// The response as [`CookieRules::on_response`] needs it.
#[derive(Clone, Copy, Debug)]
pub struct Reply<'a> {
    /// The server that answered.
    pub server: &'a Server,
    /// The request reached it because of its cookie ([`Persisted::is_direct_to`]).
    pub direct: bool,
    /// The request's method (only safe methods' responses are cacheable).
    pub method: &'a Method,
    pub status: StatusCode,
}

impl CookieRules {
    pub fn new(cfg: &CookieConfig) -> CookieRules {
        CookieRules {
            name: cfg.name.as_str().into(),
            mode: cfg.mode,
            indirect: cfg.indirect,
            nocache: cfg.nocache,
            httponly: cfg.httponly,
            secure: cfg.secure,
        }
    }

    /// Whether the access log gives this cookie's letters: HAProxy writes
    /// `--` for a bare `cookie NAME` (read, not `indirect`), which only
    /// reads.
    pub fn is_logged(&self) -> bool {
        self.mode != CookieMode::Read || self.indirect
    }

    /// Finds the server the request's cookie names among `servers` (the
    /// first occurrence naming a running server wins) and edits the
    /// request's `Cookie` headers: `prefix` strips `SERVER~` from the
    /// application's cookie, `insert indirect` removes ours.
    pub fn on_request(&self, headers: &mut HeaderMap, servers: &Servers) -> Persisted {
        let mut found = Persisted::No;
        let mut edited: Option<Vec<Option<HeaderValue>>> = None;
        for (k, line) in headers.get_all(header::COOKIE).iter().enumerate() {
            let line = line.as_bytes();
            let mut changed = false;
            for item in cookie_items(line) {
                let (name, Some(value)) = item.text(line) else {
                    continue;
                };
                if name != self.name.as_bytes() {
                    continue;
                }
                let (server_part, _) = self.split_value(value);
                if !matches!(found, Persisted::To(_)) {
                    found = found.then(lookup(servers, server_part));
                }
                changed |= self.edits_request(value);
            }
            if changed {
                let all = edited.get_or_insert_with(|| {
                    headers
                        .get_all(header::COOKIE)
                        .iter()
                        .map(|v| Some(v.clone()))
                        .collect()
                });
                all[k] = self.rewrite_line(line);
            }
        }
        if let Some(lines) = edited {
            headers.remove(header::COOKIE);
            for v in lines.into_iter().flatten() {
                headers.append(header::COOKIE, v);
            }
        }
        found
    }

    /// Applies the cookie rules to the response of `reply.server`: the
    /// application's own cookie of our name is removed (`insert`, or
    /// `indirect` on a direct request), rewritten (`rewrite`) or prefixed
    /// (`prefix`); with `insert`, a request that did not come by its cookie
    /// gets `Set-Cookie: NAME=VALUE; path=/[; HttpOnly][; Secure]`, and
    /// with `nocache` a cacheable response then gets `Cache-Control:
    /// private`. Interim (1xx) responses are left alone. Returns what was
    /// done, for the access log.
    pub fn on_response(&self, reply: Reply<'_>, headers: &mut HeaderMap) -> SetCookie {
        let status = reply.status.as_u16();
        if status < 200 && status != 101 {
            return SetCookie::None;
        }
        let mut done = SetCookie::None;
        if headers.contains_key(header::SET_COOKIE) {
            done = self.edit_set_cookies(reply, headers);
        }
        if self.mode != CookieMode::Insert || reply.direct {
            return done;
        }
        // HAProxy 2.6 sends `NAME=; Expires=…1970…` here for a server
        // without a cookie value, dropping the client's stickiness to the
        // other servers; lb leaves the client's cookie alone.
        let Some(value) = reply.server.cookie() else {
            return done;
        };
        let mut text = format!("{}={value}; path=/", self.name);
        if self.httponly {
            text.push_str("; HttpOnly");
        }
        if self.secure {
            text.push_str("; Secure");
        }
        let Ok(set) = HeaderValue::try_from(text) else {
            return done;
        };
        let private = self.nocache && cache::is_cacheable(reply.method, reply.status, headers);
        headers.append(header::SET_COOKIE, set);
        if private {
            headers.append(header::CACHE_CONTROL, HeaderValue::from_static("private"));
        }
        SetCookie::Inserted
    }

    /// A cookie value's server part, and in `prefix` mode the
    /// application's part after `~` (None when there is no `~`).
    fn split_value<'v>(&self, value: &'v [u8]) -> (&'v [u8], Option<&'v [u8]>) {
        let delim = if self.mode == CookieMode::Prefix {
            PREFIX_DELIM
        } else {
            DATE_DELIM
        };
        match value.iter().position(|&c| c == delim) {
            Some(at) if self.mode == CookieMode::Prefix => (&value[..at], Some(&value[at + 1..])),
            Some(at) => (&value[..at], None),
            None => (value, None),
        }
    }

    /// Whether our cookie with `value` changes the request line.
    fn edits_request(&self, value: &[u8]) -> bool {
        match self.mode {
            CookieMode::Prefix => self.split_value(value).1.is_some(),
            CookieMode::Insert => self.indirect,
            CookieMode::Read | CookieMode::Rewrite => false,
        }
    }

    /// The `Cookie` line without our cookie (`insert indirect`) or with its
    /// crumb stripped (`prefix`); None when nothing is left. The items kept
    /// are joined by `; `.
    fn rewrite_line(&self, line: &[u8]) -> Option<HeaderValue> {
        let mut out: Vec<u8> = Vec::with_capacity(line.len());
        let mut dropping = false;
        for item in cookie_items(line) {
            let (name, value) = item.text(line);
            if item.is_attribute(line) && dropping {
                continue;
            }
            dropping = false;
            let value = match value {
                Some(v) if name == self.name.as_bytes() => match self.split_value(v) {
                    (_, Some(app)) => Some(app),
                    _ if self.edits_request(v) => {
                        dropping = true;
                        continue;
                    }
                    _ => Some(v),
                },
                v => v,
            };
            push_item(&mut out, name, value);
        }
        HeaderValue::from_bytes(&out)
            .ok()
            .filter(|_| !out.is_empty())
    }

    /// Removes, rewrites or prefixes the application's `Set-Cookie` of our
    /// name; what was done to the last one.
    fn edit_set_cookies(&self, reply: Reply<'_>, headers: &mut HeaderMap) -> SetCookie {
        let ours = |v: &HeaderValue| {
            let line = v.as_bytes();
            let item = set_cookie_item(line);
            matches!(item.text(line), (n, Some(_)) if n == self.name.as_bytes())
        };
        if !headers.get_all(header::SET_COOKIE).iter().any(ours) {
            return SetCookie::None;
        }
        let remove = self.mode == CookieMode::Insert || (reply.direct && self.indirect);
        let lines: Vec<HeaderValue> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .cloned()
            .collect();
        headers.remove(header::SET_COOKIE);
        let mut done = SetCookie::None;
        for line in lines {
            if !ours(&line) {
                headers.append(header::SET_COOKIE, line);
            } else if remove {
                done = SetCookie::Deleted;
            } else if let Some(new) = self.server_cookie(&line, reply.server) {
                headers.append(header::SET_COOKIE, new);
                done = SetCookie::Rewritten;
            } else {
                headers.append(header::SET_COOKIE, line);
                done = SetCookie::Provided;
            }
        }
        done
    }

    /// `rewrite`: the value replaced by the server's; `prefix`: the server's
    /// value and `~` put before it. None: left as it is.
    fn server_cookie(&self, line: &HeaderValue, server: &Server) -> Option<HeaderValue> {
        let ours = server.cookie()?.as_bytes();
        let bytes = line.as_bytes();
        let Item { value: Some(v), .. } = set_cookie_item(bytes) else {
            return None;
        };
        let mut out = Vec::with_capacity(bytes.len() + ours.len() + 1);
        out.extend_from_slice(&bytes[..v.start]);
        match self.mode {
            CookieMode::Rewrite => out.extend_from_slice(ours),
            CookieMode::Prefix => {
                out.extend_from_slice(ours);
                out.push(PREFIX_DELIM);
                out.extend_from_slice(&bytes[v.clone()]);
            }
            CookieMode::Read | CookieMode::Insert => return None,
        }
        out.extend_from_slice(&bytes[v.end..]);
        HeaderValue::from_bytes(&out).ok()
    }
}

/// A pool's rules serve many tasks at once.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<CookieRules>();
};

/// What a cookie's server part names: the first running server with that
/// value, in pool order; else one that has it but is down; else nothing
/// (an empty value names nothing, as in HAProxy).
fn lookup(servers: &Servers, value: &[u8]) -> Persisted {
    if value.is_empty() {
        return Persisted::Invalid;
    }
    let mut down = Persisted::Invalid;
    for id in servers.with_cookie(value) {
        match servers.get(id) {
            Some(s) if s.is_running() => return Persisted::To(id),
            Some(_) if down == Persisted::Invalid => down = Persisted::Down(id),
            _ => {}
        }
    }
    down
}

/// Appends `name[=value]` to a `Cookie` line being built.
fn push_item(out: &mut Vec<u8>, name: &[u8], value: Option<&[u8]>) {
    if name.is_empty() && value.is_none() {
        return;
    }
    if !out.is_empty() {
        out.extend_from_slice(b"; ");
    }
    out.extend_from_slice(name);
    if let Some(v) = value {
        out.push(b'=');
        out.extend_from_slice(v);
    }
}

#[cfg(test)]
mod tests;
