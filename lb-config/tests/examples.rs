//! The shipped example configuration parses cleanly: no errors, no warnings.

use std::path::Path;

use lb_config::{self as config, AdminState, HashMode};

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
    let names: Vec<&str> = c.vips.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["web", "web-tls"]);
    let web = &c.vips[0];
    assert_eq!(web.key().to_string(), "192.168.60.88:80/tcp");
    assert_eq!(web.hash, HashMode::Source);
    assert!(
        web.backends
            .iter()
            .all(|b| b.weight == 6 && b.state == AdminState::Up)
    );
    assert_eq!(c.vips[1].backends[1].state, AdminState::Drain);
}
