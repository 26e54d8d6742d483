//! Test helpers shared by the tests of several mpcluster crates. Only ever a dev-dependency:
//! nothing here is built into the daemon or the CLI.
//!
//! - [`ServingCert`]: a TLS server certificate and key at fixed paths, made with a throw-away
//!   CA ([`mpcluster_store::testing::TestCerts`]) and replaced in place to test reloads.
#![warn(missing_docs)]

use std::io;
use std::path::{Path, PathBuf};

use mpcluster_store::testing::{TestCerts, openssl_available};

/// Whether this run is CI (`CI=true`), where a missing test program is a failure, not a skip.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The certificate and key a TLS server under test loads (`serve --tls-cert/--tls-key`,
/// `ServerTls::load`). [`ServingCert::install`] puts a new pair from a new CA there.
#[derive(Debug)]
pub struct ServingCert {
    dir: PathBuf,
    /// The server certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
}

impl ServingCert {
    /// Serving paths in `dir` (`serving.pem`, `serving.key`), nothing installed yet. `None`
    /// (after saying why) when the `openssl` command is missing; under CI that panics.
    pub fn new(dir: &Path) -> Option<ServingCert> {
        if !openssl_available() {
            assert!(!under_ci(), "openssl is required under CI");
            eprintln!("SKIPPED: no openssl");
            return None;
        }
        Some(ServingCert {
            dir: dir.to_path_buf(),
            cert: dir.join("serving.pem"),
            key: dir.join("serving.key"),
        })
    }

    /// Generate a new CA and server certificate under `<dir>/<name>` and copy the server
    /// certificate and key to the serving paths. Returns the generated set (its `ca` is what a
    /// client trusts).
    pub fn install(&self, name: &str) -> io::Result<TestCerts> {
        let certs = TestCerts::generate(&self.dir.join(name)).map_err(io::Error::other)?;
        std::fs::copy(&certs.server_cert, &self.cert)?;
        std::fs::copy(&certs.server_key, &self.key)?;
        Ok(certs)
    }
}
