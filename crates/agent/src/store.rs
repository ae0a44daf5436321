//! Certificates on disk, switched atomically.
//!
//! Each issuance is written into a new *generation* directory
//! `<state_dir>/certs/<name>/gen-…/` (`key.pem` 0600 and `bundle.pem` 0600
//! when configured, `cert.pem`, `chain.pem`; every file fsynced, then the
//! directory).
//! A relative symbolic link `current` is then replaced by rename (atomic)
//! to point at the new generation, and the directory fsynced. The
//! configured paths (`key`, `cert`, `chain`, `bundle`) are symbolic links
//! to `…/<name>/current/<file>`, made once.
//!
//! The guarantee: at every instant, whatever crashes when, every configured
//! path resolves through the one `current` link to files of one complete
//! generation, so the key beside a certificate is always its key. A reader
//! that opens the key before a switch and the certificate after it can
//! still see two generations; such a reader checks the pair (the gateway
//! does, and retries) or reads `bundle`, a single file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::config::FileOutputs;
use crate::error::{AgentError, Result};

/// A key and the certificate issued for it.
pub struct Issued {
    /// The private key, PKCS#8 PEM.
    pub key_pem: Zeroizing<String>,
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The issuing CA certificate(s), PEM.
    pub chain_pem: String,
    /// When the agent received it (CAs backdate notBefore; the renewal
    /// point is counted from this).
    pub obtained: std::time::SystemTime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued([private key elided])")
    }
}

impl Issued {
    /// Key, leaf and CA certificates in one PEM text.
    pub fn bundle(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(
            self.key_pem.len() + self.cert_pem.len() + self.chain_pem.len() + 2,
        ));
        for part in [self.key_pem.as_str(), &self.cert_pem, &self.chain_pem] {
            s.push_str(part);
            if !part.ends_with('\n') {
                s.push('\n');
            }
        }
        s
    }
}

const KEY: &str = "key.pem";
const CERT: &str = "cert.pem";
const CHAIN: &str = "chain.pem";
const BUNDLE: &str = "bundle.pem";
const CURRENT: &str = "current";

/// Crash tests only: `PORTCULLIS_AGENT_TEST_PAUSE_MS` makes every step of
/// an install wait this long (at most 1 s), so that a SIGKILL lands in the
/// middle of the writes. Unset in normal use.
fn pause() {
    if let Some(ms) = std::env::var("PORTCULLIS_AGENT_TEST_PAUSE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(std::time::Duration::from_millis(ms.min(1000)));
    }
}

/// The generations directory of one certificate.
pub fn cert_dir(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("certs").join(name)
}

/// Makes a directory (and parents) with mode 0700 for new ones.
pub fn private_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| AgentError::io(dir, e))
}

/// Flushes a directory's entries (renames, new files) to disk.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AgentError::io(dir, e))
}

/// Creates `path` (must not exist) with `data`, fsynced.
fn create_file(path: &Path, data: &[u8], private: bool) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(if private { 0o600 } else { 0o644 });
    }
    let mut f = o.open(path).map_err(|e| AgentError::io(path, e))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(|e| AgentError::io(path, e))
}

/// Writes `data` to `path` atomically: a temp file in the same directory,
/// fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, data: &[u8], private: bool) -> Result<()> {
    let dir = parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| AgentError::Refused(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        unique()
    ));
    create_file(&tmp, data, private)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(AgentError::io(path, e));
    }
    sync_dir(dir)
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A number unique within this process and unlikely across processes.
fn unique() -> String {
    let mut b = [0u8; 6];
    let _ = aws_lc_rs::rand::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Replaces `link` by a symbolic link to `target`, atomically (a temp link
/// renamed over it), and syncs the directory.
#[cfg(unix)]
fn swap_link(link: &Path, target: &Path) -> Result<()> {
    if std::fs::read_link(link).ok().as_deref() == Some(target) {
        return Ok(());
    }
    let dir = parent(link);
    if link.is_dir() && !link.is_symlink() {
        return Err(AgentError::Refused(format!(
            "{} is a directory; the agent needs the path for a link to the certificate",
            link.display()
        )));
    }
    let name = link.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.link-{}-{}",
        name.unwrap_or_default(),
        std::process::id(),
        unique()
    ));
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| AgentError::io(&tmp, e))?;
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(AgentError::io(link, e));
    }
    sync_dir(dir)
}

#[cfg(not(unix))]
fn swap_link(_link: &Path, _target: &Path) -> Result<()> {
    Err(AgentError::Refused(
        "file outputs need symbolic links (Unix)".into(),
    ))
}

/// The current generation's certificate, if any, and when it was
/// obtained (from the generation's name).
pub fn current_cert(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(CURRENT).join(CERT)).ok()
}

/// When the current generation was made (its name holds the time).
pub fn current_obtained(dir: &Path) -> Option<std::time::SystemTime> {
    let target = std::fs::read_link(dir.join(CURRENT)).ok()?;
    let name = target.file_name()?.to_str()?;
    let millis: u64 = name.strip_prefix("gen-")?.split('-').next()?.parse().ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis))
}

/// Installs an issuance: new generation, `current` switched, configured
/// paths linked, older generations removed.
pub fn install(dir: &Path, outputs: &FileOutputs, issued: &Issued) -> Result<()> {
    private_dir(dir)?;
    let dir = std::path::absolute(dir).map_err(|e| AgentError::io(dir, e))?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let gen_name = format!("gen-{millis:016}-{}", unique());
    let gen = dir.join(&gen_name);
    private_dir(&gen)?;
    // The key is written only where the configuration asks for it (as
    // `key`, or inside `bundle`); the certificate always, the agent reads it.
    if outputs.key.is_some() {
        create_file(&gen.join(KEY), issued.key_pem.as_bytes(), true)?;
        pause();
    }
    create_file(&gen.join(CERT), issued.cert_pem.as_bytes(), false)?;
    pause();
    create_file(&gen.join(CHAIN), issued.chain_pem.as_bytes(), false)?;
    if outputs.bundle.is_some() {
        create_file(&gen.join(BUNDLE), issued.bundle().as_bytes(), true)?;
    }
    sync_dir(&gen)?;
    pause();
    swap_link(&dir.join(CURRENT), Path::new(&gen_name))?;
    pause();
    link_outputs(&dir, outputs)?;
    pause();
    // Older generations (and any half-made one) go: one key on disk.
    // Files a reader already opened stay readable until it closes them.
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with("gen-") && n != gen_name {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// Makes each configured path a link to the current generation's file
/// (done at every install and at start, so an interrupted first install is
/// completed).
pub fn link_outputs(dir: &Path, outputs: &FileOutputs) -> Result<()> {
    let dir = std::path::absolute(dir).map_err(|e| AgentError::io(dir, e))?;
    let cur = dir.join(CURRENT);
    for (path, file) in [
        (&outputs.key, KEY),
        (&outputs.cert, CERT),
        (&outputs.chain, CHAIN),
        (&outputs.bundle, BUNDLE),
    ] {
        if let Some(p) = path {
            let parent = parent(p);
            if !parent.exists() {
                std::fs::create_dir_all(parent).map_err(|e| AgentError::io(parent, e))?;
            }
            swap_link(p, &cur.join(file))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(n: u8) -> Issued {
        Issued {
            key_pem: Zeroizing::new(format!("KEY{n}\n")),
            cert_pem: format!("CERT{n}\n"),
            chain_pem: format!("CA{n}\n"),
            obtained: std::time::SystemTime::now(),
        }
    }

    #[test]
    fn generations_switch_together() {
        let t = tempfile::tempdir().expect("tempdir");
        let out = FileOutputs {
            key: Some(t.path().join("k.pem")),
            cert: Some(t.path().join("c.pem")),
            chain: None,
            bundle: Some(t.path().join("b.pem")),
        };
        let dir = cert_dir(&t.path().join("state"), "api");
        for n in 0..4 {
            install(&dir, &out, &issued(n)).expect("install");
            let k = std::fs::read_to_string(t.path().join("k.pem")).expect("key");
            let c = std::fs::read_to_string(t.path().join("c.pem")).expect("cert");
            assert_eq!(k, format!("KEY{n}\n"));
            assert_eq!(c, format!("CERT{n}\n"));
            let b = std::fs::read_to_string(t.path().join("b.pem")).expect("bundle");
            assert_eq!(b, format!("KEY{n}\nCERT{n}\nCA{n}\n"));
        }
        let gens = std::fs::read_dir(&dir)
            .expect("dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("gen-"))
            .count();
        assert_eq!(gens, 1, "only the current generation is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(t.path().join("k.pem")).expect("meta");
            assert_eq!(m.permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(current_cert(&dir).as_deref(), Some("CERT3\n"));
        let t = current_obtained(&dir).expect("time in the name");
        assert!(t.elapsed().expect("past") < std::time::Duration::from_secs(60));
    }

    #[test]
    fn a_regular_file_in_the_way_is_replaced_a_directory_is_refused() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join("k.pem"), "old").expect("write");
        std::fs::create_dir(t.path().join("c.pem")).expect("mkdir");
        let out = FileOutputs {
            key: Some(t.path().join("k.pem")),
            cert: Some(t.path().join("c.pem")),
            ..Default::default()
        };
        let dir = cert_dir(t.path(), "x");
        let e = install(&dir, &out, &issued(1)).expect_err("directory in the way");
        assert!(e.to_string().contains("is a directory"), "{e}");
    }
}
