//! Builds lb-ebpf for its BPF target and leaves the object in `OUT_DIR`, where
//! `lib.rs` embeds it: `cargo build` never runs against a stale program. Of
//! all lb's crates, only this one needs the eBPF toolchain.
//!
//! Needs the nightly toolchain with rust-src and `bpf-linker` built against
//! nightly's LLVM; `cargo xtask build-ebpf` installs both into
//! `$LB_TOOLCHAIN_DIR` (default `~/.cache/lb`), whose `bin/` is searched here.
//!
//! The cargo invocation is `ebpf_cargo.rs`, shared with xtask. Output is quiet
//! but not silent: the child cargo runs with `CARGO_TERM_QUIET` (no progress
//! lines), and whatever it still prints (compiler warnings, errors) becomes a
//! `cargo:warning` so it shows in the outer build.

use std::{
    env,
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::Stdio,
};

use anyhow::{Context as _, bail};

include!("../xtask/src/toolchain_dir.rs");
include!("../xtask/src/ebpf_cargo.rs");

fn toolchain_bin() -> Option<PathBuf> {
    toolchain_dir_from_env().map(|dir| dir.join("bin"))
}

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=LB_TOOLCHAIN_DIR");
    println!("cargo:rerun-if-changed=../lb-common/src");
    println!("cargo:rerun-if-changed=../lb-ebpf");
    println!("cargo:rerun-if-changed=../xtask/src/ebpf_cargo.rs");
    println!("cargo:rerun-if-changed=../xtask/src/toolchain_dir.rs");
    let mut paths: Vec<PathBuf> = toolchain_bin().into_iter().collect();
    paths.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    if !paths.iter().any(|p| p.join("bpf-linker").is_file()) {
        bail!(
            "bpf-linker not found (looked in $LB_TOOLCHAIN_DIR/bin, ~/.cache/lb/bin and PATH): \
             run `cargo xtask build-ebpf` once; it installs the eBPF toolchain"
        );
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR")?);
    let endian = env::var("CARGO_CFG_TARGET_ENDIAN").context("CARGO_CFG_TARGET_ENDIAN")?;
    let arch = env::var("CARGO_CFG_TARGET_ARCH").context("CARGO_CFG_TARGET_ARCH")?;
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?);
    // Apart from OUT_DIR's own files (the object is copied to OUT_DIR/lb-ebpf).
    let target_dir = out_dir.join("ebpf-target");

    let mut cmd = ebpf_command("build", &endian, &arch, &target_dir);
    cmd.current_dir(root.join("../lb-ebpf"))
        .env("PATH", env::join_paths(paths).context("PATH")?)
        .env("CARGO_TERM_QUIET", "true")
        // As parallel as the outer build was asked to be.
        .env(
            "CARGO_BUILD_JOBS",
            env::var("NUM_JOBS").unwrap_or_else(|_| "1".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {cmd:?} (is rustup installed?)"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    // The child's stdout is not for cargo's eyes as directives: relay it too.
    let relay = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("cargo:warning={line}");
        }
    });
    let stderr = child.stderr.take().context("child stderr")?;
    let mut last = Vec::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        println!("cargo:warning={line}");
        last.push(line);
    }
    let _ = relay.join();
    let status = child.wait().context("waiting for the lb-ebpf build")?;
    if !status.success() {
        let tail = last[last.len().saturating_sub(20)..].join("\n");
        bail!("building lb-ebpf for its BPF target failed ({status}):\n{tail}");
    }
    let object = target_dir
        .join(ebpf_target(&endian))
        .join("release")
        .join(EBPF_PACKAGE);
    std::fs::copy(&object, out_dir.join(EBPF_PACKAGE))
        .with_context(|| format!("copying {}", object.display()))?;
    Ok(())
}
