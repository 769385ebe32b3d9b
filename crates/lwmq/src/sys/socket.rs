//! Abstract-namespace `SOCK_SEQPACKET` Unix sockets: rendezvous, handshake
//! messages with an optional descriptor (`SCM_RIGHTS`), peer credentials
//! (`SO_PEERCRED`) and liveness (`poll` for hang-up).
//!
//! Abstract names (a leading NUL byte in `sun_path`) live in the kernel only:
//! nothing appears on disk and the name is released the instant the last
//! descriptor of the bound socket closes, including when its process dies.
//! `SOCK_SEQPACKET` keeps message boundaries, so each handshake message
//! arrives whole or not at all.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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
    /// Process id.
    pub pid: i32,
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
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

/// Connects to the abstract name. `ECONNREFUSED` means nobody listens.
pub fn connect(name: &[u8]) -> SysResult<OwnedFd> {
    let fd = new_socket()?;
    match rustix::net::connect(&fd, &abstract_addr(name)?) {
        Ok(()) => Ok(fd),
        // A non-blocking connect to a full backlog says EAGAIN; report it
        // as the retryable condition it is.
        Err(e) => Err(SysError::new("connect(abstract unix socket)", e)),
    }
}

/// Accepts one pending connection, `None` if there is none.
pub fn accept(listener: &OwnedFd) -> SysResult<Option<OwnedFd>> {
    match rustix::net::accept_with(listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::AGAIN) | Err(Errno::INTR) | Err(Errno::CONNABORTED) => Ok(None),
        Err(e) => Err(SysError::new("accept", e)),
    }
}

/// The kernel-recorded credentials of the peer.
pub fn peer_cred(fd: &OwnedFd) -> SysResult<PeerCred> {
    let c = rustix::net::sockopt::socket_peercred(fd).call("getsockopt(SO_PEERCRED)")?;
    Ok(PeerCred {
        pid: c.pid.as_raw_nonzero().get(),
        uid: c.uid.as_raw(),
        gid: c.gid.as_raw(),
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
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(a) = attach {
        fds = [a];
        control.push(SendAncillaryMessage::ScmRights(&fds));
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
    /// The first descriptor attached, if any. Any others are closed.
    pub fd: Option<OwnedFd>,
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
    let mut first = None;
    for m in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            for f in fds {
                // Keep the first, let the rest drop (close).
                if first.is_none() {
                    first = Some(f);
                }
            }
        }
    }
    Ok(Received {
        len: msg.bytes,
        truncated: msg.flags.contains(rustix::net::ReturnFlags::TRUNC),
        fds_dropped: msg.flags.contains(rustix::net::ReturnFlags::CTRUNC),
        fd: first,
    })
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
