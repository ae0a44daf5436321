//! File output shared by commands: cfssljson-style bundles, atomic writes,
//! private files created 0600.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `data` to `path` atomically (temp file in the same directory,
/// fsync, rename). With `private`, the file is created with mode 0600 and
/// never exists with wider permissions.
pub fn write_atomic(path: &Path, data: &[u8], private: bool) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = o
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let r = f
        .write_all(data)
        .and_then(|_| f.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// What a certificate command produced.
#[derive(Default)]
pub struct Bundle {
    pub cert: Option<String>,
    pub key: Option<zeroize::Zeroizing<String>>,
    pub csr: Option<String>,
}

impl Bundle {
    /// Writes `PREFIX.pem`, `PREFIX-key.pem` (0600) and `PREFIX.csr`, as
    /// `cfssljson -bare PREFIX` does, or prints cfssl's JSON with `stdout`.
    pub fn emit(&self, prefix: &str, stdout: bool) -> Result<()> {
        if stdout {
            let mut m = serde_json::Map::new();
            if let Some(c) = &self.cert {
                m.insert("cert".into(), c.clone().into());
            }
            if let Some(c) = &self.csr {
                m.insert("csr".into(), c.clone().into());
            }
            if let Some(k) = &self.key {
                m.insert("key".into(), k.as_str().into());
            }
            println!("{}", serde_json::Value::Object(m));
            return Ok(());
        }
        // Key first: a certificate never exists on disk without its key.
        if let Some(k) = &self.key {
            write_atomic(Path::new(&format!("{prefix}-key.pem")), k.as_bytes(), true)?;
        }
        if let Some(c) = &self.csr {
            write_atomic(Path::new(&format!("{prefix}.csr")), c.as_bytes(), false)?;
        }
        if let Some(c) = &self.cert {
            write_atomic(Path::new(&format!("{prefix}.pem")), c.as_bytes(), false)?;
        }
        Ok(())
    }
}

/// Reads a file with a readable error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
