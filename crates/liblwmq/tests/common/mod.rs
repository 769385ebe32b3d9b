//! Shared by the tests that build C programs against `liblwmq`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory holding `liblwmq.so` and `liblwmq.a` for this test's
/// profile (the test binary lives in `target/<profile>/deps/`), freshly
/// built: `cargo test` does not build a cdylib-only crate for its own
/// tests, so the first call runs `cargo build -p liblwmq` (and the `lwmq`
/// CLI, for the interoperability tests) into the same target directory
/// and profile. Cargo has released its lock by the time tests run.
pub fn lib_dir() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("test executable path");
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile>")
                .to_path_buf();
            let target = dir.parent().expect("target directory");
            let profile = dir.file_name().and_then(|p| p.to_str()).unwrap_or("debug");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            cmd.args(["build", "-p", "liblwmq", "-p", "lwmq-cli", "--target-dir"])
                .arg(target)
                .current_dir(repo());
            match profile {
                "debug" => {}
                "release" => {
                    cmd.arg("--release");
                }
                other => {
                    cmd.args(["--profile", other]);
                }
            }
            let o = cmd.output().expect("cargo runs");
            assert!(
                o.status.success(),
                "cargo build -p liblwmq failed:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                dir.join("liblwmq.so").exists(),
                "{} has no liblwmq.so",
                dir.display()
            );
            // Programs linked here ask for the soname (build.rs makes this
            // link; remade here if someone removed it).
            let soname = dir.join(format!("liblwmq.so.{}", env!("CARGO_PKG_VERSION_MAJOR")));
            if std::fs::symlink_metadata(&soname).is_err() {
                std::os::unix::fs::symlink("liblwmq.so", &soname).expect("soname link");
            }
            dir
        })
        .clone()
}

/// A scratch directory for build outputs.
pub fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// True if `tool --version` runs.
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Compiles one C file (C11) against include/ and liblwmq.so (rpath set).
pub fn build_c(src: &Path, out: &Path) {
    let lib = lib_dir();
    let o = Command::new("gcc")
        .args([
            "-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread", "-I",
        ])
        .arg(repo().join("include"))
        .arg(src)
        .arg("-o")
        .arg(out)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-llwmq")
        .output()
        .expect("gcc runs");
    assert!(
        o.status.success(),
        "gcc failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}
