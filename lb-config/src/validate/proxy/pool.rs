//! What frontends ask of the pools they use (a port on every backend, no
//! request loop), the backends' cookie values, and the L7 settings of a
//! pool that HAProxy takes silently although they cannot work as written.

use std::net::SocketAddr;

use super::Context;
use crate::diagnostic::Problems;
use crate::model::*;
use crate::positions::YamlPath;
use crate::proxy::*;
use crate::rules;

/// Every pool against the frontends using it.
pub(super) fn check_pools(frontends: &[FrontendConfig], cx: &Context, p: &mut Problems) {
    for pool in &cx.pools.list {
        let Some((pool_at, paths)) = cx.pools.at.get(&pool.name) else {
            continue;
        };
        cookie_values(pool, paths, p);
        super::source::check_source(pool, pool_at, p);
        let users: Vec<&FrontendConfig> = frontends
            .iter()
            .filter(|f| f.pools().contains(&pool.name.as_str()))
            .collect();
        let Some(first) = users.first() else {
            unused_settings(pool, pool_at, cx, p);
            continue;
        };
        for (b, b_at) in pool.backends.iter().zip(paths) {
            backend_reachable(pool, b, b_at, first, cx, p);
            for f in &users {
                no_loop(b, b_at, f, p);
            }
        }
        if users.iter().any(|f| f.mode == ProxyMode::Http) {
            cookie_warnings(pool, pool_at, cx, p);
        }
        if let Some(f) = users.iter().find(|f| f.mode == ProxyMode::Tcp) {
            tcp_warnings(pool, pool_at, f, p);
        }
    }
}

/// Each value names one server; values without a pool cookie do nothing.
fn cookie_values(pool: &PoolConfig, paths: &[YamlPath], p: &mut Problems) {
    for (j, (b, b_at)) in pool.backends.iter().zip(paths).enumerate() {
        let Some(value) = &b.proxy.cookie else {
            continue;
        };
        let at = b_at.key("cookie");
        if pool.proxy.cookie.is_none() {
            p.warning(
                &at,
                format!(
                    "cookie `{value}` of backend `{}` is ignored: pool `{}` has no cookie \
                     (set `cookie:` on the pool, or remove the value)",
                    b.name, pool.name
                ),
            );
        }
        if let Some(k) = rules::cookie_clash(pool, j) {
            let line = paths.get(k).map_or(0, |o| p.line_of(o));
            p.error(
                &at,
                format!(
                    "cookie value `{value}` is also backend `{}`'s (line {line}): each server of a pool needs its own",
                    pool.backends.get(k).map_or("?", |o| o.name.as_str())
                ),
            );
        }
    }
}

/// The proxy connects to address:port itself; a pool shared with a DR
/// service must suit both.
fn backend_reachable(
    pool: &PoolConfig,
    b: &BackendConfig,
    b_at: &YamlPath,
    f: &FrontendConfig,
    cx: &Context,
    p: &mut Problems,
) {
    let Err(why) = rules::backend_fits_frontend(&f.name, &pool.name, b) else {
        return;
    };
    let at = if b.port.is_some() {
        b_at.key("port")
    } else {
        b_at.clone()
    };
    let shared = cx.services.iter().find(|s| s.pool == pool.name);
    let message = match shared {
        None => why,
        Some(s) => format!(
            "{why}; pool `{}` is also used by service `{}`, where direct routing keeps the \
             port: a pool used by both needs each backend's `port` equal to the service's \
             ({}), else give the frontend a pool of its own",
            pool.name, s.name, s.port
        ),
    };
    p.error(&at, message);
}

/// A backend that is the frontend's own bind would have the proxy connect
/// to itself, request after request.
fn no_loop(b: &BackendConfig, b_at: &YamlPath, f: &FrontendConfig, p: &mut Problems) {
    let Some(port) = b.port.filter(|p| *p != 0) else {
        return;
    };
    let target = SocketAddr::new(b.address, port);
    let own = |bind: &&Bind| {
        bind.addr == target
            || (bind.is_wildcard() && b.address.is_loopback() && bind.overlaps(target))
    };
    if let Some(bind) = f.binds.iter().find(own) {
        p.error(
            &b_at.key("address"),
            format!(
                "backend `{}` ({target}) is where frontend `{}` listens (`{bind}`): its requests would loop",
                b.name, f.name
            ),
        );
    }
}

/// The seed's traps with cookies, and a cookie without redispatch.
fn cookie_warnings(pool: &PoolConfig, pool_at: &YamlPath, cx: &Context, p: &mut Problems) {
    let Some(c) = &pool.proxy.cookie else { return };
    // Inherited from `proxy.defaults`: said at the pool's name.
    let inherited = pool.proxy.cookie == cx.proxy.defaults.pool.cookie;
    let from = if inherited {
        ", inherited from proxy.defaults"
    } else {
        ""
    };
    let at = pool_at.key("cookie");
    let name = &c.name;
    let missing: Vec<&str> = pool
        .backends
        .iter()
        .filter(|b| b.proxy.cookie.is_none())
        .map(|b| b.name.as_str())
        .collect();
    let mut say = |m: String| {
        let m = format!("pool `{}`: {m}", pool.name);
        match inherited {
            true => p.warning_at_key(pool_at, m),
            false => p.warning(&at, m),
        }
    };
    match c.mode {
        CookieMode::Read => say(format!(
            "cookie {name} (mode read{from}) is only read, never set: persistence works only if the \
             application sets {name}=<server cookie>; use mode: insert to have lb set it"
        )),
        _ if missing.is_empty() => {}
        CookieMode::Insert => say(format!(
            "cookie {name} (mode insert{from}) but backends without a `cookie` value ({}): HAProxy \
             would answer their responses with `Set-Cookie: {name}=; Expires=Thu, 01-Jan-1970 \
             00:00:01 GMT; path=/`, wiping the client's stickiness for every other pool using \
             {name}; lb leaves the client's cookie alone when the server has no value. To silence \
             this: `cookie: false` on the pool, or give every backend a `cookie` value",
            missing.join(", ")
        )),
        mode => say(format!(
            "cookie {name} (mode {mode}{from}) but backends without a `cookie` value ({}): their \
             responses' {name} passes unchanged, so no client is pinned to them; give every \
             backend a value, or `cookie: false` on the pool",
            missing.join(", ")
        )),
    }
    if !pool.proxy.redispatch {
        let unchecked = if pool.check.is_none() {
            "; this pool has no `check`, so until the client drops its cookie"
        } else {
            ""
        };
        say(format!(
            "cookie {name} without `redispatch`: a client pinned to a server that stops answering \
             gets 503 (after `retries`) until health checks mark it down{unchecked}; \
             `redispatch: true` (HAProxy `option redispatch`) sends it to another server"
        ));
    }
}

/// A TCP frontend reads no request: HAProxy warns and falls back too.
fn tcp_warnings(pool: &PoolConfig, pool_at: &YamlPath, f: &FrontendConfig, p: &mut Problems) {
    if pool.proxy.balance.reads_request() {
        p.warning_at_key(
            pool_at,
            format!(
                "balance {} reads HTTP requests, which tcp frontend `{}` does not parse: its \
                 connections are balanced round robin",
                pool.proxy.balance, f.name
            ),
        );
    }
    if pool.proxy.cookie.is_some() {
        p.warning_at_key(
            pool_at,
            format!(
                "the cookie of pool `{}` is ignored for tcp frontend `{}`",
                pool.name, f.name
            ),
        );
    }
}

/// L7 settings on a pool no frontend uses: the data path ignores them.
fn unused_settings(pool: &PoolConfig, pool_at: &YamlPath, cx: &Context, p: &mut Problems) {
    let maxconn = pool.backends.iter().any(|b| b.proxy.maxconn.is_some());
    if pool.proxy != cx.proxy.defaults.pool || maxconn {
        p.warning_at_key(
            pool_at,
            format!(
                "pool `{}` has L7 settings (balance, cookie, retries, timeouts, maxconn…) but no \
                 frontend uses it: L4 services ignore them",
                pool.name
            ),
        );
    }
}
