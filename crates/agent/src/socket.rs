//! In-memory mode: the key and certificate live only in this process and
//! are handed out on a Unix socket.
//!
//! Protocol: connect to the socket; the agent writes the current bundle
//! (the PKCS#8 `PRIVATE KEY` PEM block, the leaf `CERTIFICATE`, then the
//! CA certificate(s)) and closes the connection. Nothing is read from the
//! client. Before the first issuance the connection is closed with nothing
//! written. The socket file is created with mode 0600 (bound under a
//! temporary name, restricted, then renamed into place), so only the
//! agent's user (and root) can connect.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio::io::AsyncWriteExt as _;

use crate::error::{AgentError, Result};
use crate::store::Issued;

/// The current issuance of an in-memory certificate.
pub type Slot = Arc<RwLock<Option<Arc<Issued>>>>;

/// Binds the socket at `path` (replacing a stale one), mode 0600.
#[cfg(unix)]
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| AgentError::Refused(format!("{} is not a socket path", path.display())))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.bind-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let l = tokio::net::UnixListener::bind(&tmp).map_err(|e| AgentError::io(&tmp, e))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| AgentError::io(&tmp, e))?;
    if std::fs::symlink_metadata(path).is_ok_and(|m| !is_socket(&m)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(AgentError::Refused(format!(
            "{} exists and is not a socket; not replacing it",
            path.display()
        )));
    }
    std::fs::rename(&tmp, path).map_err(|e| AgentError::io(path, e))?;
    Ok(l)
}

#[cfg(unix)]
fn is_socket(m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    m.file_type().is_socket()
}

/// Answers every connection with the slot's bundle.
#[cfg(unix)]
pub async fn serve(name: String, listener: tokio::net::UnixListener, slot: Slot) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: do not spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let current = slot.read().ok().and_then(|s| s.clone());
        let name = name.clone();
        tokio::spawn(async move {
            if let Some(i) = current {
                let b = i.bundle();
                if let Err(e) = stream.write_all(b.as_bytes()).await {
                    tracing::debug!(certificate = %name, error = %e, "socket client went away");
                }
            }
            let _ = stream.shutdown().await;
        });
    }
}
