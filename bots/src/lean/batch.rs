//! Batched datagram reads that keep each datagram's arrival time exact.
//!
//! A lean bot reads its socket on a tick rather than on every datagram: one `recvmmsg`
//! takes everything that queued since the last tick. Reading later does not make the
//! measurement later: the kernel stamps every datagram as it arrives (`SO_TIMESTAMPNS`),
//! and that stamp, not the time the bot got round to it, is the packet's arrival. The
//! kernel also counts the datagrams it dropped because the socket's queue was full
//! (`SO_RXQ_OVFL`, carried by the next datagram queued after a drop): a bot that read
//! too late loses packets the SFU did send, and that count is how the harness knows it
//! fell behind instead of blaming the SFU.
//!
//! Linux only (the harness's platform); the buffers are shared by every lean bot on a
//! thread, since a batch is handled in full before the bot awaits again.

use std::cell::RefCell;
use std::io;
use std::mem::{MaybeUninit, size_of, zeroed};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams one `recvmmsg` takes at most.
pub const SLOTS: usize = 32;
/// Largest datagram kept (LiveKit's stay under the 1,500-byte MTU).
pub const MAX_DATAGRAM: usize = 1500;
/// Room for a timestamp and an overflow counter per datagram.
const CMSG_BYTES: usize = 64;
/// Receive buffer a lean socket asks for, so a tick's worth of video (a keyframe burst
/// included) always fits; the kernel caps it at `net.core.rmem_max`.
const RCVBUF: libc::c_int = 1 << 20;

/// One datagram of a batch.
pub struct Datagram<'a> {
    pub data: &'a [u8],
    pub from: SocketAddr,
    /// When the kernel received it (wall clock), if it said.
    pub arrived: Option<SystemTime>,
}

struct Buffers {
    data: Vec<[u8; MAX_DATAGRAM]>,
    names: Vec<libc::sockaddr_storage>,
    control: Vec<[u8; CMSG_BYTES]>,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers {
        data: vec![[0; MAX_DATAGRAM]; SLOTS],
        // SAFETY: sockaddr_storage is plain old data; all zeroes is a valid value.
        names: vec![unsafe { zeroed() }; SLOTS],
        control: vec![[0; CMSG_BYTES]; SLOTS],
    });
}

/// Asks the kernel for receive timestamps and drop counts on `socket`, and for a
/// receive buffer that holds a tick of traffic.
pub fn prepare(socket: &impl AsRawFd) -> io::Result<()> {
    let fd = socket.as_raw_fd();
    let on: libc::c_int = 1;
    for (opt, value) in [
        (libc::SO_TIMESTAMPNS, on),
        (libc::SO_RXQ_OVFL, on),
        (libc::SO_RCVBUF, RCVBUF),
    ] {
        // SAFETY: a valid fd and a pointer to a c_int of the size given.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&value as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What a drain of the socket found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub datagrams: usize,
    /// The kernel's count of datagrams dropped on this socket so far (full queue).
    pub dropped_total: Option<u32>,
}

/// A socket to drain: one registered with tokio's reactor (its readiness is cleared
/// when it runs dry), or a plain non-blocking one that is read only on a tick and so
/// wakes nothing when datagrams arrive.
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Registered(&'a UdpSocket),
    Plain(&'a std::net::UdpSocket),
}

/// Reads every datagram waiting on `socket` (without blocking), handing each to `each`
/// in arrival order.
pub fn drain(socket: Source<'_>, mut each: impl FnMut(Datagram<'_>)) -> io::Result<Drained> {
    let mut out = Drained::default();
    loop {
        let n = BUFFERS.with(|b| {
            let mut b = b.borrow_mut();
            let got = match socket {
                Source::Registered(s) => {
                    s.try_io(Interest::READABLE, || recv_batch(s.as_raw_fd(), &mut b))?
                }
                Source::Plain(s) => recv_batch(s.as_raw_fd(), &mut b)?,
            };
            for i in 0..got.len {
                let (arrived, dropped) = control(&b.control[i], got.control_len[i]);
                if dropped.is_some() {
                    out.dropped_total = dropped;
                }
                let Some(from) = address(&b.names[i]) else {
                    continue;
                };
                each(Datagram {
                    data: &b.data[i][..got.bytes[i].min(MAX_DATAGRAM)],
                    from,
                    arrived,
                });
            }
            Ok::<usize, io::Error>(got.len)
        });
        match n {
            Ok(n) => {
                out.datagrams += n;
                if n < SLOTS {
                    return Ok(out);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

struct Got {
    len: usize,
    bytes: [usize; SLOTS],
    control_len: [usize; SLOTS],
}

fn recv_batch(fd: std::os::fd::RawFd, b: &mut Buffers) -> io::Result<Got> {
    let mut iov: [MaybeUninit<libc::iovec>; SLOTS] = [const { MaybeUninit::uninit() }; SLOTS];
    // SAFETY: mmsghdr is plain old data; all zeroes is a valid value.
    let mut msgs: [libc::mmsghdr; SLOTS] = unsafe { zeroed() };
    let Buffers {
        data,
        names,
        control,
    } = b;
    for i in 0..SLOTS {
        iov[i].write(libc::iovec {
            iov_base: data[i].as_mut_ptr().cast(),
            iov_len: MAX_DATAGRAM,
        });
        let h = &mut msgs[i].msg_hdr;
        h.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
        h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        h.msg_iov = iov[i].as_mut_ptr();
        h.msg_iovlen = 1;
        h.msg_control = control[i].as_mut_ptr().cast();
        h.msg_controllen = CMSG_BYTES as _;
    }
    // SAFETY: every header points at buffers that outlive the call, with their sizes.
    let n = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            SLOTS as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut got = Got {
        len: n as usize,
        bytes: [0; SLOTS],
        control_len: [0; SLOTS],
    };
    for (i, m) in msgs.iter().take(got.len).enumerate() {
        got.bytes[i] = m.msg_len as usize;
        // `msg_controllen` is a usize on glibc and a u32 on musl.
        #[allow(clippy::unnecessary_cast)]
        {
            got.control_len[i] = m.msg_hdr.msg_controllen as usize;
        }
    }
    Ok(got)
}

/// The receive time and the drop counter in one datagram's control messages.
fn control(buf: &[u8; CMSG_BYTES], len: usize) -> (Option<SystemTime>, Option<u32>) {
    // SAFETY: a msghdr over the control bytes the kernel filled, walked with the libc
    // macros, which stay within msg_controllen.
    unsafe {
        let mut h: libc::msghdr = zeroed();
        h.msg_control = buf.as_ptr() as *mut libc::c_void;
        h.msg_controllen = len.min(CMSG_BYTES) as _;
        let (mut arrived, mut dropped) = (None, None);
        let mut c = libc::CMSG_FIRSTHDR(&h);
        while !c.is_null() {
            let data = libc::CMSG_DATA(c);
            if (*c).cmsg_level == libc::SOL_SOCKET {
                if (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = std::ptr::read_unaligned(data.cast::<libc::timespec>());
                    arrived =
                        UNIX_EPOCH.checked_add(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                } else if (*c).cmsg_type == libc::SO_RXQ_OVFL {
                    dropped = Some(std::ptr::read_unaligned(data.cast::<u32>()));
                }
            }
            c = libc::CMSG_NXTHDR(&h, c);
        }
        (arrived, dropped)
    }
}

fn address(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                u32::from_be(a.sin_addr.s_addr).into(),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                a.sin6_addr.s6_addr.into(),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Datagrams sent before a drain all come back in one drain, in order, each with a
    /// kernel timestamp no later than the drain and no earlier than its send.
    #[tokio::test]
    async fn a_drain_takes_everything_waiting_with_kernel_times() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        prepare(&rx).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let before = SystemTime::now();
        for i in 0..(SLOTS + 5) as u32 {
            tx.send_to(&i.to_be_bytes(), rx.local_addr().unwrap())
                .await
                .unwrap();
        }
        rx.readable().await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut seen = Vec::new();
        let drained = drain(Source::Registered(&rx), |d| {
            assert_eq!(d.from, tx.local_addr().unwrap());
            let at = d.arrived.expect("a kernel timestamp");
            assert!(at >= before - Duration::from_millis(5) && at <= SystemTime::now());
            seen.push(u32::from_be_bytes(d.data.try_into().unwrap()));
        })
        .unwrap();
        assert_eq!(drained.datagrams, SLOTS + 5);
        assert_eq!(seen, (0..(SLOTS + 5) as u32).collect::<Vec<_>>());
        // Nothing left: a second drain finds nothing and does not block.
        assert_eq!(
            drain(Source::Registered(&rx), |_| panic!("nothing"))
                .unwrap()
                .datagrams,
            0
        );
    }

    /// The twin: a socket whose queue is too small for what was sent reports the
    /// datagrams the kernel dropped, so a bot that read too late knows it.
    #[tokio::test]
    async fn a_full_socket_reports_what_the_kernel_dropped() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        prepare(&rx).unwrap();
        let small: libc::c_int = 4096;
        // SAFETY: a valid fd and a c_int of the size given.
        let r = unsafe {
            libc::setsockopt(
                rx.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&small as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let payload = [0u8; 1000];
        for _ in 0..200 {
            tx.send_to(&payload, rx.local_addr().unwrap())
                .await
                .unwrap();
        }
        rx.readable().await.unwrap();
        let queued = drain(Source::Registered(&rx), |_| {}).unwrap();
        assert!(queued.datagrams < 200, "{queued:?}");
        // The count rides on the datagrams queued after the drops: the next one.
        tx.send_to(&payload, rx.local_addr().unwrap())
            .await
            .unwrap();
        // Read as a lean peer reads once connected: a plain socket, on its tick.
        let rx = rx.into_std().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let next = drain(Source::Plain(&rx), |_| {}).unwrap();
        assert_eq!(next.datagrams, 1);
        let dropped = next.dropped_total.expect("the kernel's drop count");
        assert_eq!(
            queued.datagrams + dropped as usize,
            200,
            "{queued:?} {next:?}"
        );
    }
}
