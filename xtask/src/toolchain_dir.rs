// Where the eBPF toolchain (bpf-linker and the libLLVM links) lives. One
// definition, used by xtask (which installs it) and `include!`d by
// lb-dataplane's build script (which runs bpf-linker from it), so the two
// can never look in different places.

/// `$LB_TOOLCHAIN_DIR` if set and not empty, else `$HOME/.cache/lb`; `None`
/// when neither is set.
fn toolchain_dir_from_env() -> Option<std::path::PathBuf> {
    let nonempty = |key: &str| std::env::var_os(key).filter(|v| !v.is_empty());
    match nonempty("LB_TOOLCHAIN_DIR") {
        Some(dir) => Some(std::path::PathBuf::from(dir)),
        None => nonempty("HOME").map(|home| std::path::PathBuf::from(home).join(".cache/lb")),
    }
}
