//! The agent's unix socket (`agent.socket`): created private (0600), never
//! taking over a live agent's socket, and removed at exit only if it is
//! still ours.

use std::{
    fs::Permissions,
    io,
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use tokio::net::{UnixListener, UnixStream};

/// The socket, bound but not yet serving: binding apart from serving lets the
/// agent fail at startup, before it says READY.
#[derive(Debug)]
pub struct UnixSocket {
    pub(super) listener: UnixListener,
    path: PathBuf,
    /// Inode of the socket file, to remove it at exit only if it is still ours.
    ino: u64,
}

impl UnixSocket {
    /// Creates the parent directory (0755) if missing, replaces a stale socket
    /// (one nobody answers on), and binds. Refuses to replace a live socket or
    /// a file that is not a socket. The socket is bound under a temporary name,
    /// made 0600 and renamed into place, so it is never reachable with looser
    /// permissions.
    pub async fn bind(path: &Path) -> io::Result<UnixSocket> {
        create_parent(path).await?;
        remove_stale(path).await?;
        let Some(name) = path.file_name() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a socket file name", path.display()),
            ));
        };
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = path.with_file_name(tmp_name);
        match tokio::fs::remove_file(&tmp).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at("removing", &tmp)(e)),
            _ => {}
        }
        let listener = UnixListener::bind(&tmp).map_err(at("binding", &tmp))?;
        match place(&tmp, path).await {
            Ok(ino) => Ok(UnixSocket {
                listener,
                path: path.to_owned(),
                ino,
            }),
            Err(e) => {
                let _ = tokio::fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the socket file, unless another agent has replaced it meanwhile.
    pub(super) async fn remove(&self) -> io::Result<()> {
        match tokio::fs::symlink_metadata(&self.path).await {
            Ok(m) if m.ino() == self.ino => tokio::fs::remove_file(&self.path)
                .await
                .map_err(at("removing", &self.path)),
            _ => Ok(()),
        }
    }
}

async fn create_parent(path: &Path) -> io::Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if tokio::fs::try_exists(parent)
        .await
        .map_err(at("checking", parent))?
    {
        return Ok(());
    }
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(parent)
        .await
        .map_err(at("creating", parent))
}

/// Makes the socket at `tmp` private and moves it to `path`; returns its inode.
async fn place(tmp: &Path, path: &Path) -> io::Result<u64> {
    tokio::fs::set_permissions(tmp, Permissions::from_mode(0o600))
        .await
        .map_err(at("setting the mode of", tmp))?;
    tokio::fs::rename(tmp, path)
        .await
        .map_err(at("renaming the socket to", path))?;
    Ok(tokio::fs::symlink_metadata(path)
        .await
        .map_err(at("reading", path))?
        .ino())
}

/// Removes a socket file left by a process that is gone.
async fn remove_stale(path: &Path) -> io::Result<()> {
    let meta = match tokio::fs::symlink_metadata(path).await {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(at("reading", path)(e)),
        Ok(m) => m,
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; not replacing it (remove it or change agent.socket)",
                path.display()
            ),
        ));
    }
    if UnixStream::connect(path).await.is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "{}: another agent is answering on it (stop it first)",
                path.display()
            ),
        ));
    }
    tracing::info!(socket = %path.display(), "removing stale control socket");
    tokio::fs::remove_file(path)
        .await
        .map_err(at("removing", path))
}

/// Adds what was being done, and to which path, to an I/O error.
fn at(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> io::Error {
    let path = path.display().to_string();
    move |e| io::Error::new(e.kind(), format!("{op} {path}: {e}"))
}
