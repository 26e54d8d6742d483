//! Having the installed multipath-tools parser judge a candidate configuration before
//! multipathd is told to reconfigure.
//!
//! Entry point: [`ParserCheck::run`]. `multipath -t` reads the fixed paths
//! `/etc/multipath.conf` and `/etc/multipath/conf.d/*.conf`, prints the merged configuration
//! on stdout and reports what it skipped or dropped on stderr, with exit code 0. Under the
//! root `/` it runs as is ([`ParserRun::Direct`]). Under another root (tests, the lab) it runs
//! in a private mount namespace ([`ParserRun::Namespace`]): `unshare --mount` runs a short
//! shell script that mounts an overlay over `/etc` (its upper layer on a tmpfs, so the host's
//! `/etc` is never written), puts the root's `etc/multipath.conf` and `etc/multipath/conf.d`
//! there with bind mounts, and execs `multipath -t`; that needs `CAP_SYS_ADMIN` (root).
//!
//! Running is done here; what the stderr means is decided by
//! [`mpcluster_core::config::parser_output`] (pure, tested on real output).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use mpcluster_core::config::{ParserOutput, read_parser_stderr};
use tokio::io::AsyncReadExt as _;

/// Where multipath-tools installs `multipath` (Debian: `/usr/sbin`; older: `/sbin`).
pub const DEFAULT_MULTIPATH_PATHS: [&str; 2] = ["/usr/sbin/multipath", "/sbin/multipath"];

/// How long `multipath -t` may take (it only parses files; seconds would be a lot).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The namespace mounts its tmpfs on this directory under the root (relative to it). A fixed
/// place rather than a fresh temp dir: it stays empty on the host, so an agent killed in the
/// middle of a check leaves nothing behind.
pub const SCRATCH_DIR: &str = "var/lib/mpcluster/parser-check";

/// Most stderr bytes kept (the rest is read and dropped, so the child never blocks).
const MAX_STDERR: u64 = 256 * 1024;

/// Printed on stderr by the namespace script right before it execs `multipath`: what comes
/// before it (or all of stderr, when it is missing) is about the setup, not the configuration.
const EXEC_MARKER: &str = "mpcluster-parser-check: exec multipath";

/// The namespace script. `$1`: the root, `$2`: the `multipath` program, `$3`: the scratch
/// directory ([`SCRATCH_DIR`]). Each step exits on failure before anything is removed, and the removal
/// happens in the overlay only (its upper layer is the tmpfs), never in the host's `/etc`.
const NAMESPACE_SCRIPT: &str = r#"
set -u
ROOT="$1"; MP="$2"; S="$3"
fail() { echo "$1" >&2; exit 97; }
mount -t tmpfs mpcluster-parser-check "$S" || fail "cannot mount a tmpfs on $S"
mkdir "$S/upper" "$S/work" || fail "cannot prepare the overlay"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$S/upper,workdir=$S/work" /etc \
    || fail "cannot mount an overlay over /etc"
rm -rf /etc/multipath.conf /etc/multipath || fail "cannot clear /etc/multipath in the overlay"
mkdir -p /etc/multipath/conf.d || fail "cannot create /etc/multipath/conf.d in the overlay"
if [ -e "$ROOT/etc/multipath.conf" ]; then
    : > /etc/multipath.conf && mount --bind "$ROOT/etc/multipath.conf" /etc/multipath.conf \
        || fail "cannot bind $ROOT/etc/multipath.conf"
fi
if [ -d "$ROOT/etc/multipath/conf.d" ]; then
    mount --bind "$ROOT/etc/multipath/conf.d" /etc/multipath/conf.d \
        || fail "cannot bind $ROOT/etc/multipath/conf.d"
fi
echo "mpcluster-parser-check: exec multipath" >&2
exec "$MP" -t
"#;

/// How `multipath -t` is shown the candidate configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParserRun {
    /// Run it as is: it reads `/etc` (the root is `/`).
    Direct,
    /// Run it in a private mount namespace with the root's files mounted over `/etc`'s (see the
    /// module documentation); `unshare` is util-linux's (looked up in `PATH` when relative).
    Namespace {
        /// The `unshare` program.
        unshare: PathBuf,
    },
}

/// The real parser's check: which `multipath`, how it is run, how long it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParserCheck {
    /// The `multipath` program (multipath-tools).
    pub multipath: PathBuf,
    /// How it is run.
    pub run: ParserRun,
    /// Time limit; the process is killed after it.
    pub timeout: Duration,
}

/// Why the parser could not judge the configuration (not: it complained).
#[derive(Debug, thiserror::Error)]
pub enum ParserCheckError {
    /// The `multipath` program is missing.
    #[error("{} is not installed (multipath-tools)", program.display())]
    NotInstalled {
        /// The program looked for.
        program: PathBuf,
    },
    /// The program (or `unshare`) could not be started.
    #[error("cannot run {}", program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The private mount namespace could not be set up (not root?).
    #[error("cannot set up a private mount namespace for multipath -t (it needs root): {detail}")]
    Setup {
        /// What `unshare` / the script said.
        detail: String,
    },
    /// The scratch directory for the namespace could not be created.
    #[error("cannot create {} for multipath -t", path.display())]
    Scratch {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Reading its output failed.
    #[error("cannot read the output of multipath -t")]
    Read(#[source] io::Error),
    /// It did not finish in time (and was killed).
    #[error("multipath -t did not finish within {0:?}")]
    Timeout(Duration),
}

/// Whether `root` is the system's root directory.
fn is_system_root(root: &Path) -> bool {
    root == Path::new("/") || std::fs::canonicalize(root).is_ok_and(|p| p == Path::new("/"))
}

/// The installed `multipath`, if any.
pub fn find_multipath() -> Option<PathBuf> {
    DEFAULT_MULTIPATH_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl ParserCheck {
    /// The check for an apply under `root`: the installed `multipath`, run directly for `/`,
    /// in a private mount namespace otherwise.
    pub fn for_root(root: &Path) -> Self {
        let multipath =
            find_multipath().unwrap_or_else(|| PathBuf::from(DEFAULT_MULTIPATH_PATHS[0]));
        if is_system_root(root) {
            ParserCheck::direct(multipath)
        } else {
            ParserCheck::namespace(multipath)
        }
    }

    /// `multipath` run as is.
    pub fn direct(multipath: impl Into<PathBuf>) -> Self {
        ParserCheck {
            multipath: multipath.into(),
            run: ParserRun::Direct,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `multipath` run in a private mount namespace (util-linux `unshare` from `PATH`).
    pub fn namespace(multipath: impl Into<PathBuf>) -> Self {
        ParserCheck {
            multipath: multipath.into(),
            run: ParserRun::Namespace {
                unshare: PathBuf::from("unshare"),
            },
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Have `multipath -t` read the configuration under `root` and classify what it says.
    /// A non-zero exit status is a complaint too (with the status).
    pub async fn run(&self, root: &Path) -> Result<ParserOutput, ParserCheckError> {
        // The namespace's tmpfs is mounted on the scratch directory (see SCRATCH_DIR).
        let scratch = root.join(SCRATCH_DIR);
        let (installed, prepared) = {
            let multipath = self.multipath.clone();
            let namespace = matches!(self.run, ParserRun::Namespace { .. });
            let scratch = scratch.clone();
            tokio::task::spawn_blocking(move || {
                let installed = multipath.exists();
                let prepared = if installed && namespace {
                    std::fs::create_dir_all(&scratch)
                } else {
                    Ok(())
                };
                (installed, prepared)
            })
            .await
            .map_err(|e| ParserCheckError::Read(io::Error::other(e)))?
        };
        if !installed {
            return Err(ParserCheckError::NotInstalled {
                program: self.multipath.clone(),
            });
        }
        prepared.map_err(|source| ParserCheckError::Scratch {
            path: scratch.clone(),
            source,
        })?;
        let (program, mut command) = match &self.run {
            ParserRun::Namespace { unshare } => {
                let mut c = tokio::process::Command::new(unshare);
                c.args([
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    NAMESPACE_SCRIPT,
                    "sh",
                ])
                .arg(root)
                .arg(&self.multipath)
                .arg(&scratch);
                (unshare.clone(), c)
            }
            ParserRun::Direct => {
                let mut c = tokio::process::Command::new(&self.multipath);
                c.arg("-t");
                (self.multipath.clone(), c)
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| match source.kind() {
            io::ErrorKind::NotFound if program == self.multipath => {
                ParserCheckError::NotInstalled {
                    program: program.clone(),
                }
            }
            _ => ParserCheckError::Spawn {
                program: program.clone(),
                source,
            },
        })?;
        let stderr = child.stderr.take();
        let finish = async {
            let mut kept = Vec::new();
            if let Some(mut stderr) = stderr {
                (&mut stderr)
                    .take(MAX_STDERR)
                    .read_to_end(&mut kept)
                    .await
                    .map_err(ParserCheckError::Read)?;
                tokio::io::copy(&mut stderr, &mut tokio::io::sink())
                    .await
                    .map_err(ParserCheckError::Read)?;
            }
            let status = child.wait().await.map_err(ParserCheckError::Read)?;
            Ok::<_, ParserCheckError>((status, kept))
        };
        let (status, stderr) = tokio::time::timeout(self.timeout, finish)
            .await
            .map_err(|_| ParserCheckError::Timeout(self.timeout))??;
        let stderr = String::from_utf8_lossy(&stderr);
        let parser_stderr = match self.run {
            ParserRun::Direct => stderr.as_ref(),
            ParserRun::Namespace { .. } => match split_at_marker(&stderr) {
                Some(rest) => rest,
                None => {
                    return Err(ParserCheckError::Setup {
                        detail: setup_detail(&stderr, status),
                    });
                }
            },
        };
        let mut output = read_parser_stderr(parser_stderr);
        if !status.success() {
            output
                .complaints
                .push(format!("multipath -t failed ({})", describe(status)));
        }
        Ok(output)
    }
}

/// What follows the script's [`EXEC_MARKER`] line, or `None` when the script never got there.
fn split_at_marker(stderr: &str) -> Option<&str> {
    let at = stderr.find(EXEC_MARKER)?;
    let rest = &stderr[at + EXEC_MARKER.len()..];
    Some(rest.strip_prefix('\n').unwrap_or(rest))
}

fn setup_detail(stderr: &str, status: ExitStatus) -> String {
    let lines: Vec<String> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect()
        })
        .collect();
    if lines.is_empty() {
        describe(status)
    } else {
        mpcluster_core::config::parser_output::summarize(&lines, 512)
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots() {
        assert_eq!(ParserCheck::for_root(Path::new("/")).run, ParserRun::Direct);
        assert_eq!(
            ParserCheck::for_root(Path::new("/tmp/x-does-not-exist")).run,
            ParserRun::Namespace {
                unshare: PathBuf::from("unshare")
            }
        );
    }

    #[test]
    fn marker() {
        assert!(NAMESPACE_SCRIPT.contains(&format!("echo \"{EXEC_MARKER}\" >&2")));
        assert_eq!(
            split_at_marker("unshare: unshare failed: Operation not permitted\n"),
            None
        );
        assert_eq!(
            split_at_marker(&format!("{EXEC_MARKER}\n1.0 | x line 3, invalid keyword\n")),
            Some("1.0 | x line 3, invalid keyword\n")
        );
        assert_eq!(split_at_marker(&format!("{EXEC_MARKER}\n")), Some(""));
    }
}
