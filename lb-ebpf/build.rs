//! Link flags for the XDP object. bpf-linker does the code generation, so
//! BPF instruction-set features are chosen here: 32-bit ALU instructions
//! (kernel 5.1+) for tighter code. (`cmpxchg` comes with the atomics the
//! flow tables use.) Host builds of the crate's shell get nothing.
fn main() {
    println!("cargo:rerun-if-env-changed=CARGO_CFG_TARGET_ARCH");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("bpf") {
        println!("cargo:rustc-link-arg-bins=--cpu-features=+alu32");
    }
}
