//! The Debian package, built and installed for real: `cargo deb` (one release build, in the
//! shared target directory), the package's contents and control data, `systemd-analyze verify`
//! of both units, `dpkg -i`, `mpcluster --version`, the man pages (`man -w`), the bash
//! completion (loaded and asked); then both services run from the installed units' own
//! `ExecStart` lines with nothing but the conffile changed (a simulated multipathd, an embedded
//! store in a temp dir): the server answers and shows the agent's LUN. Then `dpkg -r` (only the
//! conffile stays) and `dpkg -P` (nothing stays).
//!
//! Needs root, cargo-deb (`scripts/test.sh` installs it), dpkg-dev, systemd (for
//! systemd-analyze), man-db, bash-completion and multipath-tools (the package depends on it).
//! Under `CI=true` anything missing is a failure; otherwise the test prints why it skips. It
//! also skips (fails under CI) when the machine already has the package, /etc/mpcluster or
//! /var/lib/mpcluster: purging would take them away. Whatever happens, the package is purged
//! again before the test ends (a drop guard), so the machine is left as it was found.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const PKG: &str = "mpcluster";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skip (print why) or, under CI, fail.
fn skip(why: &str) {
    if ci() {
        panic!("CI=true and {why}");
    }
    eprintln!("skipping: {why}");
}

fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run and require success; return stdout.
fn check(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The dpkg status of the package (`install ok installed`, `deinstall ok config-files`), or
/// `None` when dpkg does not know it.
fn dpkg_status() -> Option<String> {
    let out = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", PKG]));
    let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !status.is_empty() && !status.ends_with("not-installed"))
        .then_some(status)
}

/// What the test needs, or why it cannot run.
fn missing_prerequisite() -> Option<String> {
    if !is_root() {
        return Some("the package test installs a package: it needs root".to_owned());
    }
    if !have_cargo_deb() {
        return Some("cargo-deb is not installed (cargo install cargo-deb --locked)".to_owned());
    }
    let tools = [
        ("dpkg-deb", "dpkg-deb (dpkg)"),
        ("dpkg-shlibdeps", "dpkg-shlibdeps (Debian package dpkg-dev)"),
        (
            "systemd-analyze",
            "systemd-analyze (Debian package systemd)",
        ),
        ("man", "man (Debian package man-db)"),
    ];
    for (program, what) in tools {
        if !have(program, "--version") {
            return Some(format!("{what} is not installed"));
        }
    }
    if !Path::new("/usr/share/bash-completion/bash_completion").exists() {
        return Some("bash-completion is not installed".to_owned());
    }
    let mp = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", "multipath-tools"]));
    if !String::from_utf8_lossy(&mp.stdout).contains("install ok installed") {
        return Some("multipath-tools (the package's dependency) is not installed".to_owned());
    }
    if let Some(status) = dpkg_status() {
        return Some(format!(
            "the package {PKG} is already on this machine ({status}); the test would purge it"
        ));
    }
    for dir in ["/etc/mpcluster", "/var/lib/mpcluster"] {
        if Path::new(dir).exists() {
            return Some(format!(
                "{dir} exists; purging the test's package would remove what is there"
            ));
        }
    }
    None
}

fn have_cargo_deb() -> bool {
    Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    check(Command::new("id").arg("-u")).trim() == "0"
}

/// The target directory this test was built in (`<target>/debug/deps/package_deb-...`), so
/// `cargo deb` shares it.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors().nth(3).unwrap().to_path_buf()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Purges the package when dropped (also when the test panics), unless disarmed.
struct Installed {
    armed: bool,
}

impl Drop for Installed {
    fn drop(&mut self) {
        if self.armed {
            let out = Command::new("dpkg").args(["--purge", PKG]).output();
            eprintln!("cleanup: dpkg --purge {PKG}: {:?}", out.map(|o| o.status));
        }
    }
}

/// Every man page the package must have: one per command and subcommand.
const MAN_PAGES: &[&str] = &[
    "mpcluster",
    "mpcluster-status",
    "mpcluster-nodes",
    "mpcluster-snapshot",
    "mpcluster-demo",
    "mpcluster-serve",
    "mpcluster-agent",
    "mpcluster-node",
    "mpcluster-node-status",
    "mpcluster-node-broadcast",
    "mpcluster-node-remove",
    "mpcluster-config",
    "mpcluster-config-show",
    "mpcluster-config-set",
    "mpcluster-config-unset",
    "mpcluster-config-plan",
    "mpcluster-config-accept",
    "mpcluster-wwid",
    "mpcluster-wwid-add",
    "mpcluster-wwid-remove",
    "mpcluster-wwid-list",
    "mpcluster-wwid-set",
    "mpcluster-overrides",
    "mpcluster-overrides-get",
    "mpcluster-overrides-set",
    "mpcluster-storage",
    "mpcluster-storage-add",
    "mpcluster-storage-add-multipath",
    "mpcluster-storage-add-lvm",
    "mpcluster-storage-remove",
    "mpcluster-storage-list",
    "mpcluster-storage-set",
    "mpcluster-storage-import-pve",
    "mpcluster-token",
    "mpcluster-token-add",
    "mpcluster-token-list",
    "mpcluster-token-remove",
    "mpcluster-notify",
    "mpcluster-notify-add",
    "mpcluster-notify-add-webhook",
    "mpcluster-notify-add-smtp",
    "mpcluster-notify-add-exec",
    "mpcluster-notify-list",
    "mpcluster-notify-remove",
    "mpcluster-notify-test",
    "mpcluster-doctor",
    "mpcluster-events",
    "mpcluster-hints",
    "mpcluster-preflight",
];

const UNITS: [&str; 2] = ["mpcluster-agent.service", "mpcluster-server.service"];

fn build_deb(out_dir: &Path) -> PathBuf {
    let started = Instant::now();
    let out = output(
        Command::new("cargo")
            .args(["deb", "-p", PKG, "--locked", "--output"])
            .arg(out_dir)
            .current_dir(workspace())
            .env("CARGO_TARGET_DIR", target_dir()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo deb failed:\n{stderr}");
    eprintln!(
        "cargo deb: {:.1} s (release build in {})",
        started.elapsed().as_secs_f64(),
        target_dir().display()
    );
    let deb = out_dir.join(format!("{PKG}_{}_amd64.deb", env!("CARGO_PKG_VERSION")));
    assert!(
        deb.exists(),
        "no {}; cargo deb said:\n{stderr}",
        deb.display()
    );
    deb
}

/// `dpkg-deb -c`: path (without the leading `.`) -> mode string.
fn contents(deb: &Path) -> Vec<(String, String)> {
    check(Command::new("dpkg-deb").arg("-c").arg(deb))
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let mode = f.next()?.to_owned();
            let path = f.nth(4)?.trim_start_matches('.').to_owned();
            Some((path, mode))
        })
        .collect()
}

fn check_contents(deb: &Path, work: &Path) -> Vec<String> {
    let files = contents(deb);
    let paths: BTreeSet<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    let mode = |p: &str| {
        files
            .iter()
            .find(|(q, _)| q == p)
            .map(|(_, m)| m.as_str())
            .unwrap_or_else(|| panic!("{p} is not in the package: {paths:#?}"))
    };
    assert_eq!(mode("/usr/bin/mpcluster"), "-rwxr-xr-x");
    assert_eq!(mode("/etc/mpcluster/mpcluster.toml"), "-rw-r--r--");
    for unit in UNITS {
        assert_eq!(
            mode(&format!("/usr/lib/systemd/system/{unit}")),
            "-rw-r--r--"
        );
    }
    for page in MAN_PAGES {
        mode(&format!("/usr/share/man/man1/{page}.1.gz"));
    }
    let pages = paths
        .iter()
        .filter(|p| p.starts_with("/usr/share/man/man1/") && p.ends_with(".gz"))
        .count();
    assert_eq!(pages, MAN_PAGES.len(), "{paths:#?}");
    mode("/usr/share/bash-completion/completions/mpcluster");
    mode("/usr/share/zsh/vendor-completions/_mpcluster");
    mode("/usr/share/fish/vendor_completions.d/mpcluster.fish");
    mode("/usr/share/doc/mpcluster/copyright");

    // The shipped conffile is the rendered default file, byte for byte.
    let data = work.join("data");
    check(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&data));
    assert_eq!(
        std::fs::read_to_string(data.join("etc/mpcluster/mpcluster.toml")).unwrap(),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/mpcluster.toml")
        )
        .unwrap()
    );

    // Control data: name, version, architecture, dependencies, conffiles, maintainer scripts.
    let field = |name: &str| {
        check(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name))
            .trim()
            .to_owned()
    };
    assert_eq!(field("Package"), PKG);
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(field("Architecture"), "amd64");
    let depends = field("Depends");
    assert!(depends.contains("multipath-tools"), "Depends: {depends}");
    assert!(depends.contains("libc6"), "Depends: {depends}");
    let control = work.join("control");
    check(Command::new("dpkg-deb").arg("-e").arg(deb).arg(&control));
    assert_eq!(
        std::fs::read_to_string(control.join("conffiles"))
            .unwrap()
            .trim(),
        "/etc/mpcluster/mpcluster.toml"
    );
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("install -d -m 0700 -o root -g root /var/lib/mpcluster"));
    for unit in UNITS {
        assert!(postinst.contains(unit), "postinst does not handle {unit}");
    }
    // Installing neither enables nor starts a unit: the admin configures the store first.
    assert!(!postinst.contains("deb-systemd-invoke start"), "{postinst}");
    let postrm = std::fs::read_to_string(control.join("postrm")).unwrap();
    assert!(postrm.contains("rm -rf /var/lib/mpcluster"), "{postrm}");

    files.into_iter().map(|(p, _)| p).collect()
}

/// Kills the child on drop (even on panic).
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `ExecStart=` command line of an installed unit, split into words.
fn exec_start(unit: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/usr/lib/systemd/system/{unit}")).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{unit} has no ExecStart="));
    line.split_whitespace().map(str::to_owned).collect()
}

/// Both services as systemd would start them (the units' `ExecStart`), configured by nothing
/// but /etc/mpcluster/mpcluster.toml: the agent reads a simulated multipathd and publishes,
/// the server (started separately, `--no-agent`) answers with the agent's LUN.
fn run_from_the_config_file(work: &Path) {
    use mpcluster_agent::sim::{SimMap, SimNode, SimState};
    const WWID: &str = "3600a098038303053453f463045727a01";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _enter = rt.enter();
    let sim = SimNode::start(
        &work.join("mpd.sock"),
        &work.join("sys"),
        SimState {
            maps: vec![SimMap::new(WWID, 0, 1 << 30, 2, "scsi:iscsi", 0)],
            ..SimState::default()
        },
    )
    .unwrap();
    let root = work.join("root");
    std::fs::create_dir_all(root.join("usr/sbin")).unwrap();
    std::fs::write(root.join("usr/sbin/multipath"), "").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = work.join("admin-token");
    // As an admin edits the shipped file: keys uncommented, nothing on the command line.
    let shipped = std::fs::read_to_string("/etc/mpcluster/mpcluster.toml").unwrap();
    let conf = format!(
        "{shipped}\nstore = \"embedded:{}\"\nnode = \"pkgtest\"\nmultipathd-socket = \"{}\"\n\
         sysfs-root = \"{}\"\nroot = \"{}\"\ninterval = 1\nlisten = \"127.0.0.1:{port}\"\n\
         admin-token-file = \"{}\"\n",
        work.join("store").display(),
        work.join("mpd.sock").display(),
        sim.sysfs_root().display(),
        root.display(),
        token.display(),
    );
    std::fs::write("/etc/mpcluster/mpcluster.toml", conf).unwrap();
    let start = |unit: &str| {
        let argv = exec_start(unit);
        Child(
            Command::new(&argv[0])
                .args(&argv[1..])
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let _agent = start("mpcluster-agent.service");
    let _server = start("mpcluster-server.service");
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let out = Command::new("/usr/bin/mpcluster")
            .args(["status", "--server", &format!("http://127.0.0.1:{port}")])
            .arg("--token-file")
            .arg(&token)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains(WWID) && text.contains("optimal 2/2") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the installed services never showed the agent's LUN: {}\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // The agent applied the cluster configuration under its root (none yet: nothing written
    // but its own record) and the store is where the file says.
    assert!(work.join("store").is_dir());
    drop(sim);
}

fn check_installed() {
    assert_eq!(dpkg_status().as_deref(), Some("install ok installed"));

    // The units, as installed (the binary and man pages they name exist now).
    let units: Vec<String> = UNITS
        .iter()
        .map(|u| format!("/usr/lib/systemd/system/{u}"))
        .collect();
    let out = output(Command::new("systemd-analyze").arg("verify").args(&units));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
    for unit in &units {
        let text = std::fs::read_to_string(unit).unwrap();
        for line in [
            "Restart=on-failure",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "NoNewPrivileges=yes",
            "CapabilityBoundingSet=",
            "StateDirectory=mpcluster",
        ] {
            assert!(text.lines().any(|l| l == line), "{unit}: no {line}");
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with("After=") && l.contains("multipathd.service")),
            "{unit}"
        );
    }
    let server = std::fs::read_to_string(&units[1]).unwrap();
    assert!(server.lines().any(|l| l == "Type=notify"));

    let version = check(Command::new("/usr/bin/mpcluster").arg("--version"));
    assert_eq!(
        version.trim(),
        format!("mpcluster {}", env!("CARGO_PKG_VERSION"))
    );

    for page in ["mpcluster", "mpcluster-agent", "mpcluster-serve"] {
        let path = check(Command::new("man").args(["-w", page]));
        assert_eq!(path.trim(), format!("/usr/share/man/man1/{page}.1.gz"));
    }
    let page = check(
        Command::new("man")
            .args(["-P", "cat", "mpcluster-serve"])
            .env("MANWIDTH", "100"),
    );
    assert!(
        page.contains("--listen") && page.contains("--config"),
        "{page}"
    );

    // The bash completion loads the way bash-completion loads it (on demand, by command
    // name) and completes subcommands and options.
    let script = r#"
        source /usr/share/bash-completion/bash_completion || exit 10
        _completion_loader mpcluster
        complete -p mpcluster || exit 11
        fn=$(complete -p mpcluster | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
        COMP_WORDS=(mpcluster ser); COMP_CWORD=1; COMP_LINE="mpcluster ser"; COMP_POINT=${#COMP_LINE}
        "$fn" mpcluster ser mpcluster; echo "sub: ${COMPREPLY[*]}"
        COMP_WORDS=(mpcluster agent --no-ap); COMP_CWORD=2; COMP_LINE="mpcluster agent --no-ap"; COMP_POINT=${#COMP_LINE}
        "$fn" mpcluster --no-ap agent; echo "opt: ${COMPREPLY[*]}"
    "#;
    let out = check(Command::new("bash").args(["--norc", "--noprofile", "-c", script]));
    assert!(out.contains("sub: serve"), "{out}");
    assert!(out.contains("opt: --no-apply"), "{out}");
}

/// Paths under `root` whose name contains "mpcluster".
fn leftovers(root: &str) -> Vec<String> {
    let out = output(
        Command::new("find")
            .args([root, "-name", "*mpcluster*"])
            .stderr(std::process::Stdio::null()),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn deb_builds_installs_and_purges_cleanly() {
    let started = Instant::now();
    if let Some(why) = missing_prerequisite() {
        skip(&why);
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let deb = build_deb(work.path());
    let files = check_contents(&deb, work.path());

    let mut guard = Installed { armed: true };
    check(Command::new("dpkg").arg("-i").arg(&deb));
    check_installed();
    run_from_the_config_file(work.path());

    // Removal keeps the conffile (and the state directory); purge removes everything.
    check(Command::new("dpkg").args(["--remove", PKG]));
    assert_eq!(dpkg_status().as_deref(), Some("deinstall ok config-files"));
    assert!(Path::new("/etc/mpcluster/mpcluster.toml").exists());
    assert!(!Path::new("/usr/bin/mpcluster").exists());
    check(Command::new("dpkg").args(["--purge", PKG]));
    guard.armed = false;
    assert_eq!(dpkg_status(), None);
    let left: Vec<&String> = files
        .iter()
        .filter(|p| !p.ends_with('/') && Path::new(p.as_str()).exists())
        .collect();
    assert!(left.is_empty(), "left after purge: {left:?}");
    for dir in [
        "/etc/mpcluster",
        "/var/lib/mpcluster",
        "/usr/share/doc/mpcluster",
    ] {
        assert!(!Path::new(dir).exists(), "{dir} is left after purge");
    }
    let mut left = Vec::new();
    for root in [
        "/etc",
        "/usr/lib/systemd",
        "/var/lib/systemd",
        "/var/lib/dpkg/info",
    ] {
        left.extend(leftovers(root));
    }
    assert!(left.is_empty(), "left after purge: {left:?}");
    eprintln!(
        "package test: {:.1} s in all",
        started.elapsed().as_secs_f64()
    );
}
