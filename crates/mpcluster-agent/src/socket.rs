//! Where multipathd listens: [`SocketAddrSpec`] (what the operator asked for, parsed from
//! `--multipathd-socket`) and [`ResolvedSocket`] (a concrete address to connect to).
//!
//! multipathd listens on the abstract Unix socket `@/org/kernel/linux/storage/multipathd`
//! (all versions) and, from 0.12.0, also on `/run/multipathd.socket`, which libmpathcmd tries
//! first. Abstract sockets belong to a network namespace: an agent in a container on a
//! multipath-tools <= 0.11 host needs the host network namespace (or a socat proxy to a path).

use std::fmt;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The abstract socket name of multipathd, without the leading NUL and without a trailing NUL.
pub const ABSTRACT_SOCKET_NAME: &[u8] = b"/org/kernel/linux/storage/multipathd";

/// The path socket multipathd 0.12.0+ also listens on (chmod 0666).
pub const RUN_SOCKET_PATH: &str = "/run/multipathd.socket";

/// `sizeof(sockaddr_un.sun_path)` on Linux.
const SUN_PATH_LEN: usize = 108;

/// Which multipathd socket to use, as configured.
///
/// Parsed from a string ([`FromStr`]): `default`, `@name` for an abstract socket, or a path.
/// [`Display`](fmt::Display) prints the same forms back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SocketAddrSpec {
    /// `/run/multipathd.socket` if it exists (0.12.0+), falling back to the abstract socket.
    #[default]
    Default,
    /// A path socket.
    Path(PathBuf),
    /// An abstract socket: the name without the leading NUL (e.g. `/org/kernel/...`).
    Abstract(Vec<u8>),
}

/// A concrete socket address the client connects to (or the fake listens on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedSocket {
    /// A path socket.
    Path(PathBuf),
    /// An abstract socket name (no leading NUL).
    Abstract(Vec<u8>),
}

/// Why a `--multipathd-socket` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketSpecError {
    /// The value is empty.
    #[error("empty multipathd socket address (use `default`, `@name` or a path)")]
    Empty,
    /// `@` without a name.
    #[error("abstract socket name after `@` is empty")]
    EmptyAbstractName,
    /// The address contains a NUL byte.
    #[error("multipathd socket address {value:?} contains a NUL byte")]
    ContainsNul {
        /// The value as given.
        value: String,
    },
    /// The address does not fit into `sockaddr_un`.
    #[error("multipathd socket address {value:?} is {len} bytes long; at most {max} fit")]
    TooLong {
        /// The value as given.
        value: String,
        /// Its length in bytes (path, or abstract name without `@`).
        len: usize,
        /// The maximum for this kind of address.
        max: usize,
    },
}

impl FromStr for SocketAddrSpec {
    type Err = SocketSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(SocketSpecError::Empty);
        }
        if s.contains('\0') {
            return Err(SocketSpecError::ContainsNul {
                value: s.to_owned(),
            });
        }
        if s == "default" {
            return Ok(Self::Default);
        }
        if let Some(name) = s.strip_prefix('@') {
            if name.is_empty() {
                return Err(SocketSpecError::EmptyAbstractName);
            }
            // Abstract names take sun_path minus the leading NUL and need no terminator.
            let max = SUN_PATH_LEN - 1;
            if name.len() > max {
                return Err(SocketSpecError::TooLong {
                    value: s.to_owned(),
                    len: name.len(),
                    max,
                });
            }
            return Ok(Self::Abstract(name.as_bytes().to_vec()));
        }
        // Path names need their terminating NUL inside sun_path.
        let max = SUN_PATH_LEN - 1;
        if s.len() > max {
            return Err(SocketSpecError::TooLong {
                value: s.to_owned(),
                len: s.len(),
                max,
            });
        }
        Ok(Self::Path(PathBuf::from(s)))
    }
}

impl fmt::Display for SocketAddrSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Path(path) => write!(f, "{}", path.display()),
            Self::Abstract(name) => write!(f, "@{}", name.escape_ascii()),
        }
    }
}

impl SocketAddrSpec {
    /// The addresses to try, in order. For [`SocketAddrSpec::Default`] this looks at the file
    /// system: `/run/multipathd.socket` comes first when it exists.
    pub fn candidates(&self) -> Vec<ResolvedSocket> {
        self.candidates_with(Path::new(RUN_SOCKET_PATH))
    }

    /// [`Self::candidates`] with the 0.12+ path socket location replaced (for tests).
    pub(crate) fn candidates_with(&self, run_socket: &Path) -> Vec<ResolvedSocket> {
        match self {
            Self::Default => {
                let abstract_socket = ResolvedSocket::Abstract(ABSTRACT_SOCKET_NAME.to_vec());
                if run_socket.exists() {
                    vec![ResolvedSocket::Path(run_socket.to_owned()), abstract_socket]
                } else {
                    vec![abstract_socket]
                }
            }
            Self::Path(path) => vec![ResolvedSocket::Path(path.clone())],
            Self::Abstract(name) => vec![ResolvedSocket::Abstract(name.clone())],
        }
    }
}

impl ResolvedSocket {
    /// The std socket address, for `connect_addr` / `bind_addr`.
    pub fn to_socket_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Self::Path(path) => SocketAddr::from_pathname(path),
            Self::Abstract(name) => SocketAddr::from_abstract_name(name),
        }
    }
}

impl fmt::Display for ResolvedSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Path(path) => write!(f, "{}", path.display()),
            Self::Abstract(name) => write!(f, "@{}", name.escape_ascii()),
        }
    }
}

impl From<ResolvedSocket> for SocketAddrSpec {
    fn from(socket: ResolvedSocket) -> Self {
        match socket {
            ResolvedSocket::Path(path) => Self::Path(path),
            ResolvedSocket::Abstract(name) => Self::Abstract(name),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            "default".parse::<SocketAddrSpec>(),
            Ok(SocketAddrSpec::Default)
        );
        assert_eq!(
            "@/org/kernel/linux/storage/multipathd".parse::<SocketAddrSpec>(),
            Ok(SocketAddrSpec::Abstract(ABSTRACT_SOCKET_NAME.to_vec()))
        );
        assert_eq!(
            "/run/multipathd.socket".parse::<SocketAddrSpec>(),
            Ok(SocketAddrSpec::Path(PathBuf::from(
                "/run/multipathd.socket"
            )))
        );
        assert_eq!(
            "relative.sock".parse::<SocketAddrSpec>(),
            Ok(SocketAddrSpec::Path(PathBuf::from("relative.sock")))
        );
    }

    #[test]
    fn refuses_bad_values() {
        assert_eq!("".parse::<SocketAddrSpec>(), Err(SocketSpecError::Empty));
        assert_eq!(
            "@".parse::<SocketAddrSpec>(),
            Err(SocketSpecError::EmptyAbstractName)
        );
        assert!(matches!(
            "/tmp/a\0b".parse::<SocketAddrSpec>(),
            Err(SocketSpecError::ContainsNul { .. })
        ));
        assert!(matches!(
            format!("/{}", "x".repeat(107)).parse::<SocketAddrSpec>(),
            Err(SocketSpecError::TooLong {
                len: 108,
                max: 107,
                ..
            })
        ));
        assert!(
            format!("/{}", "x".repeat(106))
                .parse::<SocketAddrSpec>()
                .is_ok()
        );
        assert!(
            format!("@{}", "x".repeat(107))
                .parse::<SocketAddrSpec>()
                .is_ok()
        );
        assert!(
            format!("@{}", "x".repeat(108))
                .parse::<SocketAddrSpec>()
                .is_err()
        );
    }

    #[test]
    fn display_roundtrips() {
        for s in [
            "default",
            "@/org/kernel/linux/storage/multipathd",
            "/run/x.sock",
        ] {
            let spec: SocketAddrSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
            assert_eq!(spec.to_string().parse::<SocketAddrSpec>().unwrap(), spec);
        }
    }

    #[test]
    fn default_prefers_the_run_socket_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("multipathd.socket");
        assert_eq!(
            SocketAddrSpec::Default.candidates_with(&run),
            vec![ResolvedSocket::Abstract(ABSTRACT_SOCKET_NAME.to_vec())]
        );
        std::fs::write(&run, b"").unwrap();
        assert_eq!(
            SocketAddrSpec::Default.candidates_with(&run),
            vec![
                ResolvedSocket::Path(run.clone()),
                ResolvedSocket::Abstract(ABSTRACT_SOCKET_NAME.to_vec())
            ]
        );
        assert_eq!(
            ResolvedSocket::Abstract(ABSTRACT_SOCKET_NAME.to_vec()).to_string(),
            "@/org/kernel/linux/storage/multipathd"
        );
    }

    #[test]
    fn explicit_specs_resolve_to_themselves() {
        let spec = SocketAddrSpec::Path(PathBuf::from("/tmp/x.sock"));
        assert_eq!(
            spec.candidates(),
            vec![ResolvedSocket::Path(PathBuf::from("/tmp/x.sock"))]
        );
        let spec = SocketAddrSpec::Abstract(b"name".to_vec());
        assert_eq!(
            spec.candidates(),
            vec![ResolvedSocket::Abstract(b"name".to_vec())]
        );
        assert!(
            ResolvedSocket::Abstract(b"name".to_vec())
                .to_socket_addr()
                .unwrap()
                .as_abstract_name()
                .is_some()
        );
    }
}
