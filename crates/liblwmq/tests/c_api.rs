//! Builds `tests/c/api_test.c` with gcc against the headers in `include/` and
//! `liblwmq.so`, runs it as a process, then runs it again under valgrind
//! (memcheck, full leak check) and requires zero errors.

mod common;

use std::process::Command;

fn build(name: &str) -> std::path::PathBuf {
    let exe = common::out_dir("c-api").join(name);
    common::build_c(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/api_test.c"),
        &exe,
    );
    exe
}

#[test]
fn c_api_test_program_passes() {
    if !common::have("gcc") {
        eprintln!("skipped: gcc not found");
        return;
    }
    let exe = build("api_test");
    let out = Command::new(&exe).output().expect("api_test runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "api_test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}

#[test]
fn c_api_test_program_is_clean_under_valgrind() {
    if !common::have("gcc") {
        eprintln!("skipped: gcc not found");
        return;
    }
    if !common::have("valgrind") {
        eprintln!("skipped: valgrind not found (install it to run this check)");
        return;
    }
    let exe_vg = build("api_test_vg");
    let out = Command::new("valgrind")
        .args([
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--show-leak-kinds=definite,indirect,possible",
            "--quiet",
        ])
        .arg(&exe_vg)
        .output()
        .expect("valgrind runs");
    assert!(
        out.status.success(),
        "valgrind reported errors:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("checks passed"));
}
