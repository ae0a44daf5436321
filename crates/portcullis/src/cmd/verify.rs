//! `portcullis verify`: the gateway's own client-certificate verifier
//! (`client-auth`) on files. Prints a JSON verdict on stdout; exit 0 valid,
//! 1 invalid, 2 usage or unreadable input (errors on stderr).
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use client_auth::{
    pem_or_der_certs, pem_or_der_crls, CertFacts, EkuPolicy, Strictness, TrustStore, UnixTime,
    Verdict,
};

/// Verify a client-certificate chain as the gateway would.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// PEM file with the leaf certificate first, then any intermediates
    /// the client would send (or one DER certificate).
    pub chain: PathBuf,
    /// Trusted CA certificates (PEM, any number per file). Repeatable.
    #[arg(long = "trust", value_name = "CA.pem", required = true)]
    pub trust: Vec<PathBuf>,
    /// Extra untrusted intermediates for path building (PEM).
    #[arg(long, value_name = "FILE")]
    pub intermediates: Option<PathBuf>,
    /// CRLs (PEM or DER). Repeatable. Every certificate of the path is
    /// checked against the CRL of its issuer when one is given; a
    /// certificate whose issuer has no CRL here is not checked (unlike
    /// `openssl verify -crl_check`). An expired CRL makes the chain invalid.
    #[arg(long = "crl", value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// Verification time (RFC 3339), default now.
    #[arg(long, value_name = "RFC3339")]
    pub time: Option<String>,
    /// Extended key usage the leaf must allow (if it has an EKU extension).
    #[arg(long, value_enum, default_value_t = Eku::Client)]
    pub eku: Eku,
    /// Extra RFC 5280 / CA/B Forum checks that some private PKIs fail.
    #[arg(long)]
    pub strict: bool,
    /// Tolerated clock skew in seconds (0 here, like openssl; the gateway's
    /// default is 60).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub skew: u64,
}

/// `--eku` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Eku {
    /// clientAuth (the gateway's policy).
    Client,
    /// serverAuth.
    Server,
    /// Any or none.
    Any,
}

/// Runs the command; see the module docs for exit codes.
pub fn run(a: VerifyArgs) -> ExitCode {
    match verify(&a) {
        Ok((json, valid)) => {
            println!("{json}");
            if valid {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

/// Everything that is a usage or input problem is an `Err` (exit 2); a
/// chain that does not verify is `Ok((json, false))`.
fn verify(a: &VerifyArgs) -> anyhow::Result<(serde_json::Value, bool)> {
    let now = match &a.time {
        None => UnixTime::now(),
        Some(t) => {
            let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .with_context(|| format!("--time {t:?} is not RFC 3339"))?;
            let secs = u64::try_from(t.unix_timestamp())
                .map_err(|_| anyhow::anyhow!("--time before 1970 is not supported"))?;
            UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
        }
    };
    let chain =
        pem_or_der_certs(&read(&a.chain)?).with_context(|| format!("{}", a.chain.display()))?;
    let mut b = TrustStore::builder()
        .eku(match a.eku {
            Eku::Client => EkuPolicy::Client,
            Eku::Server => EkuPolicy::Server,
            Eku::Any => EkuPolicy::Any,
        })
        .strictness(if a.strict {
            Strictness::Strict
        } else {
            Strictness::Standard
        })
        .skew_secs(a.skew);
    for p in &a.trust {
        let certs = pem_or_der_certs(&read(p)?).with_context(|| format!("{}", p.display()))?;
        b = b.anchors(certs);
    }
    if let Some(p) = &a.intermediates {
        for c in pem_or_der_certs(&read(p)?).with_context(|| format!("{}", p.display()))? {
            b = b.intermediate(c);
        }
    }
    for p in &a.crl {
        for c in pem_or_der_crls(&read(p)?).with_context(|| format!("{}", p.display()))? {
            b = b.crl(c);
        }
    }
    let store = b.build().context("trust store")?;
    let verdict = store.verify(&chain, now);
    let mut out = serde_json::json!({
        "verdict": verdict.status(),
        "reason": verdict.reason(),
    });
    if let Verdict::Invalid { detail, .. } = &verdict {
        out["detail"] = serde_json::Value::from(detail.as_ref());
    }
    if let Some(leaf) = chain.first() {
        if let Ok(f) = CertFacts::from_der(leaf) {
            out["leaf"] = serde_json::to_value(&f).context("facts to JSON")?;
        }
    }
    Ok((out, verdict.is_valid()))
}
