//! Which store to open: [`StoreSpec`] (parsed from the `--store` string) and the options the
//! CLI fills in ([`StoreOptions`], [`EtcdOptions`]).
//!
//! Spec grammar (every backend is known to the parser, compiled in or not; [`crate::open`]
//! says when one is not in this build):
//!
//! - `embedded` — the embedded store in [`default_embedded_dir`]
//! - `embedded:DIR` — the embedded store in `DIR`
//! - `pve` — the pve store on pmxcfs at [`DEFAULT_PVE_ROOT`] (`/etc/pve`)
//! - `pve:DIR` — the pve store with `DIR` as the pmxcfs root (another mount, or a plain
//!   directory holding a `.members` file, for tests)
//! - `etcd://HOST[:PORT][,HOST[:PORT]...][/CLUSTER]` — etcd; PORT defaults to 2379, CLUSTER
//!   (`[a-z0-9-]{1,64}`) to `default`. IPv6 hosts in brackets: `etcd://[::1]:2379`.
//!   `https://` is used towards the endpoints when [`EtcdOptions::tls`] is set.
//!
//! Secrets never come from the spec or argv: a password is read from a file or an environment
//! variable ([`PasswordSource`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::StoreError;
use crate::names::check_name;
pub use crate::pve::DEFAULT_PVE_ROOT;

/// The default etcd client port.
pub const DEFAULT_ETCD_PORT: u16 = 2379;
/// The cluster name used when the spec has none.
pub const DEFAULT_CLUSTER: &str = "default";
/// The backends the spec parser knows, in the order shown in errors.
pub const BACKENDS: &[&str] = &["embedded", "pve", "etcd"];

/// The spec syntax, shown in errors.
const SYNTAX: &str = "expected 'embedded', 'embedded:DIR', 'pve', 'pve:DIR' or \
     'etcd://HOST[:PORT][,HOST[:PORT]...][/CLUSTER]'";

/// Which store to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// Files in one directory on this host; standalone (no membership).
    Embedded {
        /// The directory; `None` = [`default_embedded_dir`].
        dir: Option<PathBuf>,
    },
    /// The Proxmox cluster filesystem (pmxcfs): files under its root, membership from
    /// corosync (`.members`).
    Pve {
        /// The pmxcfs root; `None` = [`DEFAULT_PVE_ROOT`]. The CLI's `--pve-root` sets it.
        root: Option<PathBuf>,
    },
    /// An etcd v3 cluster.
    Etcd(EtcdSpec),
}

impl Default for StoreSpec {
    /// The embedded store in its default directory.
    fn default() -> Self {
        StoreSpec::Embedded { dir: None }
    }
}

/// Where the etcd cluster is and which mpcluster cluster in it to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdSpec {
    /// `host:port` per endpoint, as given (port filled in), without scheme.
    pub endpoints: Vec<String>,
    /// The mpcluster cluster name: all keys live under `/mpcluster/<cluster>/`.
    pub cluster: String,
}

/// A spec string that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store spec {spec:?}: {problem}")]
pub struct SpecError {
    /// The spec as given (cut to 200 characters).
    pub spec: String,
    /// What is wrong with it.
    pub problem: String,
}

impl StoreSpec {
    /// The backend's name (`embedded`, `pve`, `etcd`).
    pub fn backend(&self) -> &'static str {
        match self {
            StoreSpec::Embedded { .. } => "embedded",
            StoreSpec::Pve { .. } => "pve",
            StoreSpec::Etcd(_) => "etcd",
        }
    }

    /// The pmxcfs root of a pve spec (the default filled in); `None` for other backends.
    pub fn pve_root(&self) -> Option<PathBuf> {
        match self {
            StoreSpec::Pve { root } => Some(
                root.clone()
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_PVE_ROOT)),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for StoreSpec {
    /// The spec string; parses back to an equal spec.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreSpec::Embedded { dir: None } => f.write_str("embedded"),
            StoreSpec::Embedded { dir: Some(d) } => write!(f, "embedded:{}", d.display()),
            StoreSpec::Pve { root: None } => f.write_str("pve"),
            StoreSpec::Pve { root: Some(r) } => write!(f, "pve:{}", r.display()),
            StoreSpec::Etcd(e) => write!(f, "etcd://{}/{}", e.endpoints.join(","), e.cluster),
        }
    }
}

impl FromStr for StoreSpec {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        let err = |problem: String| SpecError {
            spec: s.chars().take(200).collect(),
            problem,
        };
        if s == "embedded" {
            return Ok(StoreSpec::Embedded { dir: None });
        }
        if let Some(dir) = s.strip_prefix("embedded:") {
            if dir.is_empty() {
                return Err(err(
                    "no directory after 'embedded:' (use plain 'embedded' for the default directory)"
                        .into(),
                ));
            }
            return Ok(StoreSpec::Embedded {
                dir: Some(PathBuf::from(dir)),
            });
        }
        if s == "pve" {
            return Ok(StoreSpec::Pve { root: None });
        }
        if let Some(root) = s.strip_prefix("pve:") {
            if root.is_empty() {
                return Err(err(format!(
                    "no directory after 'pve:' (use plain 'pve' for {DEFAULT_PVE_ROOT})"
                )));
            }
            if root.starts_with("//") {
                return Err(err(format!(
                    "the pve store takes a directory, not a URL: 'pve:{DEFAULT_PVE_ROOT}' or \
                     plain 'pve'"
                )));
            }
            return Ok(StoreSpec::Pve {
                root: Some(PathBuf::from(root)),
            });
        }
        if let Some(rest) = s.strip_prefix("etcd://") {
            return parse_etcd(rest).map(StoreSpec::Etcd).map_err(err);
        }
        let scheme = s.split(':').next().unwrap_or(s);
        if scheme == "etcd" {
            return Err(err(format!("etcd specs start with 'etcd://'; {SYNTAX}")));
        }
        if scheme.is_empty() {
            return Err(err(format!("empty; {SYNTAX}")));
        }
        if s.trim_end_matches('/') == DEFAULT_PVE_ROOT {
            return Err(err(format!(
                "looks like the pmxcfs root; use 'pve' (or 'pve:{s}') for the pve store"
            )));
        }
        if s.starts_with('/') || s.starts_with('.') {
            return Err(err(format!(
                "looks like a directory; use 'embedded:{s}' for the embedded store there"
            )));
        }
        Err(err(format!(
            "unknown store backend '{scheme}' (known: {}); {SYNTAX}",
            BACKENDS.join(", ")
        )))
    }
}

fn parse_etcd(rest: &str) -> Result<EtcdSpec, String> {
    if rest.contains("://") {
        return Err(
            "endpoints have no scheme: give HOST[:PORT] only (TLS is chosen by the TLS options)"
                .into(),
        );
    }
    let (hosts, cluster) = match rest.split_once('/') {
        Some((h, c)) if !c.is_empty() => (h, c),
        Some((h, _)) => (h, DEFAULT_CLUSTER),
        None => (rest, DEFAULT_CLUSTER),
    };
    check_name("cluster name", cluster).map_err(|e| match e {
        StoreError::InvalidName { reason, .. } => format!("cluster name {cluster:?} {reason}"),
        other => other.to_string(),
    })?;
    if hosts.is_empty() {
        return Err(format!("no etcd endpoints; {SYNTAX}"));
    }
    let mut endpoints = Vec::new();
    for ep in hosts.split(',') {
        endpoints.push(parse_endpoint(ep)?);
    }
    Ok(EtcdSpec {
        endpoints,
        cluster: cluster.to_owned(),
    })
}

fn parse_endpoint(ep: &str) -> Result<String, String> {
    if ep.is_empty() {
        return Err("empty endpoint in the list (two commas, or a trailing comma?)".into());
    }
    let (host, port) = if let Some(v6) = ep.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("endpoint {ep:?}: missing ']' after the IPv6 address"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("endpoint {ep:?}: {addr:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("endpoint {ep:?}: expected ':PORT' after ']'"))?,
            ),
        };
        (format!("[{addr}]"), port)
    } else {
        let (host, port) = match ep.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (ep, None),
        };
        if host.is_empty() {
            return Err(format!("endpoint {ep:?} has no host"));
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            return Err(format!(
                "endpoint {ep:?}: host contains {c:?} (IPv6 addresses go in brackets)"
            ));
        }
        (host.to_owned(), port)
    };
    let port = match port {
        None => DEFAULT_ETCD_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "endpoint {ep:?}: port {p:?} is not a number from 1 to 65535"
                ));
            }
        },
    };
    Ok(format!("{host}:{port}"))
}

/// Everything besides the spec needed to open a store; `Default` suits production.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Options for the embedded backend.
    pub embedded: EmbeddedOptions,
    /// Options for the pve backend.
    pub pve: PveOptions,
    /// Options for the etcd backend.
    pub etcd: EtcdOptions,
}

/// Options for the pve backend; `Default` is pmxcfs's and Proxmox's own timing.
#[derive(Debug, Clone)]
pub struct PveOptions {
    /// How often the tree is checked for changes (only while someone is subscribed; pmxcfs
    /// reads come from local RAM). Default 1 s (pmxcfs's mtime resolution).
    pub poll_interval: Duration,
    /// Age after which a document lock directory left behind counts as abandoned and is
    /// taken over: pmxcfs's `CFS_LOCK_TIMEOUT`, 120 s. On pmxcfs itself pmxcfs decides (with
    /// its fixed 120 s); this value governs plain directories and how long a holder may keep
    /// a lock before committing (half of it).
    pub lock_timeout: Duration,
    /// How long a document write waits for its lock before failing with
    /// [`StoreError::Unavailable`]. Default 10 s, as Proxmox's `cfs_lock_file`.
    pub lock_wait: Duration,
}

impl Default for PveOptions {
    fn default() -> Self {
        PveOptions {
            poll_interval: Duration::from_secs(1),
            lock_timeout: crate::pve::PMXCFS_LOCK_TIMEOUT,
            lock_wait: crate::pve::PROXMOX_LOCK_WAIT,
        }
    }
}

/// Options for the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// How often the directory is checked for changes made by other processes (only while
    /// someone is subscribed). Default 500 ms.
    pub poll_interval: Duration,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Options for the etcd backend, filled by the CLI.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// TLS towards the endpoints (`https://`); `None` = plain `http://`.
    pub tls: Option<EtcdTls>,
    /// User and password, if etcd authentication is enabled.
    pub auth: Option<EtcdAuth>,
    /// Upper bound for one store operation, all endpoints and retries included; each
    /// attempt gets at most this long too. Default 3 s.
    pub request_timeout: Duration,
    /// TCP/TLS connect timeout per endpoint. Default 2 s.
    pub connect_timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            tls: None,
            auth: None,
            request_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// TLS files (PEM). All optional: without `ca_file` the platform roots are not used either,
/// so a CA is needed for any real TLS setup.
#[derive(Debug, Clone, Default)]
pub struct EtcdTls {
    /// CA certificate(s) to verify the etcd servers.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (mutual TLS); needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client private key; needs `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Server name to verify instead of the endpoint's host.
    pub domain: Option<String>,
}

/// etcd user credentials.
#[derive(Debug, Clone)]
pub struct EtcdAuth {
    /// The etcd user.
    pub user: String,
    /// Where the password comes from.
    pub password: PasswordSource,
}

/// Where a password comes from (never the command line).
#[derive(Debug, Clone)]
pub enum PasswordSource {
    /// A file holding the password; one trailing newline is ignored.
    File(PathBuf),
    /// An environment variable holding the password.
    Env(String),
    /// A value already in memory (tests, config loaded by the caller).
    Value(Secret),
}

/// A secret string whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PasswordSource {
    /// Read the password. `store` names the store in errors.
    pub fn resolve(&self, store: &str) -> Result<Secret, StoreError> {
        match self {
            PasswordSource::Value(s) => Ok(s.clone()),
            PasswordSource::File(path) => {
                let mut text =
                    std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                Ok(Secret(text))
            }
            PasswordSource::Env(var) => match std::env::var(var) {
                Ok(v) => Ok(Secret(v)),
                Err(std::env::VarError::NotPresent) => Err(StoreError::Config {
                    store: store.to_owned(),
                    problem: format!("password variable {var} is not set"),
                }),
                Err(std::env::VarError::NotUnicode(_)) => Err(StoreError::Config {
                    store: store.to_owned(),
                    problem: format!("password variable {var} is not valid UTF-8"),
                }),
            },
        }
    }
}

/// The embedded store's default directory: `/var/lib/mpcluster` for root; otherwise
/// `$XDG_STATE_HOME/mpcluster`, falling back to `~/.local/state/mpcluster`.
pub fn default_embedded_dir() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/mpcluster");
    }
    default_user_dir(
        std::env::var_os("XDG_STATE_HOME").as_deref().map(Path::new),
        std::env::var_os("HOME").as_deref().map(Path::new),
    )
}

fn default_user_dir(xdg_state_home: Option<&Path>, home: Option<&Path>) -> PathBuf {
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(x) = xdg_state_home.filter(|x| x.is_absolute()) {
        return x.join("mpcluster");
    }
    match home.filter(|h| !h.as_os_str().is_empty()) {
        Some(h) => h.join(".local/state/mpcluster"),
        None => PathBuf::from("/var/lib/mpcluster"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn etcd(eps: &[&str], cluster: &str) -> StoreSpec {
        StoreSpec::Etcd(EtcdSpec {
            endpoints: eps.iter().map(|s| s.to_string()).collect(),
            cluster: cluster.into(),
        })
    }

    #[test]
    fn parses_valid_specs() {
        let cases: &[(&str, StoreSpec)] = &[
            ("embedded", StoreSpec::Embedded { dir: None }),
            (
                "embedded:/tmp/x y",
                StoreSpec::Embedded {
                    dir: Some("/tmp/x y".into()),
                },
            ),
            ("pve", StoreSpec::Pve { root: None }),
            (
                "pve:/tmp/fixture root",
                StoreSpec::Pve {
                    root: Some("/tmp/fixture root".into()),
                },
            ),
            (
                "pve:rel/dir",
                StoreSpec::Pve {
                    root: Some("rel/dir".into()),
                },
            ),
            ("etcd://h1", etcd(&["h1:2379"], "default")),
            (
                "etcd://h1:2379,10.0.0.2:2479/prod-1",
                etcd(&["h1:2379", "10.0.0.2:2479"], "prod-1"),
            ),
            ("etcd://h1:1/", etcd(&["h1:1"], "default")),
            (
                "etcd://[::1]:2379,[fe80::1]",
                etcd(&["[::1]:2379", "[fe80::1]:2379"], "default"),
            ),
        ];
        for (s, want) in cases {
            let got: StoreSpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(&got, want, "{s}");
            // Display round-trips.
            assert_eq!(&got.to_string().parse::<StoreSpec>().unwrap(), want);
        }
    }

    #[test]
    fn explains_bad_specs() {
        let cases = [
            ("", "empty"),
            (
                "sqlite:/x",
                "unknown store backend 'sqlite' (known: embedded, pve, etcd)",
            ),
            (
                "pve:",
                "no directory after 'pve:' (use plain 'pve' for /etc/pve)",
            ),
            ("pve://h1", "the pve store takes a directory, not a URL"),
            ("/etc/pve", "looks like the pmxcfs root; use 'pve'"),
            ("/etc/pve/", "looks like the pmxcfs root; use 'pve'"),
            ("pvex", "unknown store backend 'pvex'"),
            (
                "/var/lib/x",
                "looks like a directory; use 'embedded:/var/lib/x'",
            ),
            ("embedded:", "no directory after 'embedded:'"),
            ("etcd:h1", "etcd specs start with 'etcd://'"),
            ("etcd://", "no etcd endpoints"),
            ("etcd:///c", "no etcd endpoints"),
            ("etcd://h1,,h2", "empty endpoint"),
            ("etcd://h1:x", "port \"x\" is not a number"),
            ("etcd://h1:0", "port \"0\" is not a number"),
            ("etcd://h1:70000", "port \"70000\""),
            ("etcd://http://h1", "endpoints have no scheme"),
            ("etcd://h1/Prod", "cluster name \"Prod\" contains 'P'"),
            ("etcd://h1/a/b", "cluster name \"a/b\" contains '/'"),
            ("etcd://[::1", "missing ']'"),
            ("etcd://[zz]:1", "not an IPv6 address"),
            ("etcd://a b", "host contains ' '"),
        ];
        for (s, want) in cases {
            let e = s.parse::<StoreSpec>().unwrap_err();
            assert!(e.to_string().contains(want), "{s}: {e}");
            assert!(e.to_string().starts_with("invalid store spec"), "{e}");
        }
    }

    #[test]
    fn pve_root_and_backend() {
        let spec: StoreSpec = "pve".parse().unwrap();
        assert_eq!(spec.backend(), "pve");
        assert_eq!(spec.pve_root(), Some(PathBuf::from("/etc/pve")));
        let spec: StoreSpec = "pve:/srv/t".parse().unwrap();
        assert_eq!(spec.pve_root(), Some(PathBuf::from("/srv/t")));
        assert_eq!(spec.to_string(), "pve:/srv/t");
        assert_eq!(StoreSpec::default().pve_root(), None);
        let o = PveOptions::default();
        assert_eq!(o.lock_timeout, Duration::from_secs(120));
        assert_eq!(o.lock_wait, Duration::from_secs(10));
    }

    #[test]
    fn default_dirs() {
        assert_eq!(
            default_user_dir(Some(Path::new("/s")), Some(Path::new("/h"))),
            PathBuf::from("/s/mpcluster")
        );
        assert_eq!(
            default_user_dir(Some(Path::new("rel")), Some(Path::new("/h"))),
            PathBuf::from("/h/.local/state/mpcluster")
        );
        assert_eq!(
            default_user_dir(None, None),
            PathBuf::from("/var/lib/mpcluster")
        );
    }

    #[test]
    fn password_sources() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(
            PasswordSource::File(f.clone())
                .resolve("s")
                .unwrap()
                .expose(),
            "s3cret"
        );
        let e = PasswordSource::File(dir.path().join("missing"))
            .resolve("s")
            .unwrap_err();
        assert!(matches!(e, StoreError::Io { .. }));
        let e = PasswordSource::Env("MPCLUSTER_TEST_SURELY_UNSET_VAR".into())
            .resolve("etcd store x")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot open etcd store x: password variable MPCLUSTER_TEST_SURELY_UNSET_VAR is not set"
        );
        assert_eq!(format!("{:?}", Secret::new("pw")), "Secret(<redacted>)");
    }
}
