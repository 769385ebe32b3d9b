//! The `ipc://` transport creates no file anywhere: a full run leaves the
//! usual places exactly as it found them.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

fn listing(root: &Path, depth: usize, out: &mut BTreeSet<String>) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        out.insert(p.display().to_string());
        if depth > 0 && e.file_type().is_ok_and(|t| t.is_dir()) {
            listing(&p, depth - 1, out);
        }
    }
}

fn snapshot() -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    listing(Path::new("/dev/shm"), 8, &mut s);
    listing(Path::new("/run"), 3, &mut s);
    listing(Path::new("/tmp"), 0, &mut s);
    listing(&std::env::current_dir().unwrap(), 0, &mut s);
    s
}

#[test]
fn a_full_run_creates_no_file() {
    let before = snapshot();
    let uri = unique("no-files");
    let mut receiver = spawn(&["recv", &uri, "--role", "server", "--count", "20000"]);
    receiver.expect("OPEN server", LIVENESS);
    let mut sender = spawn(&["send", &uri, "--role", "client", "--count", "20000"]);
    let done = receiver.expect("DONE", LIVENESS * 2);
    assert_eq!(done_field(&done, "bad"), 0);
    assert!(sender.wait_success());
    assert!(receiver.wait_success());
    let after = snapshot();
    let new: Vec<_> = after.difference(&before).collect();
    assert!(new.is_empty(), "files appeared: {new:?}");
}
