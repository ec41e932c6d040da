//! Everything lb's XDP program and its userspace must agree on: map names and sizes,
//! the `#[repr(C)]` map keys and values, and the flow hash that picks a Maglev slot.
//!
//! One definition of each, used by both sides, so a layout change or a hash change
//! cannot leave the kernel and `lb-ctl explain` disagreeing.
#![no_std]

#[cfg(feature = "user")]
extern crate alloc;
#[cfg(feature = "user")]
extern crate std;

pub mod abi;
pub mod consts;
pub mod hash;
#[cfg(feature = "user")]
pub mod maglev;
pub mod ring_size;
pub mod rx;
