//! The C packaging: `scripts/install.sh` into a temporary prefix, then a C
//! program built with nothing but `pkg-config --cflags --libs lwmq`
//! (PKG_CONFIG_PATH pointing into the prefix), run against the installed
//! library; the soname and the links checked with `readelf -d`; the
//! command, its man page and completions installed beside it.

mod common;

use std::path::Path;
use std::process::Command;

const SAMPLE: &str = r#"
#include <stdio.h>
#include <string.h>
#include <lwmq.h>

int main(void) {
    LMQ_TRANSPORTBUFFERLIMITS limits;
    memset(&limits, 0, sizeof limits);
    HRESULT hr = LmqQueryTransportBufferLimitsA("ipc://pkgconfig/sample", &limits,
                                                sizeof limits);
    if (hr != 0) {
        fprintf(stderr, "LmqQueryTransportBufferLimitsA failed: %s\n",
                LmqGetLastErrorMessage());
        return 1;
    }
    UINT64 t0 = LmqGetTickCountNs();
    printf("max buffer %zu, send %ld, receive %ld, clock %s\n",
           (size_t)limits.MaxBufferSizeBytes, (long)limits.MaxPendingSendBuffers,
           (long)limits.MaxPendingReceiveBuffers, t0 > 0 ? "ok" : "zero");
    return 0;
}
"#;

fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[test]
fn install_then_build_a_sample_with_pkg_config_only() {
    for tool in ["gcc", "pkg-config", "readelf"] {
        if !common::have(tool) {
            eprintln!("skipped: {tool} not found");
            return;
        }
    }
    let built = common::lib_dir(); // target/<profile>, freshly built
    let target = built.parent().expect("target dir");
    let profile = built.file_name().and_then(|p| p.to_str()).expect("profile");
    let prefix = common::out_dir("install-prefix");
    let _ = std::fs::remove_dir_all(&prefix);
    std::fs::create_dir_all(&prefix).unwrap();

    run(Command::new("sh")
        .arg(common::repo().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(&prefix)
        .args(["--no-build", "--profile", profile])
        .arg("--target-dir")
        .arg(target));

    let lib = prefix.join("lib");
    let major = version().split('.').next().unwrap();
    let real = format!("liblwmq.so.{}", version());
    let soname = format!("liblwmq.so.{major}");
    assert!(lib.join(&real).is_file());
    assert_eq!(
        std::fs::read_link(lib.join(&soname)).unwrap(),
        Path::new(&real)
    );
    assert_eq!(
        std::fs::read_link(lib.join("liblwmq.so")).unwrap(),
        Path::new(&soname)
    );
    assert!(lib.join("liblwmq.a").is_file());
    let dynamic = run(Command::new("readelf").arg("-d").arg(lib.join(&real)));
    assert!(
        dynamic.contains(&format!("Library soname: [{soname}]")),
        "{dynamic}"
    );

    // Only pkg-config says where things are.
    let pc_path = lib.join("pkgconfig");
    let flags = run(Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", &pc_path)
        .env_remove("PKG_CONFIG_LIBDIR")
        .args(["--cflags", "--libs", "lwmq"]));
    assert!(
        flags.contains(&format!("-I{}", prefix.join("include/lwmq").display())),
        "{flags}"
    );
    let modversion = run(Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", &pc_path)
        .args(["--modversion", "lwmq"]));
    assert_eq!(modversion.trim(), version());

    let dir = common::out_dir("install-sample");
    let src = dir.join("sample.c");
    std::fs::write(&src, SAMPLE).unwrap();
    let exe = dir.join("sample");
    run(Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .args(flags.split_whitespace()));
    // The program records the soname, not the file name or the dev link.
    let needed = run(Command::new("readelf").arg("-d").arg(&exe));
    assert!(
        needed.contains(&format!("Shared library: [{soname}]")),
        "{needed}"
    );
    let out = run(Command::new(&exe).env("LD_LIBRARY_PATH", &lib));
    assert!(out.contains("max buffer 1073741824"), "{out}");
    assert!(out.contains("clock ok"), "{out}");

    // The command and its documentation.
    assert!(prefix.join("bin/lwmq").is_file());
    for f in [
        "share/man/man1/lwmq.1",
        "share/bash-completion/completions/lwmq",
        "share/zsh/site-functions/_lwmq",
        "share/fish/vendor_completions.d/lwmq.fish",
    ] {
        let text = std::fs::read_to_string(prefix.join(f)).unwrap();
        assert!(
            text.contains("raw-thr") || text.contains("raw\\-thr"),
            "{f}"
        );
    }
}

#[test]
fn install_refuses_bad_usage() {
    let o = Command::new("sh")
        .arg(common::repo().join("scripts/install.sh"))
        .args(["--prefix", "relative/dir", "--no-build"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("absolute path"));
    let o = Command::new("sh")
        .arg(common::repo().join("scripts/install.sh"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
