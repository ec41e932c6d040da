//! The L7 proxy in the file: the seed's haproxy.cfg translated, defaults
//! and inheritance, binds, balance, and the warnings for what HAProxy
//! accepts silently. ACL lines and conditions are in `acl`, errors in
//! `proxy_errors`.

use std::time::Duration;

use super::ok;
use crate::proxy::*;
use crate::*;

/// The seed's haproxy.cfg (defaults, `frontend main`, `backend static`,
/// `backend web`), translated line by line as docs/proxy.md does.
pub(super) const SEED: &str = "\
proxy:
  maxconn: 4000
  defaults:
    maxconn: 3000
    retries: 3
    timeout: {http_request: 10s, connect: 10s, client: 1m, server: 1m, http_keep_alive: 10s, queue: 1m}
    forwardfor: {except: 127.0.0.0/8}
    cookie: SERVERID
    redispatch: true
    abortonclose: true
    http_server_close: true
health: {timeout: 10s}
frontends:
  main:
    bind: '*:80'
    acl:
      url_static:
        - path_beg -i /static /images /javascript /stylesheets
        - path_end -i .jpg .gif .png .css .js
    use_backend:
      - static if url_static
    default_backend: web
pools:
  static:
    balance: roundrobin
    check: {type: http, path: /index.php}
    backends:
      - {name: static, address: 127.0.0.1, port: 4331}
  web:
    balance: roundrobin
    check: {type: http, path: /index.php, inter: 2s, rise: 2, fall: 3}
    backends:
      - {name: web1, address: 192.168.31.66, port: 80, cookie: server1, weight: 6}
      - {name: web2, address: 192.168.31.55, port: 80, cookie: server2, weight: 6}
";

fn warnings(c: &Checked) -> Vec<String> {
    c.warnings.iter().map(ToString::to_string).collect()
}

fn seed_pool_l7() -> PoolL7 {
    PoolL7 {
        cookie: Some(CookieConfig {
            name: "SERVERID".into(),
            mode: CookieMode::Read,
            indirect: false,
            nocache: false,
            httponly: false,
            secure: false,
        }),
        redispatch: true,
        abortonclose: true,
        http_server_close: true,
        ..PoolL7::default()
    }
}

fn test(fetch: Fetch, matcher: Matcher, values: &[&str], at: &str) -> AclTest {
    AclTest {
        fetch,
        matcher,
        ignore_case: true,
        values: values.iter().map(|v| (*v).to_owned()).collect(),
        at: at.into(),
    }
}

#[test]
fn the_seeds_haproxy_cfg_builds_the_model_haproxy_would_run() {
    let c = ok(SEED);
    let proxy = &c.config.proxy;
    assert_eq!((proxy.maxconn, proxy.defaults.maxconn), (4000, 3000));
    assert_eq!(proxy.defaults.pool, seed_pool_l7());
    let forwardfor = ForwardFor {
        except: Some("127.0.0.0/8".parse().expect("net")),
        header: "X-Forwarded-For".into(),
    };
    assert_eq!(proxy.defaults.forwardfor, Some(forwardfor.clone()));
    let main = FrontendConfig {
        name: "main".into(),
        binds: vec!["*:80".parse().expect("bind")],
        mode: ProxyMode::Http,
        maxconn: 3000,
        timeouts: Timeouts::default(),
        acls: vec![Acl {
            name: "url_static".into(),
            tests: vec![
                test(
                    Fetch::Path,
                    Matcher::Beg,
                    &["/static", "/images", "/javascript", "/stylesheets"],
                    "t.yaml:18:11",
                ),
                test(
                    Fetch::Path,
                    Matcher::End,
                    &[".jpg", ".gif", ".png", ".css", ".js"],
                    "t.yaml:19:11",
                ),
            ],
        }],
        http_request: vec![],
        use_backend: vec![UseBackend {
            pool: "static".into(),
            cond: Some(Condition {
                unless: false,
                any: vec![vec![AclRef {
                    negated: false,
                    acl: AclUse::Named(0),
                }]],
            }),
        }],
        default_backend: Some("web".into()),
        forwardfor: Some(forwardfor),
        forwarded_proto: false,
        http_server_close: true,
        reject: Default::default(),
        log: Default::default(),
    };
    assert_eq!(c.config.frontends, vec![main]);
    for pool in &c.config.pools {
        assert_eq!(pool.proxy, seed_pool_l7(), "{}", pool.name);
    }
    let web = c.config.pool("web").expect("web");
    let cookies: Vec<_> = web
        .backends
        .iter()
        .map(|b| b.proxy.cookie.as_deref())
        .collect();
    assert_eq!(cookies, [Some("server1"), Some("server2")]);
    assert_eq!(c.config.frontends[0].pools(), ["static", "web"]);
    // The seed's trap: a bare `cookie SERVERID` never sets the cookie.
    assert_eq!(
        warnings(&c),
        [
            "t.yaml:24:3: warning: pool `static`: cookie SERVERID (mode read, inherited from proxy.defaults) is only read, never set: persistence works only if the application sets SERVERID=<server cookie>; use mode: insert to have lb set it",
            "t.yaml:29:3: warning: pool `web`: cookie SERVERID (mode read, inherited from proxy.defaults) is only read, never set: persistence works only if the application sets SERVERID=<server cookie>; use mode: insert to have lb set it",
        ]
    );
    assert_eq!(rules::check_config(&c.config), Vec::<String>::new());
}

/// With `cookie SERVERID insert`, `backend static` inherits the cookie and
/// its server has no value: HAProxy expires the client's cookie on every
/// static response.
#[test]
fn an_inserted_cookie_on_a_server_without_value_is_the_seeds_other_trap() {
    let text = SEED.replace(
        "cookie: SERVERID",
        "cookie: {name: SERVERID, mode: insert, indirect: true, nocache: true}",
    );
    let c = ok(&text);
    let w = warnings(&c);
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(w[0].starts_with("t.yaml:24:3: warning: pool `static`: cookie SERVERID (mode insert, inherited from proxy.defaults) but backends without a `cookie` value (static): HAProxy would answer their responses with `Set-Cookie: SERVERID=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/`"), "{}", w[0]);
    assert!(w[0].ends_with(
        "To silence this: `cookie: false` on the pool, or give every backend a `cookie` value"
    ));
    // `cookie: false` on the pool silences it and turns the cookie off there.
    let quiet = text.replace("  static:\n", "  static:\n    cookie: false\n");
    let c = ok(&quiet);
    assert_eq!(warnings(&c), Vec::<String>::new());
    assert_eq!(c.config.pool("static").expect("static").proxy.cookie, None);
    let web = c.config.pool("web").expect("web");
    assert_eq!(
        web.proxy
            .cookie
            .as_ref()
            .map(|c| (c.mode, c.indirect, c.nocache)),
        Some((CookieMode::Insert, true, true))
    );
}

#[test]
fn defaults_apply_when_nothing_is_written() {
    let c = ok(
        "frontends:\n  f: {bind: ':8080', default_backend: p}\npools:\n  p: {backends: [{address: 10.0.1.1, port: 80}]}\n",
    );
    assert_eq!(c.config.proxy, ProxyConfig::default());
    let f = &c.config.frontends[0];
    assert_eq!(
        (
            f.mode,
            f.maxconn,
            f.timeouts,
            f.forwardfor.clone(),
            f.forwarded_proto,
            f.http_server_close
        ),
        (
            ProxyMode::Http,
            DEFAULT_FRONTEND_MAXCONN,
            Timeouts::default(),
            None,
            false,
            false
        )
    );
    assert_eq!(
        f.binds,
        [Bind {
            addr: "0.0.0.0:8080".parse().expect("addr"),
            v6only: false
        }]
    );
    assert_eq!(c.config.pools[0].proxy, PoolL7::default());
    assert_eq!(c.config.pools[0].backends[0].proxy, BackendL7::default());
    // A configuration of frontends alone warns about nothing.
    assert_eq!(warnings(&c), Vec::<String>::new());
    let d = Timeouts::default();
    assert_eq!(
        (
            d.http_request,
            d.http_keep_alive,
            d.client,
            d.connect,
            d.server,
            d.queue
        ),
        (
            Duration::from_secs(10),
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_secs(60)
        )
    );
}

#[test]
fn frontends_and_pools_inherit_from_defaults_and_override_it() {
    let text = "\
proxy:
  defaults:
    maxconn: 100
    timeout: {client: 5s, connect: 2s, queue: 3s}
    forwardfor: true
    forwarded_proto: true
    balance: leastconn
    cookie: {name: SRV, mode: insert}
    retries: 1
    redispatch: true
frontends:
  a:
    bind: '*:8080'
    default_backend: own
  b:
    bind: '*:8081'
    maxconn: 50
    timeout: {client: 7s, http_request: 1s}
    forwardfor: {header: X-Client, except: 10.0.0.0/8}
    forwarded_proto: false
    http_server_close: true
    default_backend: inherits
pools:
  own:
    balance: url_param(id)
    hash_type: consistent
    cookie: false
    retries: 0
    redispatch: false
    abortonclose: true
    timeout: {server: 9s}
    backends: [{address: 10.0.1.1, port: 80, maxconn: 10}]
  inherits:
    backends: [{address: 10.0.1.2, port: 80, cookie: s1}]
";
    let c = ok(text).config;
    let [a, b] = &c.frontends[..] else {
        panic!("{:?}", c.frontends)
    };
    assert_eq!(
        (a.maxconn, a.timeouts.client, a.timeouts.http_request),
        (100, Duration::from_secs(5), Duration::from_secs(10))
    );
    assert_eq!(
        a.forwardfor,
        Some(ForwardFor {
            except: None,
            header: DEFAULT_FORWARDFOR_HEADER.into()
        })
    );
    assert!(a.forwarded_proto && !a.http_server_close);
    assert_eq!(
        (b.maxconn, b.timeouts.client, b.timeouts.http_request),
        (50, Duration::from_secs(7), Duration::from_secs(1))
    );
    assert_eq!(
        b.forwardfor,
        Some(ForwardFor {
            except: Some("10.0.0.0/8".parse().expect("net")),
            header: "X-Client".into()
        })
    );
    assert!(!b.forwarded_proto && b.http_server_close);
    let own = &c.pool("own").expect("own").proxy;
    assert_eq!(
        (
            own.balance.clone(),
            own.hash_type,
            own.cookie.clone(),
            own.retries,
            own.redispatch,
            own.abortonclose
        ),
        (
            Balance::UrlParam("id".into()),
            HashType::Consistent,
            None,
            0,
            false,
            true
        )
    );
    assert_eq!(
        (
            own.timeouts.server,
            own.timeouts.connect,
            own.timeouts.queue
        ),
        (
            Duration::from_secs(9),
            Duration::from_secs(2),
            Duration::from_secs(3)
        )
    );
    assert_eq!(
        c.pool("own").expect("own").backends[0].proxy.maxconn,
        Some(10)
    );
    let inherits = &c.pool("inherits").expect("inherits").proxy;
    assert_eq!(inherits, &c.proxy.defaults.pool);
    assert_eq!(inherits.balance, Balance::LeastConn);
    assert_eq!(pool_defaults(&c), c.proxy.defaults.pool);
}

#[test]
fn binds_take_haproxys_forms() {
    let cases: &[(&str, &str, bool)] = &[
        ("*:80", "0.0.0.0:80", false),
        (":80", "0.0.0.0:80", false),
        ("0.0.0.0:80", "0.0.0.0:80", false),
        ("[::]:80", "[::]:80", true),
        ("192.0.2.1:8080", "192.0.2.1:8080", false),
        ("[2001:db8::1]:443", "[2001:db8::1]:443", true),
        ("127.0.0.1:65535", "127.0.0.1:65535", false),
    ];
    for (text, addr, v6only) in cases {
        let b: Bind = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(
            (b.addr, b.v6only),
            (addr.parse().expect("addr"), *v6only),
            "{text}"
        );
        assert_eq!(
            b.to_string().parse::<Bind>(),
            Ok(b),
            "{text} displays as {b}"
        );
    }
    assert_eq!(
        "*:80".parse::<Bind>().map(|b| b.to_string()),
        Ok("*:80".to_owned())
    );
    let any4: Bind = "*:80".parse().expect("bind");
    assert!(any4.overlaps("10.0.0.1:80".parse().expect("addr")));
    assert!(!any4.overlaps("10.0.0.1:81".parse().expect("addr")));
    assert!(
        !any4.overlaps("[::]:80".parse().expect("addr")),
        "v6only: IPv4 and IPv6 wildcards coexist"
    );
    let one: Bind = "10.0.0.1:80".parse().expect("bind");
    assert!(!one.overlaps("10.0.0.2:80".parse().expect("addr")));
}

#[test]
fn balance_is_spelled_as_in_the_file_everywhere() {
    let cases: &[(&str, Balance, &str)] = &[
        ("roundrobin", Balance::RoundRobin, "roundrobin"),
        ("static-rr", Balance::StaticRr, "static-rr"),
        ("leastconn", Balance::LeastConn, "leastconn"),
        ("source", Balance::Source, "source"),
        ("uri", Balance::Uri, "uri"),
        (
            "url_param(userid)",
            Balance::UrlParam("userid".into()),
            "url_param(userid)",
        ),
        (
            "url_param userid",
            Balance::UrlParam("userid".into()),
            "url_param(userid)",
        ),
        ("hdr(Host)", Balance::Hdr("host".into()), "hdr(host)"),
    ];
    for (text, want, shown) in cases {
        let b: Balance = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(&b, want, "{text}");
        assert_eq!(b.to_string(), *shown);
        let json = serde_json::to_value(&b).expect("json");
        assert_eq!(json, serde_json::json!(shown));
        assert_eq!(serde_json::from_value::<Balance>(json).expect("back"), b);
    }
    assert!(Balance::Source.hashes() && !Balance::Source.reads_request());
    assert!(Balance::Hdr("x".into()).reads_request() && !Balance::LeastConn.hashes());
    // A pool's L7 settings survive the agent's persistence (JSON) as they are.
    let l7 = seed_pool_l7();
    let back: PoolL7 =
        serde_json::from_value(serde_json::to_value(&l7).expect("json")).expect("back");
    assert_eq!(back, l7);
}

#[test]
fn networks_are_checked_and_written_in_full() {
    assert_eq!(
        "10.0.0.0/8".parse::<IpNet>().map(|n| n.to_string()),
        Ok("10.0.0.0/8".into())
    );
    assert_eq!(
        "::1".parse::<IpNet>().map(|n| n.to_string()),
        Ok("::1/128".into())
    );
    let e = "10.0.0.1/8".parse::<IpNet>().expect_err("host bits");
    assert_eq!(
        e,
        "`10.0.0.1/8` has bits set past /8: write 10.0.0.0/8 (HAProxy clears them silently)"
    );
    assert!("::ffff:10.0.0.0/104".parse::<IpNet>().is_err());
    let net = IpNet::truncate("2001:db8::1".parse().expect("ip"), 32).expect("net");
    assert_eq!(net.to_string(), "2001:db8::/32");
    assert_eq!(IpNet::truncate("10.1.2.3".parse().expect("ip"), 33), None);
}

/// Everything HAProxy takes without a word that lb warns about.
#[test]
fn silent_traps_are_warned_at_their_place() {
    let text = "\
proxy:
  maxconn: 100
frontends:
  main:
    bind: '*:8080'
    maxconn: 200
    acl:
      unused: path /x
      METH_GET: method GET
      src_i: src -i 10.0.0.0/8
      late_flag: path_beg /a -i /b
      found: hdr(x) -m found y
      lower: method get
    http_request:
      - allow if METH_GET src_i late_flag found lower
      - deny
      - deny deny_status 429
    use_backend:
      - c if TRUE
      - a
    default_backend: a
  nodefault:
    bind: '*:8081'
    use_backend:
      - a if { path_beg /a }
  db:
    mode: tcp
    bind: '*:3306'
    default_backend: b
pools:
  a:
    cookie: {name: S, mode: rewrite, nocache: true, httponly: true, secure: true}
    redispatch: true
    backends: [{name: a1, address: 10.0.1.1, port: 80, cookie: x}, {name: a2, address: 10.0.1.2, port: 80}]
  b:
    balance: hdr(x)
    cookie: {name: S, mode: prefix, indirect: true}
    redispatch: true
    backends: [{name: b1, address: 10.0.2.1, port: 3306, cookie: x}]
  c:
    hash_type: consistent
    cookie: {name: S, mode: insert}
    backends: [{name: c1, address: 10.0.3.1, port: 80, cookie: c1}]
  d:
    balance: source
    backends: [{name: d1, address: 10.0.4.1, cookie: d1}]
";
    let c = ok(text);
    let want = [
        "t.yaml:6:14: warning: maxconn 200 is more than proxy.maxconn 100 (all frontends together): that limit comes first",
        "t.yaml:8:7: warning: ACL `unused` is used by no rule",
        "t.yaml:9:7: warning: ACL `METH_GET` replaces HAProxy's predefined one of that name in this frontend",
        "t.yaml:10:14: warning: `-i` means nothing to `src` (an address) and is ignored",
        "t.yaml:11:30: warning: `-i` after a value is matched as the value `-i`, not a flag; put flags before the first value (or `--` first to mean the value)",
        "t.yaml:12:30: warning: values after `-m found` are ignored: it only tests presence",
        "t.yaml:13:21: warning: methods are case-sensitive: `get` matches only a request sent with `get`, never GET (HAProxy never matches GET with it, even with -i); write GET",
        "t.yaml:17:9: warning: this http_request rule is never reached: the one at line 16 applies to every request",
        "t.yaml:20:9: warning: this use_backend rule is never reached: the one at line 19 applies to every request",
        "t.yaml:21:22: warning: default_backend is never used: the use_backend rule at line 19 applies to every request",
        "t.yaml:22:3: warning: frontend `nodefault` has no default_backend: a request no use_backend rule takes is answered 503",
        "t.yaml:32:13: warning: pool `a`: cookie S (mode rewrite) but backends without a `cookie` value (a2): their responses' S passes unchanged, so no client is pinned to them; give every backend a value, or `cookie: false` on the pool",
        "t.yaml:32:47: warning: `nocache` applies to a cookie lb inserts: it does nothing with mode rewrite",
        "t.yaml:32:63: warning: `httponly` applies to a cookie lb inserts: it does nothing with mode rewrite",
        "t.yaml:32:77: warning: `secure` applies to a cookie lb inserts: it does nothing with mode rewrite",
        "t.yaml:35:3: warning: balance hdr(x) reads HTTP requests, which tcp frontend `db` does not parse: its connections are balanced round robin",
        "t.yaml:35:3: warning: the cookie of pool `b` is ignored for tcp frontend `db`",
        "t.yaml:37:47: warning: `indirect` with mode prefix keeps the server's own cookie updates from reaching clients (HAProxy's manual advises against it)",
        "t.yaml:41:16: warning: hash_type consistent has no effect with balance roundrobin: only hash balances use it",
        "t.yaml:42:13: warning: pool `c`: cookie S without `redispatch`: a client pinned to a server that stops answering gets 503 (after `retries`) until health checks mark it down; this pool has no `check`, so until the client drops its cookie; `redispatch: true` (HAProxy `option redispatch`) sends it to another server",
        "t.yaml:44:3: warning: pool `d` is used by no service or frontend",
        "t.yaml:44:3: warning: pool `d` has L7 settings (balance, cookie, retries, timeouts, maxconn…) but no frontend uses it: L4 services ignore them",
        "t.yaml:46:54: warning: cookie `d1` of backend `d1` is ignored: pool `d` has no cookie (set `cookie:` on the pool, or remove the value)",
    ];
    let mut got = warnings(&c);
    let mut want: Vec<String> = want.iter().map(|w| (*w).to_owned()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_pool_shared_by_a_dr_service_and_a_frontend_suits_both() {
    let text = "\
interfaces: [{name: eth0}]
pools:
  web:
    backends: [{name: w1, address: 10.0.1.1, port: 80}]
services:
  - {name: http, address: 10.0.0.1, port: 80, pool: web}
frontends:
  main: {bind: '10.0.0.2:80', default_backend: web}
";
    let c = ok(text);
    assert_eq!(warnings(&c), Vec::<String>::new());
    assert_eq!(c.config.frontends[0].pools(), ["web"]);
    // At runtime, a backend added without a port would break the frontend.
    let mut config = c.config;
    let mut b = config.pools[0].backends[0].clone();
    b.name = "w2".into();
    b.address = "10.0.1.2".parse().expect("ip");
    b.port = None;
    config.pools[0].backends.push(b);
    assert_eq!(
        rules::check_config(&config),
        ["backend `w2` of pool `web` needs a `port`: frontend `main` connects to address:port"]
    );
}

#[test]
fn a_frontend_may_listen_beside_a_service_on_other_addresses() {
    let text = "\
interfaces: [{name: eth0}]
pools:
  web:
    backends: [{name: w1, address: 10.0.1.1, port: 80}]
services:
  - {name: http, address: 10.0.0.1, port: 80, pool: web}
frontends:
  main: {bind: ['*:80', '[::]:80'], default_backend: web}
";
    let c = ok(text);
    assert_eq!(
        warnings(&c),
        [
            "t.yaml:8:17: warning: connections to 10.0.0.1:80 go to service `http` in the data path, not to this frontend (`*:80` gets the other addresses)"
        ]
    );
}
