//! Builds lb-ebpf for `bpfel-unknown-none` with aya-build and leaves the object
//! in `OUT_DIR`, where `lib.rs` embeds it: `cargo build` never runs against a
//! stale program. Of all lb's crates, only this one needs the eBPF toolchain.
//!
//! Needs the nightly toolchain with rust-src and `bpf-linker` built against
//! nightly's LLVM; `cargo xtask build-ebpf` installs both into
//! `$LB_TOOLCHAIN_DIR` (default `~/.cache/lb`), whose `bin/` is searched here.

use std::{env, path::PathBuf};

use anyhow::{Context as _, bail};

include!("../xtask/src/toolchain_dir.rs");

fn toolchain_bin() -> Option<PathBuf> {
    toolchain_dir_from_env().map(|dir| dir.join("bin"))
}

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=LB_TOOLCHAIN_DIR");
    println!("cargo:rerun-if-changed=../lb-common/src");
    let mut paths: Vec<PathBuf> = toolchain_bin().into_iter().collect();
    paths.extend(env::split_paths(&env::var_os("PATH").unwrap_or_default()));
    if !paths.iter().any(|p| p.join("bpf-linker").is_file()) {
        bail!(
            "bpf-linker not found (looked in $LB_TOOLCHAIN_DIR/bin, ~/.cache/lb/bin and PATH): \
             run `cargo xtask build-ebpf` once; it installs the eBPF toolchain"
        );
    }
    // SAFETY: build scripts are single-threaded; the child cargo inherits both.
    // Quiet: aya-build turns every line the child prints into a cargo warning;
    // errors still come through.
    unsafe {
        env::set_var("PATH", env::join_paths(paths).context("PATH")?);
        env::set_var("CARGO_TERM_QUIET", "true");
    }

    let root = env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?;
    let ebpf_dir = PathBuf::from(root).join("../lb-ebpf");
    let ebpf_dir = ebpf_dir.to_str().context("non-UTF-8 path")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "lb-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
    .context("building lb-ebpf for bpfel-unknown-none (see the warnings above)")
}
