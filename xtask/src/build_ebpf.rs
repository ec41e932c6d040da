//! `cargo xtask build-ebpf`: builds the XDP object on its own, the way lb-dataplane's build script
//! embeds it, to see lb-ebpf's compile errors without building the agent.

use std::fs;

use anyhow::{Context as _, Result};

use crate::{
    cargo::{self, EBPF_PACKAGE, EBPF_TARGET_DIR},
    process::{self, say},
    toolchain, workspace_root,
};

/// The data path's aya-log lines are always compiled in; the loader sets
/// their level at load time (`agent.ebpf_log`), so there is no build switch.
#[derive(clap::Args)]
pub struct BuildEbpf {}

pub fn run(_args: &BuildEbpf) -> Result<()> {
    toolchain::ensure_ebpf_toolchain()?;
    let target = cargo::bpf_target();
    process::run(
        &format!("building {EBPF_PACKAGE} for {target}"),
        &mut cargo::ebpf("build")?,
    )?;
    let object = workspace_root()
        .join(EBPF_TARGET_DIR)
        .join(target)
        .join("release")
        .join(EBPF_PACKAGE);
    let size = fs::metadata(&object)
        .with_context(|| format!("the build succeeded but left no {}", object.display()))?
        .len();
    say(format_args!(
        "eBPF object: {} ({size} bytes)",
        object.display()
    ));
    Ok(())
}
