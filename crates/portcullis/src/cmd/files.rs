//! File output shared by commands: cfssljson-style bundles, atomic writes,
//! private files created 0600.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `data` to `path` atomically (temp file in the same directory,
/// fsync, rename). With `private`, the file is created with mode 0600 and
/// never exists with wider permissions.
pub fn write_atomic(path: &Path, data: &[u8], private: bool) -> Result<()> {
    let tmp = stage(path, data, private)?;
    put_in_place(&tmp, path)
}

/// Writes and syncs `data` to a temp file beside `path`; returns its path.
fn stage(path: &Path, data: &[u8], private: bool) -> Result<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    if path.is_dir() {
        anyhow::bail!("cannot write {}: it is a directory", path.display());
    }
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
    if let Err(e) = f.write_all(data).and_then(|_| f.sync_all()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(tmp)
}

fn put_in_place(tmp: &Path, path: &Path) -> Result<()> {
    if let Err(e) = std::fs::rename(tmp, path) {
        let _ = std::fs::remove_file(tmp);
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
        let mut files: Vec<(PathBuf, &[u8], bool)> = Vec::new();
        if let Some(k) = &self.key {
            files.push((format!("{prefix}-key.pem").into(), k.as_bytes(), true));
        }
        if let Some(c) = &self.csr {
            files.push((format!("{prefix}.csr").into(), c.as_bytes(), false));
        }
        if let Some(c) = &self.cert {
            files.push((format!("{prefix}.pem").into(), c.as_bytes(), false));
        }
        // All or nothing: every file is written and synced beside its
        // target before the first one is put in place, so a failure (no
        // such directory, disk full, a directory in the way) leaves no
        // partial bundle behind.
        let mut staged: Vec<(PathBuf, &Path)> = Vec::new();
        for (path, data, private) in &files {
            match stage(path, data, *private) {
                Ok(tmp) => staged.push((tmp, path)),
                Err(e) => {
                    for (tmp, _) in &staged {
                        let _ = std::fs::remove_file(tmp);
                    }
                    return Err(e);
                }
            }
        }
        for (i, (tmp, path)) in staged.iter().enumerate() {
            if let Err(e) = put_in_place(tmp, path) {
                for (rest, _) in &staged[i + 1..] {
                    let _ = std::fs::remove_file(rest);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Reads a file with a readable error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
