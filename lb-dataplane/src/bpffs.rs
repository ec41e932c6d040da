//! A bpffs under the pin directory: mounted when missing, as systemd and
//! libbpf do.

use std::{
    ffi::CString,
    fs, io,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

/// `BPF_FS_MAGIC` from `linux/magic.h`.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// Errors of host plumbing, each naming its path.
#[derive(Debug, thiserror::Error)]
pub enum BpffsError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> BpffsError {
    let path = path.to_owned();
    move |source| BpffsError::Io { op, path, source }
}

fn is_bpffs(path: &Path) -> io::Result<bool> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `st` is a plain struct the kernel fills; `c` is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

/// Makes sure `pin_dir` lives on a bpffs, mounting one if needed: at
/// `/sys/fs/bpf` when the pin directory is under it (the conventional place,
/// as systemd and libbpf do), at the pin directory itself otherwise.
/// Returns the mount point it created, if any.
pub fn ensure_bpffs(pin_dir: &Path) -> Result<Option<PathBuf>, BpffsError> {
    let mut probe = pin_dir;
    while !probe.exists() {
        match probe.parent() {
            Some(p) => probe = p,
            None => break,
        }
    }
    if is_bpffs(probe).map_err(io_err("checking the file system of", probe))? {
        return Ok(None);
    }
    let sys_bpf = Path::new("/sys/fs/bpf");
    let target = if pin_dir.starts_with(sys_bpf) {
        sys_bpf
    } else {
        pin_dir
    };
    fs::create_dir_all(target).map_err(io_err("creating", target))?;
    let c = CString::new(target.as_os_str().as_bytes())
        .map_err(|e| io_err("mounting bpffs at", target)(io::Error::other(e)))?;
    // SAFETY: all arguments are valid NUL-terminated strings or null.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            c.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io_err("mounting bpffs at", target)(
            io::Error::last_os_error(),
        ));
    }
    Ok(Some(target.to_owned()))
}
