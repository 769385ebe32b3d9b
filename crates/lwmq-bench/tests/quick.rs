//! Runs the built `lwmq-bench` at its smallest size so that it cannot rot:
//! the tables, the JSON and the SVG must appear, every lwmq run must
//! succeed, and an iceoryx2 run (also one interrupted by SIGINT) must leave
//! nothing in /dev/shm or /tmp/iceoryx2. No speed is asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BENCH: &str = env!("CARGO_BIN_EXE_lwmq-bench");

/// The iceoryx2 tests run one at a time: each checks that the iceoryx2
/// root directory is gone afterwards if it was not there before.
static IOX: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lwmq-bench-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Entries under `dir` (recursively) whose names contain `needle`.
fn entries_with(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().contains(needle) {
                out.push(p.clone());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(entries_with(&p, needle));
            }
        }
    }
    out
}

/// Processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(needle) {
                out.push(c);
            }
        }
    }
    out
}

fn assert_no_leftovers(pid: u32, root_existed: bool) {
    let prefix = format!("lwmqb{pid}_");
    let shm = entries_with(Path::new("/dev/shm"), &prefix);
    assert!(shm.is_empty(), "left in /dev/shm: {shm:?}");
    let tmp = entries_with(Path::new("/tmp/iceoryx2"), &prefix);
    assert!(tmp.is_empty(), "left in /tmp/iceoryx2: {tmp:?}");
    if !root_existed {
        assert!(
            !Path::new("/tmp/iceoryx2").exists(),
            "/tmp/iceoryx2 was left behind"
        );
    }
}

/// Runs `lwmq-bench --smoke ARGS --json JSON`, which must succeed; its
/// stdout and stderr.
fn smoke(args: &[&str], json: &Path) -> (String, String) {
    let out = Command::new(BENCH)
        .arg("--smoke")
        .args(args)
        .arg("--json")
        .arg(json)
        .output()
        .expect("run lwmq-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "exit {}\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

#[test]
fn smoke_lwmq_writes_table_json_and_svg() {
    let dir = scratch("lwmq");
    let json = dir.join("out.json");
    let (stdout, stderr) = smoke(&["--only", "lwmq"], &json);
    for needle in [
        "## Machine limits",
        "## Throughput",
        "## One-way latency",
        "| 64 | lwmq |",
        "| 640,000 | lwmq-raw |",
        "| 6,400 | lwmq-futex |",
        "| 640,000 | lwmq-lend |",
        "| 64 | lwmq-batch |",
        "| 64 | lwmq-tcp |",
        "| 64 | lwmq-async |",
        "## Sparse latency",
        "| 10 ms | lwmq-raw |",
        "| 1 ms | lwmq-async |",
        "## Idle lwmq messaging pair",
        "## Targets of issue 13",
        "640,000 B messaging throughput >= 50% of copy bandwidth",
        "64 B messaging in batches (lwmq-batch) >= 1.0x uds-batch",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing from\n{stdout}");
    }
    assert!(
        !stdout.contains("error"),
        "a run failed:\n{stdout}\n{stderr}"
    );
    assert!(stderr.contains("[1/"), "no progress line: {stderr}");

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read JSON"))
            .expect("parse JSON");
    let samples = doc["samples"].as_array().expect("samples");
    // `lwmq` is every lwmq variant, the tcp:// ones included:
    // 1 limits + 1 idle + 3 sizes x 7 (thr) + 2 sizes x 3 (lat, ipc://)
    // + 3 (lat at 64 B only: tcp://, lwmq-async) + 2 pauses x 4 (sparse,
    // ipc:// only).
    assert_eq!(samples.len(), 40, "{samples:?}");
    for s in samples {
        assert!(s.get("result").is_some(), "failed sample: {s}");
    }
    assert!(doc["summary"]["thr"]
        .as_array()
        .is_some_and(|a| a.len() == 21));
    assert!(doc["summary"]["lat"]
        .as_array()
        .is_some_and(|a| a.len() == 9));
    assert!(doc["summary"]["sparse"]
        .as_array()
        .is_some_and(|a| a.len() == 8));

    let svg = std::fs::read_to_string(json.with_extension("svg")).expect("read SVG");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("Throughput") && svg.contains("latency"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The async rows (issue 16): `lwmq-async` and `uds-tokio` at 64 B, back to
/// back and sparse, each right after its sync row, and the comparison of
/// the four in the table and the JSON. No speed is asserted.
#[test]
fn smoke_async_rows_next_to_their_sync_rows() {
    let dir = scratch("async");
    let json = dir.join("async.json");
    let (stdout, stderr) = smoke(
        &["--only", "lwmq-async,uds-tokio,lwmq-msg,uds-single"],
        &json,
    );
    assert!(
        !stdout.contains("error"),
        "a run failed:\n{stdout}\n{stderr}"
    );
    // The latency and sparse tables, in that order (the throughput table
    // before them has `uds` rows too).
    let section = |from: &str, to: &str| {
        let a = stdout
            .find(from)
            .unwrap_or_else(|| panic!("{from:?} missing from\n{stdout}"));
        let b = stdout[a..].find(to).map_or(stdout.len(), |b| a + b);
        stdout[a..b].to_string()
    };
    let at = |text: &str, needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from\n{text}"))
    };
    let lat = section("## One-way latency", "## Sparse latency");
    assert!(at(&lat, "| 64 | lwmq |") < at(&lat, "| 64 | lwmq-async |"));
    assert!(at(&lat, "| 64 | lwmq-async |") < at(&lat, "| 64 | uds |"));
    assert!(at(&lat, "| 64 | uds |") < at(&lat, "| 64 | uds-tokio |"));
    assert!(!lat.contains("| 6,400 | lwmq-async |"), "{lat}");
    assert!(!lat.contains("| 6,400 | uds-tokio |"), "{lat}");
    let sparse = section("## Sparse latency", "## Async receive on tokio");
    for pause in ["1 ms", "10 ms"] {
        let row = |lib: &str| at(&sparse, &format!("| {pause} | {lib} |"));
        assert!(row("lwmq") < row("lwmq-async"));
        assert!(row("uds") < row("uds-tokio"));
    }
    let cmp = section("## Async receive on tokio", "## Idle");
    at(&cmp, "| back to back |");
    at(&cmp, "| sparse, 1 ms pause |");
    at(&cmp, "| sparse, 10 ms pause |");

    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read JSON"))
            .expect("parse JSON");
    let samples = doc["samples"].as_array().expect("samples");
    for s in samples {
        assert!(s.get("result").is_some(), "failed sample: {s}");
    }
    // lwmq-async and uds-tokio: latency at 64 B and the two sparse pauses.
    for lib in ["lwmq-async", "uds-tokio"] {
        let mine: Vec<_> = samples.iter().filter(|s| s["lib"] == lib).collect();
        assert_eq!(mine.len(), 3, "{mine:?}");
        assert!(mine.iter().all(|s| s["size"] == 64 && s["kind"] != "thr"));
    }
    let lat = doc["summary"]["lat"].as_array().expect("lat");
    let row = |lib: &str| {
        lat.iter()
            .find(|r| r["lib"] == lib && r["size"] == 64)
            .unwrap_or_else(|| panic!("no {lib} row in {lat:?}"))
    };
    assert!(row("lwmq-async")["ratio_to_lwmq"].is_f64());
    assert!(row("lwmq-async")["ratio_to_uds_tokio"].is_f64());
    assert!(row("uds-tokio")["ratio_to_uds"].is_f64());
    let cmp = doc["summary"]["async"].as_array().expect("async");
    assert_eq!(cmp.len(), 3, "{cmp:?}");
    assert!(cmp.iter().all(|c| c["lwmq_async_vs_lwmq_p50"].is_f64()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn iceoryx2_runs_leave_nothing_behind() {
    let _one = IOX.lock().unwrap_or_else(|p| p.into_inner());
    let root_existed = Path::new("/tmp/iceoryx2").exists();
    let dir = scratch("iox");
    let child = Command::new(BENCH)
        .args(["--smoke", "--only", "iceoryx2", "--svg"])
        .arg(dir.join("iox.svg"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lwmq-bench");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("| 64 | iceoryx2 |"), "{stdout}");
    assert!(stdout.contains("| 1 ms | iceoryx2 |"), "{stdout}");
    assert!(!stdout.contains("error"), "a run failed:\n{stdout}");
    assert_no_leftovers(pid, root_existed);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigint_kills_children_and_cleans_up() {
    let _one = IOX.lock().unwrap_or_else(|p| p.into_inner());
    let root_existed = Path::new("/tmp/iceoryx2").exists();
    let dir = scratch("sigint");
    let mut child = Command::new(BENCH)
        .args(["--smoke", "--only", "iceoryx2", "--reps", "100", "--svg"])
        .arg(dir.join("int.svg"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run lwmq-bench");
    let pid = child.id();
    let marker = format!("lwmqbench{pid}x");
    // Wait until an iceoryx2 peer runs, then interrupt the bench only.
    let start = Instant::now();
    while processes_with(&marker).is_empty() && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let p = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process(p, rustix::process::Signal::INT).expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "{status}");
    // Killed children are reaped by init once the bench is gone.
    let start = Instant::now();
    while !processes_with(&marker).is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        processes_with(&marker).is_empty(),
        "children left: {:?}",
        processes_with(&marker)
    );
    assert_no_leftovers(pid, root_existed);
    let _ = std::fs::remove_dir_all(&dir);
}
