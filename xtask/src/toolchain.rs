//! The eBPF toolchain (docs/toolchain.md): nightly's rust-src, and a bpf-linker linked against
//! nightly's own libLLVM, kept in [`toolchain_dir`].

use std::{
    env,
    ffi::OsString,
    fs, iter,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, anyhow};

use crate::process::{self, say};

/// The rustup toolchain lb-ebpf builds with (`-Z build-std` needs nightly).
pub const NIGHTLY: &str = crate::cargo::EBPF_TOOLCHAIN;

include!("toolchain_dir.rs");

/// Where bpf-linker and the libLLVM links live: `$LB_TOOLCHAIN_DIR`, else `$HOME/.cache/lb`
/// (the rule in `toolchain_dir.rs`, which lb-dataplane's build script shares).
pub fn toolchain_dir() -> Result<PathBuf> {
    let dir = toolchain_dir_from_env()
        .context("neither LB_TOOLCHAIN_DIR nor HOME is set: nowhere to keep bpf-linker")?;
    // bpf-linker's RUNPATH points into this directory, so it must not depend on the cwd.
    std::path::absolute(&dir).with_context(|| format!("cannot make {} absolute", dir.display()))
}

/// `PATH` with `<toolchain dir>/bin` in front: every cargo xtask starts gets it, because
/// lb-dataplane's build script runs bpf-linker from `PATH`.
pub fn cargo_env_path() -> Result<OsString> {
    let bin = toolchain_dir()?.join("bin");
    let current = env::var_os("PATH").unwrap_or_default();
    env::join_paths(iter::once(bin).chain(env::split_paths(&current)))
        .context("cannot put the toolchain's bin directory on PATH")
}

/// Installs what building lb-ebpf needs, skipping what is already there.
pub fn ensure_ebpf_toolchain() -> Result<()> {
    ensure_component(NIGHTLY, "rust-src")?;
    ensure_bpf_linker()
}

/// `rustup component add <component> --toolchain <toolchain>`, unless it is installed.
pub fn ensure_component(toolchain: &str, component: &str) -> Result<()> {
    let installed = process::stdout_of(Command::new("rustup").args([
        "component",
        "list",
        "--toolchain",
        toolchain,
        "--installed",
    ]))?;
    // Listed as `rust-src` or with the host triple, `clippy-x86_64-unknown-linux-gnu`.
    let prefix = format!("{component}-");
    if installed
        .lines()
        .any(|line| line == component || line.starts_with(&prefix))
    {
        say(format_args!("{component} for {toolchain}: present"));
        return Ok(());
    }
    process::run(
        &format!("installing {component} for {toolchain}"),
        Command::new("rustup").args(["component", "add", component, "--toolchain", toolchain]),
    )
}

/// What bpf-linker must link against: nightly's libLLVM.
struct NightlyLlvm {
    /// From `rustc +nightly -vV`: "LLVM version: 22.1.4" → 22, bpf-linker's `llvm-22` feature.
    major: u32,
    /// `<nightly sysroot>/lib/libLLVM.so.<...>`, named by its SONAME.
    library: PathBuf,
    soname: OsString,
}

impl NightlyLlvm {
    fn find() -> Result<Self> {
        let version =
            process::stdout_of(Command::new("rustc").args([&format!("+{NIGHTLY}"), "-vV"]))?;
        let major = version
            .lines()
            .find_map(|line| line.strip_prefix("LLVM version: "))
            .and_then(|v| v.split('.').next()?.trim().parse().ok())
            .with_context(|| {
                format!("no \"LLVM version: N.x\" in `rustc +nightly -vV`:\n{version}")
            })?;
        let sysroot = process::stdout_of(Command::new("rustc").args([
            &format!("+{NIGHTLY}"),
            "--print",
            "sysroot",
        ]))?;
        let lib = Path::new(sysroot.trim()).join("lib");
        let entries =
            fs::read_dir(&lib).with_context(|| format!("cannot list {}", lib.display()))?;
        let mut sonames = Vec::new();
        for entry in entries {
            let name = entry
                .with_context(|| format!("cannot list {}", lib.display()))?
                .file_name();
            if name.to_string_lossy().starts_with("libLLVM.so.") {
                sonames.push(name);
            }
        }
        let [soname] = <[OsString; 1]>::try_from(sonames).map_err(|found| {
            anyhow!(
                "expected one libLLVM.so.* in {}, found {found:?}",
                lib.display()
            )
        })?;
        Ok(Self {
            major,
            library: lib.join(&soname),
            soname,
        })
    }
}

/// Builds `<dir>/bin/bpf-linker` unless one is there, runs, and links the current nightly's libLLVM.
fn ensure_bpf_linker() -> Result<()> {
    let dir = toolchain_dir()?;
    let lib = dir.join("llvm/lib");
    let linker = dir.join("bin/bpf-linker");
    let llvm = NightlyLlvm::find()?;
    match check_bpf_linker(&linker, &lib, &llvm) {
        Ok(version) => {
            say(format_args!(
                "bpf-linker: present ({version}, {}, LLVM {})",
                linker.display(),
                llvm.major
            ));
            return Ok(());
        }
        Err(reason) => say(format_args!("bpf-linker must be built: {reason}")),
    }
    link_libllvm(&lib, &llvm)?;
    let mut install = Command::new("cargo");
    install
        // Away from the workspace, so its .cargo/config.toml cannot change how bpf-linker builds.
        .current_dir(&dir)
        .env("LLVM_PREFIX", dir.join("llvm"))
        .args([
            "install",
            "bpf-linker",
            "--no-default-features",
            "--features",
        ])
        .arg(format!("llvm-{}", llvm.major))
        .arg("--root")
        .arg(&dir)
        // An older build in --root counts as installed for cargo, but links the wrong libLLVM.
        .arg("--force");
    process::run(
        &format!(
            "building bpf-linker against nightly's LLVM {} (takes a few minutes)",
            llvm.major
        ),
        &mut install,
    )?;
    let version = check_bpf_linker(&linker, &lib, &llvm)
        .map_err(|reason| anyhow!("bpf-linker was just built, yet {reason}"))?;
    say(format_args!(
        "bpf-linker: built ({version}, {})",
        linker.display()
    ));
    Ok(())
}

/// `Ok(version)` if `linker` runs and both libLLVM links point at the current nightly's library
/// (a nightly with another LLVM has another SONAME, and then bpf-linker must be rebuilt).
fn check_bpf_linker(linker: &Path, lib: &Path, llvm: &NightlyLlvm) -> Result<String, String> {
    for name in [llvm.soname.as_os_str(), "libLLVM.so".as_ref()] {
        let link = lib.join(name);
        match fs::read_link(&link) {
            Ok(target) if target == llvm.library => {}
            Ok(target) => {
                return Err(format!(
                    "{} points at {}, not {}",
                    link.display(),
                    target.display(),
                    llvm.library.display()
                ));
            }
            Err(err) => return Err(format!("{}: {err}", link.display())),
        }
    }
    let output = Command::new(linker)
        .arg("--version")
        .output()
        .map_err(|err| format!("{}: {err}", linker.display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "`{} --version` failed ({}): {}",
            linker.display(),
            output.status,
            stderr.trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `ln -sf <library> <lib>/<soname>; ln -sf <library> <lib>/libLLVM.so`, dropping links to
/// libLLVMs of older nightlies.
fn link_libllvm(lib: &Path, llvm: &NightlyLlvm) -> Result<()> {
    say(format_args!(
        "linking nightly's libLLVM into {} (ln -sf {} {{{},libLLVM.so}})",
        lib.display(),
        llvm.library.display(),
        llvm.soname.to_string_lossy()
    ));
    fs::create_dir_all(lib).with_context(|| format!("cannot create {}", lib.display()))?;
    let entries = fs::read_dir(lib).with_context(|| format!("cannot list {}", lib.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list {}", lib.display()))?
            .path();
        let is_llvm = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("libLLVM.so"));
        if is_llvm {
            fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    for name in [llvm.soname.as_os_str(), "libLLVM.so".as_ref()] {
        let link = lib.join(name);
        symlink(&llvm.library, &link).with_context(|| {
            format!(
                "cannot link {} to {}",
                link.display(),
                llvm.library.display()
            )
        })?;
    }
    Ok(())
}
