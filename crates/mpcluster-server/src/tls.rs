//! TLS for the API, both sides, with rustls and its `ring` provider only.
//!
//! - [`ServerTls`]: the server's certificate chain and key (PEM files), reloadable at run time
//!   ([`ServerTls::reload`]; `mpcluster serve` calls it on SIGHUP). A failed reload keeps the
//!   certificate in use.
//! - [`client_config`]: how the CLI trusts a server: a CA file (`--ca`) or the SHA-256
//!   fingerprint of the server's certificate (`--fingerprint`, for a self-signed certificate).
//! - [`fingerprint`]: the SHA-256 fingerprint of a DER certificate, as `serve` prints it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sha2::{Digest as _, Sha256};

/// Why TLS material cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or parsed.
    #[error("cannot read {what} {}: {reason}", path.display())]
    File {
        /// Which file (certificate, key, CA).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the material (key not matching the certificate, unsupported key, ...).
    #[error("invalid TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// Not a SHA-256 fingerprint.
    #[error("invalid certificate fingerprint {0:?}: expected 64 hex digits (colons allowed)")]
    Fingerprint(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let err = |reason: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate in it".to_owned()));
    }
    Ok(certs)
}

fn load_server_config(cert: &Path, key: &Path) -> Result<ServerConfig, TlsError> {
    let certs = read_certs("TLS certificate", cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::File {
        what: "TLS key",
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The server's TLS configuration, reloadable from its files.
#[derive(Debug)]
pub struct ServerTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<ServerConfig>, String)>,
}

impl ServerTls {
    /// Load the certificate chain (`cert`, PEM, leaf first) and private key (`key`, PEM).
    pub fn load(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        let config = load_server_config(cert, key)?;
        let fp = leaf_fingerprint(cert)?;
        Ok(ServerTls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new((Arc::new(config), fp)),
        })
    }

    /// Read the files again and use them for new connections. On error the previous
    /// certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = load_server_config(&self.cert, &self.key)?;
        let fp = leaf_fingerprint(&self.cert)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (Arc::new(config), fp);
        Ok(())
    }

    /// The configuration for the next connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    /// The SHA-256 fingerprint of the certificate in use (what `--fingerprint` takes).
    pub fn fingerprint(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .clone()
    }

    /// An acceptor for the next connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config())
    }
}

fn leaf_fingerprint(cert: &Path) -> Result<String, TlsError> {
    let certs = read_certs("TLS certificate", cert)?;
    Ok(fingerprint(certs[0].as_ref()))
}

/// The SHA-256 fingerprint of a DER certificate: 64 lowercase hex digits.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parse a SHA-256 fingerprint: 64 hex digits, any case, `:` separators allowed (as
/// `openssl x509 -fingerprint -sha256` prints it).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], TlsError> {
    let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
    let bad = || TlsError::Fingerprint(text.chars().take(120).collect());
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Trust exactly the server certificate with this SHA-256 fingerprint (name and chain are
/// not checked; the handshake signature is).
#[derive(Debug)]
struct Pinned {
    want: [u8; 32],
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if got == self.want {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate has the SHA-256 fingerprint {}, not the one given with --fingerprint",
                fingerprint(end_entity.as_ref())
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// How a client trusts the server.
#[derive(Debug, Clone)]
pub enum ServerTrust {
    /// Certificates signed by the CA(s) in this PEM file, for the server's name or IP address.
    Ca(PathBuf),
    /// Exactly the certificate with this SHA-256 fingerprint.
    Fingerprint([u8; 32]),
}

/// A rustls client configuration (ring provider) trusting the server as `trust` says.
pub fn client_config(trust: &ServerTrust) -> Result<ClientConfig, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let config = match trust {
        ServerTrust::Ca(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs("CA certificate", path)? {
                roots.add(cert).map_err(|e| TlsError::File {
                    what: "CA certificate",
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        ServerTrust::Fingerprint(want) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                want: *want,
                algs: provider().signature_verification_algorithms,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn fingerprints() {
        let fp = fingerprint(b"x");
        assert_eq!(fp.len(), 64);
        let parsed = parse_fingerprint(&fp).unwrap();
        let colons: Vec<String> = parsed.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_fingerprint(&colons.join(":")).unwrap(), parsed);
        assert!(parse_fingerprint("abc").is_err());
        assert!(parse_fingerprint(&"g".repeat(64)).is_err());
        assert!(parse_fingerprint(&"é".repeat(32)).is_err());
    }

    #[test]
    fn missing_files_are_named() {
        let e = ServerTls::load(Path::new("/nonexistent/c.pem"), Path::new("/x.key")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
        let e = client_config(&ServerTrust::Ca("/nonexistent/ca.pem".into())).unwrap_err();
        assert!(e.to_string().contains("CA certificate"), "{e}");
    }
}
