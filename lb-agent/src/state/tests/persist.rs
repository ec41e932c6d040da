//! The overrides file: round trip, atomic replacement, modes, refusals.

use std::error::Error;
use std::os::unix::fs::PermissionsExt;

use super::*;
use lb_config::AdminState::Drain;

fn sample() -> Overrides {
    let mut l = Live::new(file());
    l.set_state("web", "b1", Drain).expect("drain");
    l.add_pool(pool_req("api", vec![backend_req(Some("a1"), "10.0.5.1")]))
        .expect("add pool");
    l.add_service(service_req(Some("api"), "10.0.0.5", 443, "api"))
        .expect("add service");
    l.add_backend("web", backend_req(None, "10.0.1.9"))
        .expect("add backend");
    l.remove_backend("web", "10.0.1.3").expect("remove backend");
    l.remove_service(DNS).expect("remove service");
    l.remove_pool("dns").expect("remove pool");
    l.ov
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

/// The error and its causes, as the CLI prints them.
fn chain(e: &dyn Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

#[test]
fn missing_file_is_no_overrides() {
    let dir = TempDir::new("missing");
    let ov = load(&dir.path().join(FILE_NAME)).expect("load");
    assert!(ov.is_empty());
}

#[test]
fn save_then_load_round_trips_atomically() {
    let dir = TempDir::new("roundtrip");
    let state_dir = dir.path().join("var/lib/lb");
    let path = state_dir.join(FILE_NAME);
    let ov = sample();
    save(&path, &ov).expect("save");
    assert_eq!(load(&path).expect("load"), ov);
    assert_eq!(mode(&state_dir), 0o700, "created directory");
    assert_eq!(mode(&path), 0o600);

    // Replacing it keeps the mode and leaves nothing else behind.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    save(&path, &Overrides::default()).expect("save again");
    assert!(load(&path).expect("load").is_empty());
    assert_eq!(mode(&path), 0o600);
    let names: Vec<String> = std::fs::read_dir(&state_dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [FILE_NAME], "no temp file left");
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text, "{\n  \"version\": 2\n}\n");
}

#[test]
fn an_existing_directory_keeps_its_mode() {
    let dir = TempDir::new("existing");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o750)).expect("chmod");
    save(&dir.path().join(FILE_NAME), &sample()).expect("save");
    assert_eq!(mode(dir.path()), 0o750);
}

#[test]
fn unreadable_contents_are_refused_with_the_path_and_the_reason() {
    let cases = [
        (
            "truncated",
            "{\"version\": 2,",
            "EOF while parsing a value at line 1 column 14",
        ),
        (
            "not JSON",
            "version = 2",
            "expected value at line 1 column 1",
        ),
        ("empty", "", "EOF while parsing a value"),
        ("no version", "{}", "missing field `version`"),
        (
            "newer version",
            "{\"version\": 3}",
            "unsupported format version 3 (this lb-ctl reads version 2",
        ),
        (
            "a key of version 1",
            "{\"version\": 2, \"added_vips\": []}",
            "unknown field `added_vips`",
        ),
        (
            "bad state",
            "{\"version\": 2, \"backend_overrides\": {\"web\": {\"b1\": {\"state\": \"down\"}}}}",
            "unknown variant `down`",
        ),
        (
            "bad MAC",
            r#"{"version": 2, "added_backends": {"web": [{"name": "x", "address": "10.0.1.9", "weight": 1, "state": "up", "mac": "zz"}]}}"#,
            "`zz` is not a MAC address",
        ),
        (
            "a pool without a name",
            r#"{"version": 2, "added_pools": [{"backends": []}]}"#,
            "missing field `name`",
        ),
        (
            "a service without a pool",
            r#"{"version": 2, "added_services": [{"name": "s", "address": "10.0.0.5", "port": 80, "protocol": "tcp", "mode": "dr", "hash": "source", "ring_size": "auto"}]}"#,
            "missing field `pool`",
        ),
    ];
    let dir = TempDir::new("corrupt");
    let path = dir.path().join(FILE_NAME);
    for (desc, text, want) in cases {
        std::fs::write(&path, text).expect("write");
        let e = load(&path).expect_err(desc);
        assert!(matches!(e, StateError::Corrupt { .. }), "{desc}: {e:?}");
        let msg = chain(&e);
        assert!(msg.contains(&path.display().to_string()), "{desc}: {msg}");
        assert!(msg.contains(want), "{desc}: {msg}");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            text,
            "{desc}: left as is"
        );
    }
}

#[test]
fn io_errors_name_the_operation_and_the_path() {
    let dir = TempDir::new("io");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").expect("write");
    let path = blocker.join(FILE_NAME);
    let e = save(&path, &sample()).expect_err("parent is a file");
    assert!(
        matches!(&e, StateError::Io { op: "create directory", path: p, .. } if *p == blocker),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("cannot create directory {}", blocker.display())
    );
    let e = load(&path).expect_err("parent is a file");
    assert!(matches!(e, StateError::Io { op: "read", .. }), "{e:?}");
    // A directory where the file should be: the temp file is cleaned up.
    let path = dir.path().join("taken");
    std::fs::create_dir(&path).expect("mkdir");
    std::fs::write(path.join("x"), "").expect("write");
    let e = save(&path, &sample()).expect_err("target is a directory");
    assert!(matches!(e, StateError::Io { op: "replace", .. }), "{e:?}");
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["not-a-dir", "taken"]);
}

/// A file written by an agent of configuration schema v1 keyed its changes
/// by VIP: it is refused, and the message says what to do.
#[test]
fn a_version_1_file_is_refused_with_what_to_do() {
    let dir = TempDir::new("v1");
    let path = dir.path().join(FILE_NAME);
    let v1 = r#"{
  "version": 1,
  "backend_overrides": {"web": {"b1": {"state": "drain"}}},
  "added_vips": [{"name": "api", "address": "10.0.0.5", "port": 443, "protocol": "tcp",
                  "mode": "dr", "hash": "source", "backends": []}],
  "removed_vips": ["10.0.0.2:53/udp"]
}
"#;
    std::fs::write(&path, v1).expect("write");
    let e = load(&path).expect_err("version 1");
    assert!(matches!(e, StateError::Corrupt { .. }), "{e:?}");
    let msg = chain(&e);
    for want in [
        path.display().to_string().as_str(),
        "move it aside to drop every runtime change",
        "unsupported format version 1 (this lb-ctl reads version 2; version 1 keyed changes by \
         VIP, before pools: move the file aside and make the changes again)",
    ] {
        assert!(msg.contains(want), "`{want}` not in: {msg}");
    }
    assert_eq!(
        std::fs::read_to_string(&path).expect("read"),
        v1,
        "left as is"
    );
}

/// A hand-edited file may hold empty entries: they change nothing, and are
/// dropped on load so that equal overrides compare equal.
#[test]
fn empty_entries_are_dropped_on_load() {
    let dir = TempDir::new("normalize");
    let path = dir.path().join(FILE_NAME);
    let text = r#"{"version": 2,
        "backend_overrides": {"web": {"b1": {}}, "dns": {}},
        "added_backends": {"web": []},
        "removed_backends": {"web": []},
        "removed_pools": [], "added_pools": [], "added_services": [], "removed_services": []}"#;
    std::fs::write(&path, text).expect("write");
    let ov = load(&path).expect("load");
    assert!(ov.is_empty(), "{ov:?}");
    assert_eq!(ov, Overrides::default());

    // Non-empty entries next to empty ones are kept.
    let text = r#"{"version": 2,
        "backend_overrides": {"web": {"b1": {}, "b2": {"weight": 3}}},
        "removed_backends": {"web": ["10.0.1.3"], "dns": []}}"#;
    std::fs::write(&path, text).expect("write");
    let ov = load(&path).expect("load");
    let mut l = Live::new(file());
    l.set_weight("web", "b2", 3).expect("weight");
    l.remove_backend("web", "10.0.1.3").expect("remove");
    assert_eq!(ov, l.ov);
    save(&path, &ov).expect("save");
    assert_eq!(load(&path).expect("load"), ov);
}

#[test]
fn the_writer_leaves_the_newest_version_on_disk_when_finished() {
    let dir = TempDir::new("writer");
    let path = dir.path().join("state").join(FILE_NAME);
    let mut w = Writer::spawn(path.clone()).unwrap();
    let mut last = Overrides::default();
    for i in 0..50 {
        let mut ov = Overrides::default();
        ov.removed_pools.insert(format!("p{i}"));
        w.save(ov.clone());
        last = ov;
    }
    w.finish();
    assert_eq!(load(&path).unwrap(), last);
}
