//! Builds `tests/c/raw_buffers_test.c` (several direct buffers out at once,
//! in-order sends, dispose of an unsent buffer, and get/receive/flush/close
//! on four threads) against `include/lwmq.h` and `liblwmq.so`, runs it,
//! then runs it again under valgrind (memcheck, full leak check) and
//! requires zero errors.

mod common;

use std::process::Command;

fn build(name: &str) -> std::path::PathBuf {
    let exe = common::out_dir("raw-buffers").join(name);
    common::build_c(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/raw_buffers_test.c"),
        &exe,
    );
    exe
}

#[test]
fn c_raw_buffers_test_passes() {
    if !common::have("gcc") {
        eprintln!("skipped: gcc not found");
        return;
    }
    let exe = build("raw_buffers_test");
    let out = Command::new(&exe).output().expect("raw_buffers_test runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "raw_buffers_test failed ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}

#[test]
fn c_raw_buffers_test_is_clean_under_valgrind() {
    if !common::have("gcc") {
        eprintln!("skipped: gcc not found");
        return;
    }
    if !common::have("valgrind") {
        eprintln!("skipped: valgrind not found (install it to run this check)");
        return;
    }
    let exe = build("raw_buffers_test_vg");
    let out = Command::new("valgrind")
        .args([
            "--error-exitcode=1",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect,possible",
            "--show-leak-kinds=definite,indirect,possible",
            "--quiet",
        ])
        .arg(&exe)
        .output()
        .expect("valgrind runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "valgrind reported errors ({:?}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
}
