//! Shared by the tests that build C programs against `liblwmq`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory holding `liblwmq.so` and `liblwmq.a` for this test's
/// profile: the test binary lives in `target/<profile>/deps/`.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    assert!(
        dir.join("liblwmq.so").exists(),
        "{} has no liblwmq.so (cargo builds it with the crate's tests)",
        dir.display()
    );
    dir
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

/// Compiles one C file against include/lwmq.h and liblwmq.so (rpath set).
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
