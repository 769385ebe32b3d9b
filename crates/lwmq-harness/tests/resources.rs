//! Resource failures, in real processes (`lwmq-limits-peer` lowers its own
//! limits and fills its descriptor table on request): every failure is a
//! typed error or a refusal with reason "shared section could not be set
//! up" (`Resources`), nothing panics, established connections keep
//! working, and the next attempt after the resource is back succeeds.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

fn limits_peer(args: &[&str]) -> Peer {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lwmq-limits-peer"));
    c.args(args);
    spawn_cmd(c)
}

/// A control directory for one `lwmq-limits-peer`.
struct Ctl(PathBuf);

impl Ctl {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("lwmq-ctl-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Ctl(dir)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    /// Asks the peer to act, and waits for its acknowledgement.
    fn act(&self, peer: &mut Peer, file: &str, ack: &str) -> String {
        std::fs::write(self.0.join(file), b"").unwrap();
        peer.expect(ack, LIVENESS)
    }
}

impl Drop for Ctl {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An `lwmq-peer` server receiving checked payloads forever.
fn raw_server(uri: &str) -> Peer {
    let mut server = spawn(&[
        "recv",
        uri,
        "--role",
        "server",
        "--count",
        "0",
        "--buffer-size",
        "4096",
    ]);
    server.expect("OPEN server", LIVENESS);
    server
}

fn no_bad(p: &mut Peer) {
    p.drain();
    let bad: Vec<_> = p.seen.iter().filter(|l| l.starts_with("BAD")).collect();
    assert!(bad.is_empty(), "{bad:?}");
}

/// No free descriptor when a transport is created (as its channel opens):
/// a typed error naming the call (`eventfd` ... "Too many open files");
/// once descriptors are freed, the same process opens, connects and sends.
#[test]
fn descriptor_exhaustion_when_opening_a_transport_is_a_typed_error_and_recoverable() {
    let uri = unique("fd-add");
    let mut server = raw_server(&uri);
    let mut c = limits_peer(&["client", &uri, "--hog-first", "--count", "100"]);
    let hogged = c.expect("HOGGED", LIVENESS);
    c.expect("ADD ok", LIVENESS);
    let open = c.expect("OPEN", LIVENESS);
    assert!(
        open.starts_with("OPEN err")
            && open.contains("Too many open files")
            && open.contains("Sys"),
        "{open} (after {hogged})"
    );
    c.expect("FREED", LIVENESS);
    c.expect("RETRY ok", LIVENESS);
    c.expect("SENT 100", LIVENESS);
    assert!(c.wait_success(), "{}", c.stderr());
    server.expect("RUN", LIVENESS);
    no_bad(&mut server);
}

/// Regression test: a client with no free descriptor slot left for the
/// section's memfd (the kernel drops it from `SCM_RIGHTS` and sets
/// `MSG_CTRUNC`) used to blame the server ("handshake protocol error:
/// server sent no section descriptor"); it now refuses with `Resources`,
/// tells the server so, and connects once descriptors are free.
#[test]
fn client_without_a_descriptor_for_the_section_refuses_with_resources_then_recovers() {
    let uri = unique("fd-ctrunc");
    let ctl = Ctl::new("ctrunc");
    let mut c = limits_peer(&["client", &uri, "--ctl", ctl.path(), "--count", "100"]);
    c.expect("OPEN ok", LIVENESS);
    // Exactly one free slot: enough for the socket, none for the memfd.
    ctl.act(&mut c, "hog-but-one", "HOGGED");
    let mut server = raw_server(&uri);
    let err = c.expect("LASTERROR", LIVENESS);
    assert!(
        err.contains("shared section could not be set up") && err.contains("MSG_CTRUNC"),
        "{err}"
    );
    assert!(
        server.stderr_contains("peer refused us: shared section could not be set up"),
        "{}",
        server.stderr()
    );
    ctl.act(&mut c, "free", "FREED");
    c.expect("SENT 100", LIVENESS);
    assert!(c.wait_success(), "{}", c.stderr());
    server.expect("RUN", LIVENESS);
    no_bad(&mut server);
}

/// A server whose descriptor table is full keeps serving its connected
/// client; `accept` fails ("Too many open files", logged, 10 ms back-off)
/// for a second client, which is served once descriptors are free again.
#[test]
fn server_at_its_descriptor_limit_keeps_serving_and_recovers() {
    let uri = unique("fd-server");
    let ctl = Ctl::new("server");
    let mut server = limits_peer(&["server", &uri, "--ctl", ctl.path()]);
    server.expect("OPEN server", LIVENESS);
    let mut c1 = spawn(&[
        "send",
        &uri,
        "--role",
        "client",
        "--count",
        "0",
        "--buffer-size",
        "4096",
    ]);
    server.expect("RUN", LIVENESS);
    ctl.act(&mut server, "hog", "HOGGED");
    // Still served: more buffers arrive after the table is full.
    server.expect("RECEIVED", LIVENESS);
    server.expect("RECEIVED", LIVENESS);
    let mut c2 = limits_peer(&["client", &uri, "--count", "100"]);
    let err = server.expect("LASTERROR accept failed", LIVENESS);
    assert!(err.contains("Too many open files"), "{err}");
    // The first client goes away; whatever the second sees meanwhile (no
    // answer, or a `Resources` refusal when memfd_create finds no slot),
    // it is served once the descriptors are free.
    c1.kill9();
    ctl.act(&mut server, "free", "FREED");
    c2.expect("SENT 100", LIVENESS);
    assert!(c2.wait_success(), "{}", c2.stderr());
    assert!(matches!(server.child.try_wait(), Ok(None)), "server died");
    server.drain();
    let runs = server.seen.iter().filter(|l| l.starts_with("RUN")).count();
    assert_eq!(runs, 2, "{:?}", server.seen);
    no_bad(&mut server);
}

/// The shared section cannot be mapped (address-space limit): on the
/// server, the client is refused `Resources` with the failed call; on the
/// client, it refuses with `Resources` itself. Neither process panics, and
/// the next attempt after the limit is lifted connects.
#[test]
fn section_creation_out_of_memory_is_refused_with_resources_on_either_side() {
    const MIB: &str = "1048576"; // 1 MiB buffers: a 16+ MiB section
    for limited in ["server", "client"] {
        let uri = unique(&format!("as-{limited}"));
        let (sctl, cctl) = (
            Ctl::new(&format!("as-s-{limited}")),
            Ctl::new(&format!("as-c-{limited}")),
        );
        // The limited side starts first, so that its limit is in place
        // before the two meet.
        let spawn_server = || {
            let mut server =
                limits_peer(&["server", &uri, "--ctl", sctl.path(), "--buffer-size", MIB]);
            server.expect("OPEN server", LIVENESS);
            server
        };
        let spawn_client = || {
            let mut c = limits_peer(&[
                "client",
                &uri,
                "--ctl",
                cctl.path(),
                "--count",
                "100",
                "--buffer-size",
                MIB,
            ]);
            c.expect("OPEN ok", LIVENESS);
            c
        };
        let (mut server, mut c) = if limited == "server" {
            let mut server = spawn_server();
            sctl.act(&mut server, "as-limit", "ASLIMIT");
            (server, spawn_client())
        } else {
            let mut c = spawn_client();
            cctl.act(&mut c, "as-limit", "ASLIMIT");
            (spawn_server(), c)
        };
        let err = c.expect("LASTERROR", LIVENESS);
        assert!(
            err.contains("shared section could not be set up") && err.contains("mmap"),
            "{limited}: {err}"
        );
        let limited_peer = if limited == "server" {
            (&sctl, &mut server)
        } else {
            (&cctl, &mut c)
        };
        limited_peer.0.act(limited_peer.1, "as-free", "ASFREE");
        c.expect("SENT 100", LIVENESS);
        assert!(c.wait_success(), "{limited}: {}", c.stderr());
        server.expect("RUN", LIVENESS);
        assert!(
            matches!(server.child.try_wait(), Ok(None)),
            "{limited}: server died"
        );
        no_bad(&mut server);
        server.kill9();
    }
}
