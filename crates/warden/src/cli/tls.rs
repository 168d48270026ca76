//! The HTTPS flags `serve` and `chat` share: a certificate and key, optionally a CA
//! whose client certificates are required; checked before anything starts.

use std::path::PathBuf;

use clap::Args;

use super::UsageError;
use crate::http::tls::TlsFiles;

/// `--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]`.
#[derive(Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM); re-read on SIGHUP.
    #[arg(
        long,
        env = "WARDEN_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(
        long,
        env = "WARDEN_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM): mutual TLS.
    #[arg(
        long,
        env = "WARDEN_TLS_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
}

impl TlsArgs {
    /// The files, each checked to exist (a usage error naming the flag otherwise), or
    /// `None` for plain HTTP.
    pub fn files(&self) -> Result<Option<TlsFiles>, UsageError> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let exists = |flag: &str, p: &PathBuf| {
            if p.is_file() {
                Ok(p.clone())
            } else {
                Err(UsageError(format!("{flag} {}: no such file", p.display())))
            }
        };
        Ok(Some(TlsFiles {
            cert: exists("--tls-cert", cert)?,
            key: exists("--tls-key", key)?,
            client_ca: self
                .tls_client_ca
                .as_ref()
                .map(|c| exists("--tls-client-ca", c))
                .transpose()?,
        }))
    }
}
