//! `--netns`: running a command inside another network namespace while
//! keeping the host's mount namespace (so pins under /sys/fs/bpf stay shared).

use std::{
    fs, io,
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
};

/// Why entering a namespace failed, naming its path.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct NetnsError {
    op: &'static str,
    path: PathBuf,
    #[source]
    source: io::Error,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> NetnsError {
    let path = path.to_owned();
    move |source| NetnsError { op, path, source }
}

/// Moves this thread (call it before starting any other) into the network
/// namespace `name` (`/run/netns/NAME`, as `ip netns` creates), keeping the
/// mount namespace: pins under `/sys/fs/bpf` stay visible to the host.
pub fn enter_netns(name: &str) -> Result<(), NetnsError> {
    let path = if name.contains('/') {
        PathBuf::from(name)
    } else {
        Path::new("/run/netns").join(name)
    };
    let f = fs::File::open(&path).map_err(io_err("opening network namespace", &path))?;
    // SAFETY: `f` is an open namespace file for the duration of the call.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io_err("entering network namespace", &path)(
            io::Error::last_os_error(),
        ));
    }
    Ok(())
}
