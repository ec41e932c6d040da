//! The shipped example configuration parses cleanly: no errors, no warnings.

use std::path::Path;

use lb_config::proxy::CookieMode;
use lb_config::{self as config, AdminState, HashMode, RingSize};

#[test]
fn example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/lb.yaml");
    let checked = config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        checked.warnings.is_empty(),
        "warnings in {}:\n{:#?}",
        path.display(),
        checked.warnings
    );
    let c = &checked.config;
    assert_eq!(c.interfaces.len(), 2);
    let names: Vec<&str> = c.services.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["web", "web-tls"]);
    let web = &c.services[0];
    assert_eq!(web.key().to_string(), "192.168.60.88:80/tcp");
    assert_eq!(
        (web.hash, web.ring_size),
        (HashMode::Source, RingSize::Auto)
    );
    assert!(c.services.iter().all(|s| s.pool == "web"));
    let pool = c.pool("web").expect("pool web");
    assert!(pool.backends.iter().all(|b| b.weight == 6));
    assert_eq!(
        pool.backend("web2").map(|b| b.state),
        Some(AdminState::Drain)
    );
    // The seed's `frontend main`: static files to `static`, the rest to the
    // web servers, which set the SERVERID cookie.
    let [main] = &c.frontends[..] else {
        panic!("one frontend: {:?}", c.frontends)
    };
    assert_eq!(main.pools(), ["static", "web_http"]);
    assert_eq!(main.acls[0].tests.len(), 2);
    let cookie = c.pool("web_http").and_then(|p| p.proxy.cookie.as_ref());
    assert_eq!(
        cookie.map(|c| (c.name.as_str(), c.mode)),
        Some(("SERVERID", CookieMode::Insert))
    );
    assert_eq!(c.proxy.maxconn, 4000);
}
