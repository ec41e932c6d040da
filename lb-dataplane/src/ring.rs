//! A Maglev ring as a kernel map: created, filled through `mmap` and handed to
//! the outer ring map in one update, so packets see the old ring or the new
//! one, never a mix (the atomic swap of DESIGN.md §3).
//!
//! aya creates standalone arrays but gives no way to `mmap` them, and filling a
//! 65537-slot ring with one syscall per slot costs ~30 ms; so rings are created
//! with one raw `BPF_MAP_CREATE` and written as memory.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd as _, FromRawFd as _, OwnedFd},
};

use super::mapped::Mapped;

use lb_common::{abi::BackendId, consts::RING_MAP_FLAGS};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_TYPE_ARRAY: u32 = 2;

/// The `BPF_MAP_CREATE` part of `union bpf_attr` (uapi/linux/bpf.h), zero-padded.
#[repr(C)]
#[derive(Default)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
    map_ifindex: u32,
    btf_fd: u32,
    btf_key_type_id: u32,
    btf_value_type_id: u32,
    btf_vmlinux_value_type_id: u32,
    map_extra: u64,
}

/// A filled ring map, ready to be stored in the outer map.
pub struct RingMap {
    pub fd: OwnedFd,
}

impl RingMap {
    /// Creates a ring map holding `slots` (its size is `slots.len()`).
    pub fn new(slots: &[BackendId]) -> io::Result<Self> {
        let entries = u32::try_from(slots.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ring too large"))?;
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: size_of::<BackendId>() as u32,
            max_entries: entries,
            map_flags: RING_MAP_FLAGS,
            ..Default::default()
        };
        attr.map_name[..7].copy_from_slice(b"lb_ring");
        // SAFETY: BPF_MAP_CREATE reads `size_of::<MapCreateAttr>()` bytes of a
        // valid, initialised attr and returns a new fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_CREATE,
                &mut attr as *mut MapCreateAttr,
                size_of::<MapCreateAttr>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd to us; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        write_slots(&fd, slots)?;
        Ok(RingMap { fd })
    }
}

/// Array maps store each value in an 8-byte-aligned element (kernel
/// `array->elem_size = round_up(value_size, 8)`), and that is what `mmap` shows.
const ELEM: usize = 8;

/// Writes `slots` into an mmapable array map through a shared mapping.
fn write_slots(fd: &OwnedFd, slots: &[BackendId]) -> io::Result<()> {
    let m = Mapped::new(fd.as_fd(), slots.len() * ELEM)?;
    let base = m.base::<u8>();
    for (i, s) in slots.iter().enumerate() {
        // SAFETY: slot `i` lies inside the mapping; nobody reads this map yet
        // (it is not in the outer map until we return).
        unsafe { base.add(i * ELEM).cast::<BackendId>().write(*s) };
    }
    Ok(())
}

/// Reads a ring back (tests, `lb-ctl` diagnostics): the slots of the ring map `fd`.
pub fn read_slots(fd: &OwnedFd, entries: usize) -> io::Result<Vec<BackendId>> {
    let m = Mapped::new(fd.as_fd(), entries * ELEM)?;
    let base = m.base::<u8>();
    // SAFETY: slot `i < entries` lies inside the mapping.
    Ok((0..entries)
        .map(|i| unsafe { base.add(i * ELEM).cast::<BackendId>().read() })
        .collect())
}

/// The `BPF_MAP_*_ELEM` part of `union bpf_attr`.
#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Deletes slot `index` of an array-of-maps.
pub fn delete_slot(outer: &OwnedFd, index: u32) -> io::Result<()> {
    let mut attr = MapElemAttr {
        map_fd: outer.as_raw_fd() as u32,
        _pad: 0,
        key: &index as *const u32 as u64,
        value: 0,
        flags: 0,
    };
    // SAFETY: BPF_MAP_DELETE_ELEM reads the attr and the 4-byte key it points to,
    // both alive for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_DELETE_ELEM,
            &mut attr as *mut MapElemAttr,
            size_of::<MapElemAttr>(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
