//! The `cargo` commands xtask starts: on the host, and for lb-ebpf on its BPF target, all with
//! the eBPF toolchain on `PATH`.

use std::{env, process::Command};

use anyhow::Result;

use crate::{
    toolchain::{NIGHTLY, cargo_env_path},
    workspace_root,
};

/// The eBPF crate and where its objects go (apart from host builds, so neither invalidates the other).
pub const EBPF_PACKAGE: &str = "lb-ebpf";
pub const EBPF_TARGET_DIR: &str = "target/ebpf";

/// `cargo` (the default toolchain) in the workspace root, with [`cargo_env_path`].
pub fn host() -> Result<Command> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root())
        .env("PATH", cargo_env_path()?);
    Ok(cmd)
}

/// `rustup run nightly cargo <subcommand>` for lb-ebpf on its BPF target, set up the way
/// aya-build 0.2.0 builds it from lb-dataplane's build script, so both see the same code.
pub fn ebpf(subcommand: &str, features: &[&str]) -> Result<Command> {
    let mut cmd = Command::new("rustup");
    cmd.current_dir(workspace_root())
        .env("PATH", cargo_env_path()?)
        .args(["run", NIGHTLY, "cargo", subcommand])
        .args(["--package", EBPF_PACKAGE, "--bins", "--release"])
        .args(["--target", bpf_target(), "-Z", "build-std=core"])
        .args(["--target-dir", EBPF_TARGET_DIR]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    // aya-build: `--cfg bpf_target_arch` says which architecture's kernel structs to use; BTF
    // lets the kernel verify and log with types.
    let rustflags = [
        format!("--cfg=bpf_target_arch=\"{}\"", env::consts::ARCH),
        "-Cdebuginfo=2".into(),
        "-Clink-arg=--btf".into(),
    ];
    cmd.env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"));
    // aya-build: a RUSTC or wrapper from an outer cargo would defeat `rustup run nightly`.
    for key in ["RUSTC", "RUSTC_WORKSPACE_WRAPPER"] {
        cmd.env_remove(key);
    }
    Ok(cmd)
}

/// The BPF target with the host's byte order, as aya-build picks it.
pub fn bpf_target() -> &'static str {
    if cfg!(target_endian = "big") {
        "bpfeb-unknown-none"
    } else {
        "bpfel-unknown-none"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_flags_match_aya_build() {
        let cmd = ebpf("build", &[]).expect("ebpf_cargo");
        let flags = cmd
            .get_envs()
            .find(|(key, _)| *key == "CARGO_ENCODED_RUSTFLAGS")
            .and_then(|(_, value)| value)
            .expect("CARGO_ENCODED_RUSTFLAGS is set");
        let expected = format!(
            "--cfg=bpf_target_arch=\"{}\"\x1f-Cdebuginfo=2\x1f-Clink-arg=--btf",
            env::consts::ARCH
        );
        assert_eq!(flags, expected.as_str());
    }
}
