//! Abstract-namespace `SOCK_SEQPACKET` Unix sockets: rendezvous, handshake
//! messages with an optional descriptor (`SCM_RIGHTS`), peer credentials
//! (`SO_PEERCRED`) and liveness (`poll` for hang-up).
//!
//! Abstract names (a leading NUL byte in `sun_path`) live in the kernel only:
//! nothing appears on disk and the name is released the instant the last
//! descriptor of the bound socket closes, including when its process dies.
//! `SOCK_SEQPACKET` keeps message boundaries, so each handshake message
//! arrives whole or not at all.

use std::fmt;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

use super::{Call, SysError, SysResult};

/// Credentials of the process at the other end of a connected socket, as
/// recorded by the kernel when the connection was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerCred {
    /// Process id as seen from this process's pid namespace; `None` when
    /// the kernel reports 0: the peer lives in a pid namespace this process
    /// cannot see (another container sharing the network namespace, or a
    /// sibling `unshare -p`).
    pub pid: Option<u32>,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
}

impl PeerCred {
    /// The pid for log lines and refusal texts: `pid 42`, or
    /// `unknown pid (another pid namespace)`.
    pub fn pid_text(&self) -> String {
        match self.pid {
            Some(p) => format!("pid {p}"),
            None => "unknown pid (another pid namespace)".to_owned(),
        }
    }
}

impl fmt::Display for PeerCred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} uid {} gid {}", self.pid_text(), self.uid, self.gid)
    }
}

fn new_socket() -> SysResult<OwnedFd> {
    rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )
    .call("socket(AF_UNIX, SOCK_SEQPACKET)")
}

fn abstract_addr(name: &[u8]) -> SysResult<SocketAddrUnix> {
    SocketAddrUnix::new_abstract_name(name).call("sockaddr_un(abstract)")
}

/// Binds and listens on the abstract name. `EADDRINUSE` means another live
/// server holds it.
pub fn listen(name: &[u8]) -> SysResult<OwnedFd> {
    let fd = new_socket()?;
    rustix::net::bind(&fd, &abstract_addr(name)?).call("bind(abstract unix socket)")?;
    rustix::net::listen(&fd, 64).call("listen")?;
    Ok(fd)
}

/// Connects to the abstract name without waiting. `ECONNREFUSED` means
/// nobody listens; `EAGAIN` that the server's accept queue is full.
pub fn connect(name: &[u8]) -> SysResult<OwnedFd> {
    let fd = new_socket()?;
    match rustix::net::connect(&fd, &abstract_addr(name)?) {
        Ok(()) => Ok(fd),
        // A non-blocking connect to a full backlog says EAGAIN; report it
        // as the retryable condition it is.
        Err(e) => Err(SysError::new("connect(abstract unix socket)", e)),
    }
}

/// Connects to the abstract name, waiting up to `wait` for room in the
/// server's accept queue if it is full. The socket is non-blocking once
/// connected, like every other.
///
/// Why wait: anyone may fill the queue of an abstract socket (connect and
/// close in a loop). A non-blocking connect then fails whenever it happens
/// to find the queue full, however fast the server drains it; a blocking
/// one sleeps on the listening socket and is woken when the server accepts
/// and a place frees up, so it competes for every free place instead of
/// sampling the queue once per retry (under a 16-thread flood: connected
/// and done in 0.13-0.45 s instead of 0.5-5.3 s; docs/decisions.md, 42).
/// `EAGAIN` after `wait` means the queue stayed full; `EINTR` is reported
/// as `EAGAIN` (try again later).
pub fn connect_waiting(name: &[u8], wait: Duration) -> SysResult<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .call("socket(AF_UNIX, SOCK_SEQPACKET)")?;
    // A zero timeout would mean "wait for ever".
    let wait = wait.max(Duration::from_millis(1));
    rustix::net::sockopt::set_socket_timeout(&fd, rustix::net::sockopt::Timeout::Send, Some(wait))
        .call("setsockopt(SO_SNDTIMEO)")?;
    match rustix::net::connect(&fd, &abstract_addr(name)?) {
        Ok(()) => {}
        Err(Errno::INTR) => {
            return Err(SysError::new("connect(abstract unix socket)", Errno::AGAIN))
        }
        Err(e) => return Err(SysError::new("connect(abstract unix socket)", e)),
    }
    rustix::io::ioctl_fionbio(&fd, true).call("ioctl(FIONBIO)")?;
    Ok(fd)
}

/// Accepts one pending connection, `None` if there is none.
pub fn accept(listener: &OwnedFd) -> SysResult<Option<OwnedFd>> {
    match rustix::net::accept_with(listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::CONNABORTED) => Ok(None),
        Err(e) => Err(SysError::new("accept", e)),
    }
}

/// The kernel-recorded credentials of the peer (`getsockopt(SO_PEERCRED)`,
/// see `unix(7)`).
///
/// Read into the C library's plain `struct ucred` rather than with
/// `rustix::net::sockopt::socket_peercred`: rustix's `UCred` holds the pid
/// as a non-zero integer, but the kernel reports pid 0 for a peer outside
/// our pid namespace, and producing a zero non-zero integer is undefined
/// behaviour (it surfaced as a bogus `Err` with errno 0, and the connection
/// was dropped without a word). Here pid 0 becomes [`PeerCred::pid`] `None`.
pub fn peer_cred(fd: &OwnedFd) -> SysResult<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `fd` stays open for the call (it is borrowed; if it is not a
    // socket the kernel fails with ENOTSOCK and writes nothing). The kernel
    // writes at most `len` bytes into `cred`, a plain `#[repr(C)]` struct
    // of three integers for which every bit pattern (pid 0 included) is a
    // valid value, and writes the length it used into `len`. Both are
    // locals that nothing else refers to.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            std::ptr::addr_of_mut!(cred).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(SysError::new(
            "getsockopt(SO_PEERCRED)",
            Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO),
        ));
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        // Never seen: the kernel always fills the whole struct.
        return Err(SysError::new("getsockopt(SO_PEERCRED)", Errno::PROTO));
    }
    Ok(PeerCred {
        // A pid is never negative; treat a negative one like 0 (unknown).
        pid: u32::try_from(cred.pid).ok().filter(|p| *p != 0),
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Our own effective user and group ids.
pub fn own_ids() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

/// What [`wait`] saw on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Data (or EOF) can be read.
    Readable,
    /// The peer hung up or the socket failed.
    HungUp,
    /// Nothing happened before the timeout.
    TimedOut,
}

/// Waits until one socket is readable or hung up, or the timeout passes.
pub fn wait(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> SysResult<Readiness> {
    let mut fds = [PollFd::new(&fd, PollFlags::IN)];
    match poll(&mut fds, timeout)? {
        0 => Ok(Readiness::TimedOut),
        _ => {
            let r = fds[0].revents();
            if r.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                Ok(Readiness::HungUp)
            } else {
                Ok(Readiness::Readable)
            }
        }
    }
}

/// `poll` with a `Duration` timeout (`None` = forever). `EINTR` counts as
/// "nothing ready".
pub fn poll(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> SysResult<usize> {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    });
    match rustix::event::poll(fds, ts.as_ref()) {
        Ok(n) => Ok(n),
        Err(Errno::INTR) => Ok(0),
        Err(e) => Err(SysError::new("poll", e)),
    }
}

/// Sends one message, optionally with one descriptor attached.
pub fn send(fd: &OwnedFd, bytes: &[u8], attach: Option<BorrowedFd<'_>>) -> SysResult<()> {
    match attach {
        Some(a) => send_fds(fd, bytes, &[a]),
        None => send_fds(fd, bytes, &[]),
    }
}

/// Sends one message with up to two descriptors attached (in one
/// `SCM_RIGHTS` message, received in this order by [`recv`]).
pub fn send_fds(fd: &OwnedFd, bytes: &[u8], attach: &[BorrowedFd<'_>]) -> SysResult<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !attach.is_empty() && !control.push(SendAncillaryMessage::ScmRights(attach)) {
        return Err(SysError::new(
            "sendmsg (more than two descriptors)",
            Errno::INVAL,
        ));
    }
    let n = rustix::net::sendmsg(
        fd,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
    )
    .call("sendmsg")?;
    if n != bytes.len() {
        return Err(SysError::new("sendmsg (short write)", Errno::MSGSIZE));
    }
    Ok(())
}

/// One received message.
#[derive(Debug)]
pub struct Received {
    /// Bytes received (0 with no descriptor means end of stream).
    pub len: usize,
    /// True if the message was longer than the buffer (the rest is lost).
    pub truncated: bool,
    /// True if the kernel dropped attached descriptors (`MSG_CTRUNC`),
    /// typically because this process has no free descriptor slot.
    pub fds_dropped: bool,
    /// The first descriptor attached, if any.
    pub fd: Option<OwnedFd>,
    /// The second descriptor attached, if any. Any others are closed.
    pub second: Option<OwnedFd>,
}

/// Receives one message without blocking (`EAGAIN` is an error here: call
/// it after [`wait`] said readable).
pub fn recv(fd: &OwnedFd, buf: &mut [u8]) -> SysResult<Received> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        fd,
        &mut [IoSliceMut::new(buf)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC | RecvFlags::DONTWAIT,
    )
    .call("recvmsg")?;
    let (mut first, mut second) = (None, None);
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for f in fds {
                // Keep the first two, let the rest drop (close).
                if first.is_none() {
                    first = Some(f);
                } else if second.is_none() {
                    second = Some(f);
                }
            }
        }
    }
    Ok(Received {
        len: msg.bytes,
        truncated: msg.flags.contains(rustix::net::ReturnFlags::TRUNC),
        fds_dropped: msg.flags.contains(rustix::net::ReturnFlags::CTRUNC),
        fd: first,
        second,
    })
}

/// Checks that `fd`, received from a peer as its readiness descriptor, is
/// safe to write 8 bytes to and makes writes to it non-blocking: it must
/// be an anonymous inode (an eventfd, or another `anon_inode` file, which
/// rejects the write). A regular file, pipe, socket or device would let a
/// peer make this process write into a file, block, or take `SIGPIPE`.
pub fn check_readiness_fd(fd: &OwnedFd) -> Result<(), String> {
    let st =
        rustix::fs::fstat(fd).map_err(|e| format!("fstat of the readiness descriptor: {e}"))?;
    if st.st_mode & libc::S_IFMT != 0 {
        return Err(format!(
            "readiness descriptor is not an eventfd (file mode {:#o}; rule: the peer passes an eventfd)",
            st.st_mode
        ));
    }
    rustix::fs::fcntl_setfl(fd, rustix::fs::OFlags::NONBLOCK)
        .map_err(|e| format!("fcntl(O_NONBLOCK) on the readiness descriptor: {e}"))
}

/// Shuts both directions down, so the peer sees end-of-stream at once even
/// if another descriptor to the socket stays open.
pub fn shutdown(fd: &OwnedFd) {
    let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
}

/// Borrow helper.
pub fn borrow(fd: &OwnedFd) -> BorrowedFd<'_> {
    fd.as_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_cred_of_a_socket_pair_is_our_own() {
        let (a, _b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap();
        let c = peer_cred(&a).unwrap();
        assert_eq!(c.pid, Some(std::process::id()));
        assert_eq!((c.uid, c.gid), own_ids());
        assert_eq!(c.pid_text(), format!("pid {}", std::process::id()));
        let unknown = PeerCred { pid: None, ..c };
        assert_eq!(unknown.pid_text(), "unknown pid (another pid namespace)");
    }

    #[test]
    fn peer_cred_of_a_non_socket_is_a_typed_error() {
        let fd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        let e = peer_cred(&fd).unwrap_err();
        assert_eq!(e.call, "getsockopt(SO_PEERCRED)");
        assert_eq!(e.errno, Errno::NOTSOCK);
    }
}
