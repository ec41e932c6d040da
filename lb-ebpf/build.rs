//! Link flags for the XDP object. bpf-linker does the code generation, so the
//! BPF instruction set is chosen here: v3 (kernel 5.1+) brings 32-bit ALU and
//! jump instructions and the atomics (`cmpxchg`) the flow table needs.
fn main() {
    println!("cargo:rustc-link-arg-bins=--cpu-features=+alu32");
}
