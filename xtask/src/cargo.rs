//! The `cargo` commands xtask starts: on the host, and for lb-ebpf on its BPF target, all with
//! the eBPF toolchain on `PATH`.

use std::{env, path::Path, process::Command};

use anyhow::Result;

use crate::{toolchain::cargo_env_path, workspace_root};

include!("ebpf_cargo.rs");

/// Where `cargo xtask` builds lb-ebpf (apart from host builds, so neither invalidates the
/// other; lb-dataplane's build script uses its own `OUT_DIR`).
pub const EBPF_TARGET_DIR: &str = "target/ebpf";

/// `cargo` (the default toolchain) in the workspace root, with [`cargo_env_path`].
pub fn host() -> Result<Command> {
    let mut cmd = Command::new("cargo");
    // `cargo xtask` sets CARGO_MANIFEST_DIR (xtask's) for us; passed on, it
    // changes the environment build scripts see, so crates that read it
    // (ring, ...) would rebuild whenever a plain `cargo build` and an
    // xtask build alternate.
    cmd.current_dir(workspace_root())
        .env("PATH", cargo_env_path()?)
        .env_remove("CARGO_MANIFEST_DIR");
    Ok(cmd)
}

/// `rustup run nightly cargo <subcommand>` for lb-ebpf on its BPF target, exactly as
/// lb-dataplane's build script builds it (`ebpf_cargo.rs`), so both see the same code.
pub fn ebpf(subcommand: &str) -> Result<Command> {
    let endian = if cfg!(target_endian = "big") {
        "big"
    } else {
        "little"
    };
    let mut cmd = ebpf_command(
        subcommand,
        endian,
        env::consts::ARCH,
        Path::new(EBPF_TARGET_DIR),
    );
    // `cargo xtask` sets CARGO_MANIFEST_DIR (xtask's) for us; passed on, it
    // changes the environment build scripts see, so crates that read it
    // (ring, ...) would rebuild whenever a plain `cargo build` and an
    // xtask build alternate.
    cmd.current_dir(workspace_root())
        .env("PATH", cargo_env_path()?)
        .env_remove("CARGO_MANIFEST_DIR");
    Ok(cmd)
}

/// The BPF target with the host's byte order.
pub fn bpf_target() -> &'static str {
    ebpf_target(if cfg!(target_endian = "big") {
        "big"
    } else {
        "little"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_flags_select_isa_v4_and_btf() {
        let cmd = ebpf("build").expect("ebpf command");
        let flags = cmd
            .get_envs()
            .find(|(key, _)| *key == "CARGO_ENCODED_RUSTFLAGS")
            .and_then(|(_, value)| value)
            .expect("CARGO_ENCODED_RUSTFLAGS is set");
        let expected = format!(
            "--cfg=bpf_target_arch=\"{}\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf\x1f-Ctarget-cpu=v4",
            env::consts::ARCH
        );
        assert_eq!(flags, expected.as_str());
        let args: Vec<_> = cmd.get_args().collect();
        assert!(args.contains(&std::ffi::OsStr::new(EBPF_TOOLCHAIN)));
        assert!(args.contains(&std::ffi::OsStr::new(bpf_target())));
    }
}
