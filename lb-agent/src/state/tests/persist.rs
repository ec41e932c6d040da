//! The overrides file: round trip, atomic replacement, modes, refusals.

use std::error::Error;
use std::os::unix::fs::PermissionsExt;

use super::*;
use lb_config::AdminState::Drain;

fn sample() -> Overrides {
    let file = file();
    let mut ov = Overrides::default();
    set_state(&mut ov, &file, "web", "b1", Drain).expect("drain");
    add_vip(&mut ov, &file, vip_req(Some("api"), "10.0.0.5", 443)).expect("add");
    remove_vip(&mut ov, &file, DNS).expect("remove");
    ov
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
    assert_eq!(text, "{\n  \"version\": 1\n}\n");
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
            "{\"version\": 1,",
            "EOF while parsing a value at line 1 column 14",
        ),
        (
            "not JSON",
            "version = 1",
            "expected value at line 1 column 1",
        ),
        ("empty", "", "EOF while parsing a value"),
        ("no version", "{}", "missing field `version`"),
        (
            "newer version",
            "{\"version\": 2}",
            "unsupported format version 2 (this lb-ctl reads version 1)",
        ),
        (
            "unknown key",
            "{\"version\": 1, \"vips\": []}",
            "unknown field `vips`",
        ),
        (
            "bad state",
            "{\"version\": 1, \"backend_overrides\": {\"web\": {\"b1\": {\"state\": \"down\"}}}}",
            "unknown variant `down`",
        ),
        (
            "bad MAC",
            r#"{"version": 1, "added_backends": {"web": [{"name": "x", "address": "10.0.1.9", "weight": 1, "state": "up", "mac": "zz"}]}}"#,
            "`zz` is not a MAC address",
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
