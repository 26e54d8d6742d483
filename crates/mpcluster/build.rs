//! Generates what the Debian package ships besides the binary: the shell completions (bash,
//! zsh, fish; `clap_complete`) and a man page per command and subcommand (`clap_mangen`,
//! gzip-compressed as Debian policy wants).
//!
//! It compiles the binary's clap definitions (`src/cli`) on its own, with stand-ins for the
//! library types they parse into (`src/cli/build_types.rs`), so the build script needs clap
//! and not the library crates. The files go to `<target>/<profile>/mpcluster-assets/`
//! (`completions/`, `man/`), next to the binary: cargo-deb resolves its `target/release/...`
//! asset paths there (Cargo.toml, `[package.metadata.deb]`), whereas `OUT_DIR` has a hash in
//! its name that no asset path can name. This is the layout cargo-deb's own example uses.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use clap_complete::Shell;

#[allow(dead_code)]
#[path = "src/cli/mod.rs"]
mod cli;
#[path = "src/cli/build_types.rs"]
mod cli_types;

/// `<target>/<profile>` from `OUT_DIR` (`<target>/<profile>/build/mpcluster-<hash>/out`).
fn profile_dir(out_dir: &Path) -> Option<PathBuf> {
    let build = out_dir.parent()?.parent()?;
    (build.file_name()? == "build").then(|| build.parent().map(Path::to_path_buf))?
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    // No file name and mtime 0 in the header: the same input gives the same bytes.
    let mut enc = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    enc.finish()
}

/// One gzipped man page per command, as `clap_mangen::generate_to` names them
/// (`mpcluster.1`, `mpcluster-agent.1`, `mpcluster-config-show.1`, ...).
fn man_pages(cmd: &clap::Command, dir: &Path) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub, dir)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    std::fs::write(dir.join(format!("{}.gz", man.get_filename())), gzip(&roff)?)
}

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/cli");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or(std::io::ErrorKind::NotFound)?);
    let assets = match profile_dir(&out_dir) {
        Some(dir) => dir.join("mpcluster-assets"),
        None => {
            println!(
                "cargo:warning=unexpected OUT_DIR layout {}: completions and man pages go to OUT_DIR only, and `cargo deb` will not find them",
                out_dir.display()
            );
            out_dir.join("mpcluster-assets")
        }
    };
    // Start empty, so a removed subcommand leaves no stale man page behind.
    match std::fs::remove_dir_all(&assets) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let completions = assets.join("completions");
    let man = assets.join("man");
    std::fs::create_dir_all(&completions)?;
    std::fs::create_dir_all(&man)?;

    let mut cmd = cli::Cli::command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cmd, "mpcluster", &completions)?;
    }
    // No page for the `help` subcommand (each page has the command's help already).
    let mut cmd = cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    man_pages(&cmd, &man)
}
