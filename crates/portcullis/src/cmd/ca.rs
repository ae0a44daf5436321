//! `portcullis ca …`: the private CA on the command line.

use super::files::{read, Bundle};
use anyhow::{bail, Context, Result};
use pki::config::SigningPolicy;
use pki::csr_spec::CsrSpec;
use pki::custody::{CaKey, Custody, KeyRef, Secret};
use pki::issue::{CertificateAuthority, SignRequest};
use pki::log::{CertLog, CertRecord};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::OffsetDateTime;

#[derive(Debug, clap::Subcommand)]
pub enum CaCommand {
    /// Create a new self-signed root CA from a CSR JSON spec
    /// (writes PREFIX.pem, PREFIX-key.pem (0600), PREFIX.csr). The key is
    /// encrypted under the passphrase (PORTCULLIS_KEY_PASSPHRASE or
    /// --passphrase-file); without one, init refuses unless
    /// --insecure-plaintext-key is given.
    Init {
        /// CFSSL CSR JSON file.
        csr_json: PathBuf,
        /// Output prefix.
        #[arg(long, default_value = "ca")]
        out: String,
        /// Print cfssl's JSON {"cert","key","csr"} instead of writing files.
        #[arg(long)]
        stdout: bool,
        #[command(flatten)]
        pass: PassArgs,
        /// Generate the CA key inside a PKCS#11 token (an RFC 7512 pkcs11:
        /// URI: token, object label, module-path, pin-source) instead of a
        /// file; only the certificate and CSR are written.
        #[arg(long)]
        ca_key: Option<String>,
        /// Encrypted key file format: `native` (Argon2id + AES-256-GCM,
        /// PEM "PORTCULLIS ENCRYPTED PRIVATE KEY"; only Portcullis reads it)
        /// or `pkcs8` (PBES2 scrypt + AES-256-CBC, which `openssl pkey` reads).
        #[arg(long, value_enum, default_value_t = KeyFormat::Native, conflicts_with_all = ["ca_key", "insecure_plaintext_key"])]
        key_format: KeyFormat,
        /// Write the CA key unencrypted (0600) when no passphrase is given.
        /// Anyone who can read the file holds the CA.
        #[arg(long, conflicts_with_all = ["ca_key", "passphrase_file"])]
        insecure_plaintext_key: bool,
    },
    /// Generate a key and CSR here and get the certificate signed, locally
    /// (--ca/--ca-key) or by a remote CA (--remote; only the CSR travels).
    Gencert {
        /// CFSSL CSR JSON file.
        csr_json: PathBuf,
        #[command(flatten)]
        signer: SignerArgs,
        /// Output prefix.
        #[arg(long, default_value = "cert")]
        out: String,
        /// Print cfssl's JSON {"cert","key","csr"} instead of writing files.
        #[arg(long)]
        stdout: bool,
    },
    /// Sign (or re-sign) an existing CSR.
    Sign {
        /// PKCS#10 request (PEM or DER).
        csr_file: PathBuf,
        #[command(flatten)]
        signer: SignerArgs,
        /// Replace the CSR's SANs (comma-separated).
        #[arg(long)]
        hosts: Option<String>,
        /// Output prefix.
        #[arg(long, default_value = "cert")]
        out: String,
        /// Print cfssl's JSON {"cert"} instead of writing files.
        #[arg(long)]
        stdout: bool,
    },
    /// Serve the CFSSL-compatible CA API (/api/v1/cfssl/*) and OCSP (/ocsp).
    Serve(ServeArgs),
    /// Revoke a certificate by serial, in the issuance log or through a remote CA.
    Revoke {
        /// Serial number (decimal, as CFSSL; or hex with 0x).
        #[arg(long)]
        serial: String,
        /// Issuer key identifier (hex); defaults to the CA's (needs --ca).
        #[arg(long)]
        aki: Option<String>,
        /// Reason: keycompromise, superseded, cessationofoperation, … (default unspecified).
        #[arg(long, default_value = "unspecified")]
        reason: String,
        /// The issuance log (SQLite file).
        #[arg(long)]
        db: Option<String>,
        /// The CA certificate (to find its key identifier).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Revoke through a remote CA instead.
        #[arg(long)]
        remote: Option<String>,
    },
    /// Produce a CRL of the revoked certificates in the issuance log.
    Crl {
        /// CA certificate.
        #[arg(long)]
        ca: PathBuf,
        /// CA private key: PEM path, pkcs11: URI or sealed:PATH.
        #[arg(long)]
        ca_key: String,
        #[command(flatten)]
        pass: PassArgs,
        /// The issuance log (SQLite file).
        #[arg(long)]
        db: String,
        /// CRL lifetime (Go duration).
        #[arg(long, default_value = "168h")]
        expiry: String,
        /// Output file (PEM; DER with --der). Default: PEM on stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write DER instead of PEM.
        #[arg(long)]
        der: bool,
    },
    /// Seal a CA key under M-of-N shares: writes DIR/sealed-key.json and
    /// DIR/share-1.json … share-N.json (each encrypted to its holder's
    /// passphrase, Argon2id). Serve it with --ca-key sealed:DIR/sealed-key.json.
    Split {
        /// The CA key to seal (PEM path; encrypted keys need their passphrase).
        #[arg(long)]
        ca_key: String,
        #[command(flatten)]
        pass: PassArgs,
        /// Number of shares (N).
        #[arg(long)]
        shares: u8,
        /// Shares needed to unseal (M).
        #[arg(long)]
        threshold: u8,
        /// Holders' passphrase files, comma-separated, one per share in order.
        #[arg(long, value_delimiter = ',')]
        share_passphrase_files: Vec<PathBuf>,
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Submit one holder's share to a running, sealed CA. The share is
    /// decrypted here with its passphrase (--passphrase-file or
    /// PORTCULLIS_KEY_PASSPHRASE); the call is HMAC-authenticated.
    Unseal {
        /// The CA (http://host:port).
        #[arg(long)]
        remote: String,
        /// The holder's share file.
        #[arg(long)]
        share: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// The CA's admin HMAC key (hex, as in auth_keys).
        #[arg(long)]
        admin_key_file: PathBuf,
    },
    /// Seal a running CA again: its key is wiped from memory.
    Seal {
        /// The CA (http://host:port).
        #[arg(long)]
        remote: String,
        /// The CA's admin HMAC key (hex, as in auth_keys).
        #[arg(long)]
        admin_key_file: PathBuf,
    },
    /// The key-use audit log (hash-chained, in the issuance log's SQLite file).
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// How `ca init` encrypts the key file it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyFormat {
    /// Argon2id + AES-256-GCM (`pki::custody::native`).
    Native,
    /// PKCS#8 PBES2 (scrypt, AES-256-CBC), readable by `openssl pkey`.
    Pkcs8,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the key-use log: prints JSON
    /// {"ok","entries","broken"}; exit 0 intact, 1 at the first broken
    /// entry, 2 when the log cannot be read.
    Verify {
        /// The issuance log (SQLite file).
        #[arg(long, default_value = "portcullis-ca.db")]
        db: String,
    },
}

/// Runs a `ca` command to an exit code (`ca audit verify` has its own).
pub fn main(c: CaCommand) -> std::process::ExitCode {
    match c {
        CaCommand::Audit(AuditCommand::Verify { db }) => audit_verify(&db),
        c => super::exit(run(c)),
    }
}

fn audit_verify(db: &str) -> std::process::ExitCode {
    use std::process::ExitCode;
    let report = match open_existing_log(db).and_then(|l| Ok(l.audit_verify()?)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let ok = report.broken.is_none();
    println!(
        "{}",
        serde_json::json!({ "ok": ok, "entries": report.entries, "broken": report.broken })
    );
    if let Some(b) = &report.broken {
        eprintln!("audit log broken at entry {}: {}", b.seq, b.reason);
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Where a key passphrase comes from: never the command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PassArgs {
    /// File holding the key passphrase (one trailing newline ignored);
    /// else the PORTCULLIS_KEY_PASSPHRASE environment variable.
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

impl PassArgs {
    /// The passphrase, if one was given.
    fn get(&self) -> Result<Option<Secret>> {
        if let Some(p) = &self.passphrase_file {
            return Ok(Some(Secret::from_file(p)?));
        }
        Ok(std::env::var("PORTCULLIS_KEY_PASSPHRASE")
            .ok()
            .filter(|v| !v.is_empty())
            .map(|v| Secret::new(zeroize::Zeroizing::new(v).as_bytes().to_vec())))
    }
}

#[derive(Debug, clap::Args)]
pub struct SignerArgs {
    /// CA certificate (local signing).
    #[arg(long, requires = "ca_key", conflicts_with = "remote")]
    ca: Option<PathBuf>,
    /// CA private key (local signing): PEM path (plaintext or encrypted
    /// PKCS#8), pkcs11: URI, or sealed:PATH.
    #[arg(long, requires = "ca")]
    ca_key: Option<String>,
    #[command(flatten)]
    pass: PassArgs,
    /// Remote CA URL (http://host:port); only the CSR is sent.
    #[arg(long)]
    remote: Option<String>,
    /// CFSSL signing config JSON (profiles, auth keys, remotes).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Signing profile (unknown profiles are an error).
    #[arg(long, default_value = "")]
    profile: String,
    /// Issuance log to record locally signed certificates in (SQLite file).
    #[arg(long)]
    db: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// CA certificate.
    #[arg(long)]
    ca: PathBuf,
    /// CA private key: PEM path (plaintext or encrypted PKCS#8), RFC 7512
    /// pkcs11: URI, or sealed:PATH (starts sealed; see `ca unseal`).
    #[arg(long)]
    ca_key: String,
    #[command(flatten)]
    pass: PassArgs,
    /// CFSSL signing config JSON (default: CFSSL's built-in policy).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Port to bind (0 picks a free one; the chosen address is printed).
    #[arg(long, default_value_t = 8888)]
    port: u16,
    /// Issuance log: an SQLite file path (or sqlite:PATH).
    #[arg(long, default_value = "portcullis-ca.db")]
    db: String,
    /// HMAC key (hex, as in auth_keys) that authenticates `ca unseal` and
    /// `ca seal` calls; without it those calls are refused.
    #[arg(long)]
    admin_key_file: Option<PathBuf>,
    /// OCSP response lifetime (Go duration).
    #[arg(long, default_value = "1h")]
    ocsp_validity: String,
    /// Default CRL lifetime (Go duration).
    #[arg(long, default_value = "168h")]
    crl_validity: String,
}

pub fn run(c: CaCommand) -> Result<()> {
    match c {
        CaCommand::Init {
            csr_json,
            out,
            stdout,
            pass,
            ca_key,
            key_format,
            insecure_plaintext_key,
        } => {
            let spec = CsrSpec::from_json(&read(&csr_json)?)
                .with_context(|| format!("in {}", csr_json.display()))?;
            if let Some(r) = ca_key {
                return init_in_token(&spec, &r, &out, stdout);
            }
            let pass = pass.get()?;
            if pass.is_some() && insecure_plaintext_key {
                bail!(
                    "--insecure-plaintext-key and a passphrase (PORTCULLIS_KEY_PASSPHRASE) were both given: choose one"
                );
            }
            let root = pki::issue::init_root(&spec, OffsetDateTime::now_utc())?;
            // Encrypted at rest; plaintext (0600) only when asked for
            // explicitly, and said loudly. Nothing is written otherwise.
            let key = match (&pass, key_format) {
                (Some(p), KeyFormat::Native) => pki::custody::native::encrypt_pem(&root.key, p)?,
                (Some(p), KeyFormat::Pkcs8) => pki::custody::encrypted::encrypt_pem(&root.key, p)?,
                (None, _) if insecure_plaintext_key => {
                    eprintln!(
                        "warning: the CA key is written unencrypted (--insecure-plaintext-key); anyone who can read it holds the CA"
                    );
                    root.key.to_pem()
                }
                (None, _) => bail!(
                    "refusing to write the CA key unencrypted: give a passphrase in the \
                     PORTCULLIS_KEY_PASSPHRASE environment variable or with --passphrase-file FILE, \
                     or pass --insecure-plaintext-key to write it in plaintext"
                ),
            };
            Bundle {
                cert: Some(root.cert_pem),
                key: Some(key),
                csr: Some(root.csr_pem),
            }
            .emit(&out, stdout)
        }
        CaCommand::Gencert {
            csr_json,
            signer,
            out,
            stdout,
        } => {
            let spec = CsrSpec::from_json(&read(&csr_json)?)
                .with_context(|| format!("in {}", csr_json.display()))?;
            let policy = load_policy(signer.config.as_deref())?;
            // Refuse an unknown profile before making a key (without a
            // config, a remote CA is the judge of its profiles).
            if signer.remote.is_none() || signer.config.is_some() {
                policy.profile(&signer.profile)?;
            }
            let (key, csr) = spec.generate()?;
            let hosts = (!spec.hosts.is_empty()).then(|| spec.hosts.clone());
            let cert = sign_csr(&signer, &policy, csr.as_bytes(), hosts)?;
            Bundle {
                cert: Some(cert),
                key: Some(key.to_pem()),
                csr: Some(csr),
            }
            .emit(&out, stdout)
        }
        CaCommand::Sign {
            csr_file,
            signer,
            hosts,
            out,
            stdout,
        } => {
            let policy = load_policy(signer.config.as_deref())?;
            let csr = read(&csr_file)?;
            let hosts = hosts.map(|h| h.split(',').map(|s| s.trim().to_string()).collect());
            let cert = sign_csr(&signer, &policy, &csr, hosts)?;
            Bundle {
                cert: Some(cert),
                ..Default::default()
            }
            .emit(&out, stdout)
        }
        CaCommand::Serve(a) => serve(a),
        CaCommand::Split {
            ca_key,
            pass,
            shares,
            threshold,
            share_passphrase_files,
            out,
        } => split(
            &ca_key,
            &pass,
            shares,
            threshold,
            &share_passphrase_files,
            &out,
        ),
        CaCommand::Unseal {
            remote,
            share,
            pass,
            admin_key_file,
        } => {
            let text = read(&share)?;
            let text = String::from_utf8(text).context("the share file is not UTF-8")?;
            let pass = pass.get()?.context(
                "give the share's passphrase (--passphrase-file or PORTCULLIS_KEY_PASSPHRASE)",
            )?;
            let secret = pki::custody::sealed::open_share(&text, &pass)
                .with_context(|| format!("share file {}", share.display()))?;
            let admin = admin_key(&admin_key_file)?;
            use base64::Engine;
            let req = serde_json::json!({
                "key_id": secret.key_id,
                "share": base64::engine::general_purpose::STANDARD.encode(secret.expose()),
            });
            let client = ca_api::client::RemoteCa::new(&remote)?;
            let r = runtime()?.block_on(client.custody_call("unseal", req, &admin))?;
            println!("{r}");
            Ok(())
        }
        CaCommand::Seal {
            remote,
            admin_key_file,
        } => {
            let admin = admin_key(&admin_key_file)?;
            let client = ca_api::client::RemoteCa::new(&remote)?;
            let r =
                runtime()?.block_on(client.custody_call("seal", serde_json::json!({}), &admin))?;
            println!("{r}");
            Ok(())
        }
        CaCommand::Audit(AuditCommand::Verify { db }) => {
            if audit_verify(&db) == std::process::ExitCode::SUCCESS {
                Ok(())
            } else {
                bail!("audit verification failed")
            }
        }
        CaCommand::Revoke {
            serial,
            aki,
            reason,
            db,
            ca,
            remote,
        } => revoke(serial, aki, reason, db, ca, remote),
        CaCommand::Crl {
            ca,
            ca_key,
            pass,
            db,
            expiry,
            out,
            der,
        } => {
            let validity = pki::duration::parse_go_duration(&expiry)
                .map_err(|e| anyhow::anyhow!("--expiry: {e}"))?;
            if validity.is_zero() {
                bail!("--expiry must be positive");
            }
            let ca = load_ca(&ca, &ca_key, &pass)?;
            ca.key().ready()?;
            let log = open_existing_log(&db)?;
            let now = OffsetDateTime::now_utc();
            let revoked = log.revoked(ca.aki_hex(), now)?;
            let number = log.next_counter(&format!("crl:{}", ca.aki_hex()))?;
            let crl = pki::crl::make_crl(
                ca.cert_der(),
                ca.key(),
                &revoked,
                number,
                now,
                now + validity,
            )?;
            log.audit_append(
                "crl",
                &serde_json::json!({ "aki": ca.aki_hex(), "number": number, "entries": revoked.len() }),
            )?;
            let bytes = if der {
                crl
            } else {
                pki::crl::crl_to_pem(&crl).into_bytes()
            };
            match out {
                Some(p) => super::files::write_atomic(&p, &bytes, false),
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(&bytes)?;
                    Ok(())
                }
            }
        }
    }
}

fn load_policy(config: Option<&Path>) -> Result<SigningPolicy> {
    match config {
        Some(p) => {
            Ok(SigningPolicy::from_json(&read(p)?)
                .with_context(|| format!("in {}", p.display()))?)
        }
        None => Ok(SigningPolicy::builtin()),
    }
}

/// Opens a CA key reference (CONTRACT section 7). The error names the
/// reference's kind and path, never a passphrase or PIN.
fn load_key(key_ref: &str, pass: &PassArgs) -> Result<CaKey> {
    let r = KeyRef::parse(key_ref)?;
    let what = match &r {
        KeyRef::File(p) | KeyRef::Sealed(p) => p.display().to_string(),
        KeyRef::Pkcs11(u) => format!("PKCS#11 token {:?} object {:?}", u.token, u.object),
    };
    let pass = match &r {
        KeyRef::File(_) => pass.get()?,
        _ => None,
    };
    CaKey::open(&r, pass.as_ref()).with_context(|| format!("CA key {what}"))
}

fn load_ca(cert: &Path, key: &str, pass: &PassArgs) -> Result<CertificateAuthority<CaKey>> {
    let key = load_key(key, pass)?;
    CertificateAuthority::new(&read(cert)?, key).with_context(|| format!("CA {}", cert.display()))
}

/// `ca init --ca-key pkcs11:…`: the key is made in the token and never
/// leaves it; only the certificate and CSR are written.
#[cfg(feature = "pkcs11")]
fn init_in_token(spec: &CsrSpec, key_ref: &str, out: &str, stdout: bool) -> Result<()> {
    let KeyRef::Pkcs11(uri) = KeyRef::parse(key_ref)? else {
        bail!("ca init --ca-key takes a pkcs11: URI (file keys are written to --out)");
    };
    spec.validate()?;
    let alg = spec.key_request().algorithm()?;
    let token = pki::custody::pkcs11::generate(&uri, alg)
        .with_context(|| format!("PKCS#11 token {:?}", uri.token))?;
    let key = CaKey::token(token);
    let (cert, csr) = pki::issue::init_root_with_key(spec, &key, OffsetDateTime::now_utc())?;
    Bundle {
        cert: Some(cert),
        key: None,
        csr: Some(csr),
    }
    .emit(out, stdout)
}

#[cfg(not(feature = "pkcs11"))]
fn init_in_token(_: &CsrSpec, _: &str, _: &str, _: bool) -> Result<()> {
    bail!("this build has no PKCS#11 support (cargo feature pkcs11)")
}

/// Reads an admin HMAC key file: hex, at least 16 bytes.
fn admin_key(path: &Path) -> Result<pki::config::AuthKey> {
    let text = Secret::from_file(path)?;
    let hex_text = std::str::from_utf8(text.expose())
        .unwrap_or_default()
        .trim();
    let bytes = hex::decode(hex_text)
        .ok()
        .filter(|b| b.len() >= 16)
        .with_context(|| {
            format!(
                "admin key file {} must hold at least 16 bytes as hex",
                path.display()
            )
        })?;
    Ok(pki::config::AuthKey::new("admin", bytes))
}

fn split(
    ca_key: &str,
    pass: &PassArgs,
    shares: u8,
    threshold: u8,
    pass_files: &[PathBuf],
    out: &Path,
) -> Result<()> {
    if pass_files.len() != usize::from(shares) {
        bail!(
            "--shares {shares} needs {shares} --share-passphrase-files, got {}",
            pass_files.len()
        );
    }
    let r = KeyRef::parse(ca_key)?;
    let KeyRef::File(path) = &r else {
        bail!("ca split seals a key file; {ca_key} is not one");
    };
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let (key, _) = pki::custody::encrypted::read_pem(&text, pass.get()?.as_ref())
        .with_context(|| format!("CA key {}", path.display()))?;
    let passes = pass_files
        .iter()
        .map(|p| Secret::from_file(p).with_context(|| format!("{}", p.display())))
        .collect::<Result<Vec<_>>>()?;
    let s = pki::custody::sealed::split(&key, threshold, &passes)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for (i, share) in s.shares.iter().enumerate() {
        super::files::write_atomic(
            &out.join(format!("share-{}.json", i + 1)),
            share.as_bytes(),
            true,
        )?;
    }
    super::files::write_atomic(&out.join("sealed-key.json"), s.sealed.as_bytes(), true)?;
    eprintln!(
        "sealed {threshold}-of-{shares}: {}/sealed-key.json and share-1..{shares}.json; \
         give each holder their share, then remove the unsealed key {}",
        out.display(),
        path.display()
    );
    Ok(())
}

fn db_path(db: &str) -> PathBuf {
    PathBuf::from(
        db.strip_prefix("sqlite://")
            .or_else(|| db.strip_prefix("sqlite:"))
            .unwrap_or(db),
    )
}

/// Opens an issuance log that must already exist: a mistyped path must not
/// become a fresh, empty log (whose CRL would list nothing as revoked).
fn open_existing_log(db: &str) -> Result<CertLog> {
    let path = db_path(db);
    if !path.is_file() {
        bail!("no issuance log at {}", path.display());
    }
    CertLog::open(&path).with_context(|| format!("issuance log {}", path.display()))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Signs a CSR locally or remotely, per the arguments and the profile.
fn sign_csr(
    a: &SignerArgs,
    policy: &SigningPolicy,
    csr: &[u8],
    hosts: Option<Vec<String>>,
) -> Result<String> {
    let profile = match policy.profile(&a.profile) {
        Ok(p) => Some(p),
        // Without a local config, the remote CA knows its own profiles.
        Err(_) if a.remote.is_some() && a.config.is_none() => None,
        Err(e) => return Err(e.into()),
    };
    let remote = a
        .remote
        .clone()
        .or_else(|| profile.and_then(|p| p.remote.clone()));
    if let Some(remote) = remote {
        let client = ca_api::client::RemoteCa::new(&remote)?;
        let auth = profile.and_then(|p| p.remote_auth_key.as_ref().or(p.auth_key.as_ref()));
        let mut req = serde_json::json!({
            "certificate_request": String::from_utf8_lossy(csr),
            "profile": a.profile,
            "label": "",
        });
        if let Some(h) = hosts {
            req["hosts"] = h.into();
        }
        return Ok(runtime()?.block_on(client.sign(&req, auth))?);
    }
    let (Some(ca), Some(key)) = (&a.ca, &a.ca_key) else {
        bail!("give --ca and --ca-key to sign locally, or --remote URL");
    };
    let ca = load_ca(ca, key, &a.pass)?;
    ca.key().ready()?;
    let issued = ca.sign(
        policy,
        &SignRequest {
            csr: csr.to_vec(),
            hosts,
            profile: a.profile.clone(),
            subject: None,
        },
        OffsetDateTime::now_utc(),
    )?;
    match &a.db {
        Some(db) => {
            CertLog::open(db_path(db))?.record(CertRecord::from_issued(&issued, ca.subject()))?
        }
        None => tracing::warn!("no --db given: the certificate is not recorded in an issuance log"),
    }
    Ok(issued.pem)
}

fn serve(a: ServeArgs) -> Result<()> {
    let key = load_key(&a.ca_key, &a.pass)?;
    match key.custody() {
        Custody::Plaintext => eprintln!(
            "warning: the CA key {} is stored unencrypted (see docs/key-custody.md)",
            a.ca_key
        ),
        Custody::Sealed => {
            eprintln!("portcullis ca serve: the CA key is sealed; it signs nothing until unsealed")
        }
        Custody::Encrypted | Custody::Token => {}
    }
    let ca_pem = read(&a.ca)?;
    let ca = CertificateAuthority::new(&ca_pem, key.clone())
        .with_context(|| format!("CA {}", a.ca.display()))?;
    let ocsp = pki::ocsp::OcspResponder::new(ca.cert_der().to_vec(), key)
        .map_err(|e| anyhow::anyhow!("OCSP responder: {e}"))?;
    let policy = load_policy(a.config.as_deref())?;
    let dur = |flag: &str, s: &str| -> Result<time::Duration> {
        let d =
            pki::duration::parse_go_duration(s).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))?;
        Ok(time::Duration::try_from(d)?)
    };
    let ocsp_validity = dur("ocsp-validity", &a.ocsp_validity)?;
    let crl_validity = dur("crl-validity", &a.crl_validity)?;
    let log = CertLog::open(db_path(&a.db)).with_context(|| format!("issuance log {}", a.db))?;
    let state = Arc::new(ca_api::CaState {
        label: ca.subject().to_string(),
        ca,
        ocsp,
        ocsp_validity,
        crl_validity,
        policy,
        log,
        admin_key: a.admin_key_file.as_deref().map(admin_key).transpose()?,
    });
    runtime()?.block_on(async move {
        let addr = format!("{}:{}", a.address, a.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        eprintln!("portcullis ca serve: listening on http://{local}");
        tracing::info!(%local, "CA API listening");
        ca_api::serve(listener, state, shutdown_signal()).await?;
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn revoke(
    serial: String,
    aki: Option<String>,
    reason: String,
    db: Option<String>,
    ca: Option<PathBuf>,
    remote: Option<String>,
) -> Result<()> {
    let serial = if let Some(h) = serial.strip_prefix("0x") {
        pki::serial::Serial::from_hex(h)
    } else {
        pki::serial::Serial::from_decimal(&serial)
    }
    .context("--serial must be a decimal number (or hex with 0x)")?;
    let reason: pki::revocation::RevocationReason = reason
        .parse()
        .map_err(|e| anyhow::anyhow!("--reason: {e}"))?;
    let aki = match (aki, &ca) {
        (Some(a), _) => a.to_ascii_lowercase().replace(':', ""),
        (None, Some(ca)) => pki::info::cert_info(&read(ca)?)?.subject_key_id,
        (None, None) if remote.is_some() => String::new(),
        (None, None) => bail!("give --aki or --ca to name the issuer"),
    };
    if let Some(remote) = remote {
        let client = ca_api::client::RemoteCa::new(&remote)?;
        let body = serde_json::json!({
            "serial": serial.to_decimal(),
            "authority_key_id": aki,
            "reason": reason.as_str(),
        });
        runtime()?.block_on(client.call("revoke", &body))?;
        return Ok(());
    }
    let db = db.context("give --db (the issuance log) or --remote")?;
    let log = open_existing_log(&db)?;
    log.revoke(
        &serial.to_decimal(),
        &aki,
        reason,
        OffsetDateTime::now_utc(),
    )?;
    eprintln!(
        "revoked serial {} ({})",
        serial.to_decimal(),
        reason.as_str()
    );
    Ok(())
}
