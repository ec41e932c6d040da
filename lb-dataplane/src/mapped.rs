//! A `BPF_F_MMAPABLE` array map mapped into this process: rings, flow tables
//! and the VIP table are all read or written as memory through one of these.

use std::{
    io,
    os::fd::{AsRawFd as _, BorrowedFd},
    ptr,
};

/// A shared, writable mapping of an array map; unmapped on drop.
pub struct Mapped {
    base: *mut u8,
    len: usize,
}

// SAFETY: shared memory the kernel keeps alive until munmap; users access it
// through volatile reads, atomics, or while no packet reads it.
unsafe impl Send for Mapped {}

impl Mapped {
    /// Maps `bytes` of the map `fd` (rounded up to a page: array maps keep
    /// their values page-aligned from offset 0).
    pub fn new(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<Mapped> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let len = bytes.max(1).next_multiple_of(page);
        // SAFETY: mapping an mmapable array map at least `len` bytes long;
        // checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapped {
            base: p.cast(),
            len,
        })
    }

    /// The start of the mapping, as a `T` array.
    pub fn base<T>(&self) -> *mut T {
        self.base.cast()
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}
