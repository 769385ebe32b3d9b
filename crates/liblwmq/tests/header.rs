//! The hand-written headers in `include/` against the library's Rust
//! declarations, and against the names LwMQ programs use.
//!
//! - Every exported function, rendered by the pinned cbindgen with the
//!   type names of its Rust signature (`cbindgen.toml`), is compiled after
//!   the headers as C11 and as C++20, with and without `-fshort-wchar`: a
//!   parameter or result of another type is a conflicting declaration.
//!   The functions the headers declare and the ones the library exports
//!   are the same set.
//! - Every enumeration value and constant of `src/types.rs` (`C_VALUES`),
//!   the size of every enumeration and the layout of every struct are
//!   checked with `static_assert`s compiled against the headers.
//! - The headers compile as LwMQ programs include them (`api-lwmq-time.h`
//!   then `api-lwmq-messaging.h`, each alone, `lwmq.h`) with
//!   `-Wall -Wextra -Werror -pedantic`, and accept `L"..."` descriptors
//!   with `-fshort-wchar` and `u"..."` without.
//! - `tests/c/names.cpp` declares every name of the specification
//!   (`lwmq-c-names.md`) with its exact type, is built in both `wchar_t`
//!   modes, linked against `liblwmq.so` and run.

mod common;

#[allow(dead_code)]
#[path = "../src/types.rs"]
mod types;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use types::*;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn include_dir() -> PathBuf {
    common::repo().join("include")
}

/// The public headers that declare functions.
const HEADERS: [&str; 2] = ["api-lwmq-time.h", "api-lwmq-messaging.h"];

/// The four ways the headers must compile: (compiler, standard, flags).
const MODES: [(&str, &str, &[&str]); 4] = [
    ("gcc", "c11", &[]),
    ("gcc", "c11", &["-fshort-wchar"]),
    ("g++", "c++20", &[]),
    ("g++", "c++20", &["-fshort-wchar"]),
];

/// This crate's exported functions as C prototypes.
fn rust_prototypes() -> String {
    let dir = crate_dir();
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen failed")
        .write(&mut out);
    String::from_utf8(out).expect("utf-8")
}

/// The names of the functions declared in C text: a declaration is a line
/// that starts with its return type (no indentation, not a comment) and
/// holds `Lmq<Name>(`.
fn declared_functions(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter_map(|l| {
            let at = l.find(" Lmq")? + 1;
            let name: String = l[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            l[at + name.len()..].starts_with('(').then_some(name)
        })
        .collect()
}

fn have(tool: &str) -> bool {
    common::have(tool)
}

/// Compiles `source` (syntax only) in one mode; panics with the compiler's
/// output if it fails.
fn compile(mode: &(&str, &str, &[&str]), name: &str, source: &str) {
    let (cc, std, flags) = mode;
    let dir = common::out_dir("header");
    let ext = if *cc == "g++" { "cpp" } else { "c" };
    let tag = format!("{std}{}", flags.join("")).replace(['+', '-'], "");
    let src = dir.join(format!("{name}-{tag}.{ext}"));
    std::fs::write(&src, source).unwrap();
    let out = Command::new(cc)
        .arg(format!("-std={std}"))
        .args(*flags)
        .args([
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            "-I",
        ])
        .arg(include_dir())
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("{cc} not runnable: {e}"));
    assert!(
        out.status.success(),
        "{cc} -std={std} {flags:?} rejected {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn compilers_present() -> bool {
    if have("gcc") && have("g++") {
        return true;
    }
    eprintln!("skipped: gcc or g++ not found");
    false
}

#[test]
fn headers_declare_exactly_the_exported_functions() {
    let rust = declared_functions(&rust_prototypes());
    let mut headers = BTreeSet::new();
    for h in HEADERS {
        let text = std::fs::read_to_string(include_dir().join(h)).unwrap();
        headers.extend(declared_functions(&text));
    }
    assert!(rust.len() > 30, "cbindgen found only {rust:?}");
    let missing: Vec<_> = rust.difference(&headers).collect();
    let extra: Vec<_> = headers.difference(&rust).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "exported but not declared in include/: {missing:?}; declared but not exported: {extra:?}"
    );
}

#[test]
fn rust_signatures_are_the_header_declarations() {
    if !compilers_present() {
        return;
    }
    let source = format!(
        "/* The headers, then every export as its Rust signature says: a\n   difference is a conflicting declaration. */\n#include \"api-lwmq-time.h\"\n#include \"api-lwmq-messaging.h\"\n{}\nint main(void) {{ return 0; }}\n",
        rust_prototypes()
    );
    for mode in &MODES {
        compile(mode, "signatures", &source);
    }
}

/// `static_assert`s for every value, enumeration and struct layout.
fn layout_checks() -> String {
    let mut s = String::from(
        "#include \"api-lwmq-time.h\"\n#include \"api-lwmq-messaging.h\"\n#include <stddef.h>\n#ifdef __cplusplus\n#define CHECK static_assert\n#else\n#define CHECK _Static_assert\n#endif\n",
    );
    for (name, value, size) in C_VALUES {
        if *value < 0 {
            writeln!(
                s,
                "CHECK((long long)({name}) == {value}LL, \"{name} == {value}\");"
            )
            .unwrap();
        } else {
            writeln!(
                s,
                "CHECK((unsigned long long)({name}) == {value}ULL, \"{name} == {value}\");"
            )
            .unwrap();
        }
        writeln!(
            s,
            "CHECK(sizeof({name}) == {size}, \"sizeof({name}) == {size}\");"
        )
        .unwrap();
    }
    for e in C_ENUMS {
        writeln!(s, "CHECK(sizeof({e}) == 4, \"sizeof({e}) == 4\");").unwrap();
    }
    macro_rules! layout {
        ($t:ident { $($f:ident),* }) => {{
            let name = stringify!($t);
            let size = size_of::<$t>();
            writeln!(s, "CHECK(sizeof({name}) == {size}, \"sizeof({name})\");").unwrap();
            $(
                let field = stringify!($f);
                let at = offset_of!($t, $f);
                writeln!(s, "CHECK(offsetof({name}, {field}) == {at}, \"offsetof({name}, {field})\");").unwrap();
            )*
        }};
    }
    layout!(LMQ_TRANSPORTBUFFER {
        BufferSizeBytes,
        Buffer
    });
    layout!(LMQ_TRANSPORTBUFFERLIMITS {
        MaxBufferSizeBytes,
        MaxPendingSendBuffers,
        MaxPendingReceiveBuffers,
        MaxInlineDataSize
    });
    layout!(LMQ_MESSAGEFRAMEENUMHINT { Reserved });
    layout!(LMQ_PEERACCESSRULE { Access, Id });
    layout!(FILETIME {
        dwLowDateTime,
        dwHighDateTime
    });
    layout!(PROCESSOR_NUMBER {
        Group,
        Number,
        Reserved
    });
    layout!(GROUP_AFFINITY {
        Mask,
        Group,
        Reserved
    });
    s.push_str("int main(void) { return 0; }\n");
    s
}

#[test]
fn values_sizes_and_layouts_match_the_rust_declarations() {
    if !compilers_present() {
        return;
    }
    let source = layout_checks();
    for mode in &MODES {
        compile(mode, "values", &source);
    }
}

#[test]
fn headers_compile_as_lwmq_programs_include_them() {
    if !compilers_present() {
        return;
    }
    let body = "int main(void) {\n  LMQ_CHANNEL ch = NULL;\n  HRESULT hr = LmqCreateChannel(LMQ_CHANNELTYPE_ONE_TO_ONE, &ch);\n#if defined(__SIZEOF_WCHAR_T__) && __SIZEOF_WCHAR_T__ == 2\n  hr = LmqAddTransport(ch, L\"ipc://MiniChat-v1\", 65536, 4, 4, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL);\n#else\n  hr = LmqAddTransport(ch, u\"ipc://MiniChat-v1\", 65536, 4, 4, LMQ_TRANSPORTCREATIONFLAGS_SENDRECEIVE, NULL);\n#endif\n  (void)LmqTimeElapsedNsSince(LmqGetTickCountNs());\n  return FAILED(hr) ? 1 : 0;\n}\n";
    let orders: [(&str, &[&str]); 4] = [
        (
            "time-then-messaging",
            &["api-lwmq-time.h", "api-lwmq-messaging.h"],
        ),
        (
            "messaging-then-time",
            &["api-lwmq-messaging.h", "api-lwmq-time.h"],
        ),
        ("umbrella", &["lwmq.h"]),
        ("umbrella-twice", &["lwmq.h", "api-lwmq-time.h", "lwmq.h"]),
    ];
    for (name, includes) in orders {
        let mut source = String::from("#include <stddef.h>\n");
        for i in includes {
            writeln!(source, "#include <{i}>").unwrap();
        }
        source.push_str(body);
        for mode in &MODES {
            compile(mode, name, &source);
        }
    }
    // Each header alone.
    compile(
        &MODES[0],
        "time-alone",
        "#include <api-lwmq-time.h>\nint main(void) { FILETIME a = {0, 0}; return (int)LmqTimeElapsed(&a, &a); }\n",
    );
    compile(
        &MODES[3],
        "messaging-alone",
        "#include <api-lwmq-messaging.h>\nint main(void) { USHORT n = 0; return (int)LmqQueryMaxInlineFrameSize(&n); }\n",
    );
}

/// Builds `tests/c/names.cpp` in one `wchar_t` mode, links it against
/// `liblwmq.so` and runs it.
fn names(short_wchar: bool) {
    let src = crate_dir().join("tests/c/names.cpp");
    let lib = common::lib_dir();
    let exe = common::out_dir("header").join(if short_wchar { "names-sw" } else { "names" });
    let mut cmd = Command::new("g++");
    cmd.args([
        "-std=c++20",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pedantic",
        "-I",
    ])
    .arg(include_dir());
    if short_wchar {
        cmd.arg("-fshort-wchar");
    }
    let out = cmd
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-llwmq")
        .output()
        .expect("g++ runs");
    assert!(
        out.status.success(),
        "names.cpp (short wchar_t: {short_wchar}) does not build:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_names(&exe);
}

fn run_names(exe: &Path) {
    let out = Command::new(exe).output().expect("names runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("names: ok"),
        "{} failed:\n{stdout}\n{}",
        exe.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_specified_name_has_its_type_with_short_wchar() {
    if !compilers_present() {
        return;
    }
    names(true);
}

#[test]
fn every_specified_name_has_its_type_with_4_byte_wchar() {
    if !compilers_present() {
        return;
    }
    names(false);
}
