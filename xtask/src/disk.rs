//! Free space where the build goes. A cold `cargo xtask test` writes about 3.2 GiB under
//! `target/` (measured on a fresh clone); running out mid-build ends in a rustc I/O error that
//! says nothing about the cause, so the test command looks first and says what to do.

use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use crate::process::say;

/// What a cold build of every test binary needs, with some room.
const COLD_BUILD: u64 = 4 << 30;

/// Warns when the file system holding `dir` has less free space than a cold build needs.
pub fn warn_if_low(dir: &Path) {
    let Some(free) = free_bytes(dir) else {
        return;
    };
    if free < COLD_BUILD {
        say(format!(
            "only {:.1} GiB free on the file system of {}; a build from scratch needs about \
             4 GiB and fails with \"No space left on device\" otherwise. Free some space \
             (`cargo clean` drops every stale build under target/)",
            free as f64 / f64::from(1 << 30),
            dir.display()
        ));
    }
}

/// Bytes an unprivileged writer may still use on the file system of `dir`, if it exists.
fn free_bytes(dir: &Path) -> Option<u64> {
    let path = CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stat` is a valid, writable statvfs.
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some(stat.f_bavail * stat.f_frsize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_has_a_measurable_file_system_and_a_missing_path_has_none() {
        assert!(free_bytes(crate::workspace_root()).is_some_and(|b| b > 0));
        assert_eq!(free_bytes(Path::new("/nonexistent/lb/xtask")), None);
    }
}
