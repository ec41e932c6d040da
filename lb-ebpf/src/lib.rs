//! Host-side shell of the XDP crate; the program itself is `main.rs`, built for
//! `bpfel-unknown-none`. This lib target exists so that lb-dataplane can name lb-ebpf
//! as a build dependency and be rebuilt when it changes (aya-template layout).
#![no_std]
