//! Gives `liblwmq.so` its soname, `liblwmq.so.MAJOR` (`liblwmq.so.0` for
//! 0.x), so that a program linked against it records the major version and
//! a later incompatible library can be installed beside it.
//! `scripts/install.sh` installs the file as `liblwmq.so.MAJOR.MINOR.PATCH`
//! with the `liblwmq.so.MAJOR` and `liblwmq.so` links.
//!
//! A program linked against the build tree (`-L target/release -llwmq`,
//! as `examples/c/Makefile` and the tests do) then asks the loader for
//! `liblwmq.so.MAJOR`, so the build tree needs that name too: this script
//! also puts a link `liblwmq.so.MAJOR -> liblwmq.so` beside where cargo
//! writes the library (`target/<profile>/`, three levels above `OUT_DIR`).
//! The link is made before the library exists (it dangles until the link
//! step) and only when `OUT_DIR` has cargo's usual shape; otherwise
//! nothing is written outside `OUT_DIR`.

use std::path::{Path, PathBuf};

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let soname = format!("liblwmq.so.{major}");
    // Only the cdylib is linked with this; the staticlib is not linked.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(dir) = std::env::var_os("OUT_DIR").and_then(|o| artifact_dir(Path::new(&o))) {
        let link = dir.join(&soname);
        if std::fs::symlink_metadata(&link).is_err() {
            if let Err(e) = std::os::unix::fs::symlink("liblwmq.so", &link) {
                println!(
                    "cargo:warning=could not link {} -> liblwmq.so: {e}",
                    link.display()
                );
            }
        }
    }
}

/// `target/<profile>` from `target/<profile>/build/<package>-<hash>/out`.
fn artifact_dir(out: &Path) -> Option<PathBuf> {
    let pkg = out
        .parent()
        .filter(|_| out.file_name() == Some("out".as_ref()))?;
    let build = pkg
        .parent()
        .filter(|b| b.file_name() == Some("build".as_ref()))?;
    pkg.file_name()?
        .to_str()
        .filter(|n| n.starts_with("liblwmq-"))?;
    build.parent().map(Path::to_path_buf)
}
