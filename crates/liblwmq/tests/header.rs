//! The committed `include/lwmq.h` equals what the pinned cbindgen generates
//! from this crate, and compiles as C11 and C++17 with -Wall -Wextra -Werror.
//!
//! `LWMQ_BLESS=1 cargo test -p liblwmq --test header` rewrites the header.

use std::path::PathBuf;
use std::process::Command;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn header_path() -> PathBuf {
    crate_dir().join("../../include/lwmq.h")
}

fn generate() -> String {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

#[test]
fn committed_header_is_current() {
    let fresh = generate();
    let path = header_path();
    if std::env::var_os("LWMQ_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/lwmq.h is stale: regenerate it with `LWMQ_BLESS=1 cargo test -p liblwmq --test header` and commit it"
    );
}

fn compile(compiler: &str, std: &str, ext: &str) {
    let dir = std::env::temp_dir().join(format!("lwmq-header-{}-{ext}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("use.{ext}"));
    // Uses a few declarations so that the header is really parsed.
    std::fs::write(
        &src,
        "#include \"lwmq.h\"\nint main(void) {\n  LMQ_CHANNEL ch = 0;\n  HRESULT hr = LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch);\n  LMQ_TRANSPORTBUFFERLIMITS l;\n  (void)l;\n  return FAILED(hr) ? 1 : 0;\n}\n",
    )
    .unwrap();
    let include = header_path().parent().unwrap().to_path_buf();
    let out = Command::new(compiler)
        .arg(format!("-std={std}"))
        .args([
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            "-I",
        ])
        .arg(&include)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("{compiler} not runnable: {e}"));
    assert!(
        out.status.success(),
        "{compiler} -std={std} rejected lwmq.h:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

#[test]
fn header_compiles_as_c11() {
    if !have("gcc") {
        eprintln!("skipped: gcc not found");
        return;
    }
    compile("gcc", "c11", "c");
}

#[test]
fn header_compiles_as_cpp17() {
    if !have("g++") {
        eprintln!("skipped: g++ not found");
        return;
    }
    compile("g++", "c++17", "cpp");
}
