// How lb-ebpf is built for its BPF target: the one definition of the cargo
// invocation and its flags, used by xtask (`build-ebpf`, the eBPF clippy step)
// and `include!`d by lb-dataplane's build script (which embeds the object), so
// the two can never build different code.
//
// Why not aya-build: it hard-codes CARGO_ENCODED_RUSTFLAGS, and the data path
// needs `-Ctarget-cpu=v4` there. BPF ISA v4 brings load-acquire and
// store-release (the flow tables' and the flip words' ordering, kernel 6.15+;
// with the default CPU LLVM has no atomic loads or stores for BPF and
// bpf-linker aborts on them) and 32-bit jump offsets (~25 % fewer
// instructions). rustc hands the CPU to bpf-linker as its `--cpu`, which may
// be given only once, so it cannot go in lb-ebpf's own build script. v4
// includes v3's 32-bit ALU and jump instructions.

/// The package and the rustup toolchain it is built with (`-Z build-std` needs nightly).
pub const EBPF_PACKAGE: &str = "lb-ebpf";
pub const EBPF_TOOLCHAIN: &str = "nightly";

/// The BPF target with the byte order of `endian` (`"little"`/`"big"`, as in
/// `CARGO_CFG_TARGET_ENDIAN`).
fn ebpf_target(endian: &str) -> &'static str {
    if endian == "big" {
        "bpfeb-unknown-none"
    } else {
        "bpfel-unknown-none"
    }
}

/// `CARGO_ENCODED_RUSTFLAGS` for lb-ebpf: `--cfg bpf_target_arch` says which
/// architecture's kernel structs aya-ebpf uses; BTF lets the kernel verify and
/// log with types; `target-cpu=v4` as explained above.
fn ebpf_rustflags(bpf_target_arch: &str) -> String {
    [
        format!("--cfg=bpf_target_arch=\"{bpf_target_arch}\""),
        "-Cdebuginfo=2".to_string(),
        "-Clink-arg=--btf".to_string(),
        "-Ctarget-cpu=v4".to_string(),
    ]
    .join("\x1f")
}

/// `rustup run nightly cargo <subcommand>` for lb-ebpf's binaries on the BPF
/// target, in release mode, building `core` from source, into `target_dir`.
fn ebpf_command(
    subcommand: &str,
    endian: &str,
    bpf_target_arch: &str,
    target_dir: &std::path::Path,
) -> std::process::Command {
    let mut cmd = std::process::Command::new("rustup");
    cmd.args(["run", EBPF_TOOLCHAIN, "cargo", subcommand])
        .args(["--package", EBPF_PACKAGE, "--bins", "--release"])
        .args(["--target", ebpf_target(endian), "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(target_dir)
        .env("CARGO_ENCODED_RUSTFLAGS", ebpf_rustflags(bpf_target_arch));
    // A RUSTC or wrapper inherited from an outer cargo would defeat `rustup run nightly`.
    for key in ["RUSTC", "RUSTC_WORKSPACE_WRAPPER"] {
        cmd.env_remove(key);
    }
    cmd
}
