//! TCP sockets for BGP: the listener, outgoing connections bound to a local
//! address, and the per-peer options: TTL (1 for directly connected eBGP,
//! more for multihop), GTSM (RFC 5082: send 255, require 256 - hops) and
//! TCP MD5 signatures (RFC 2385).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use ipnet::IpNet;
use socket2::{Domain, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Per-peer socket options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SocketOptions {
    /// TTL (hop limit) of packets we send.
    pub ttl: Option<u8>,
    /// GTSM: the smallest TTL accepted on received packets.
    pub min_ttl: Option<u8>,
}

impl SocketOptions {
    /// The options for a peer: GTSM wins over multihop; a plain eBGP
    /// session sends TTL 1 (RFC 4271 §5 convention), iBGP the default.
    pub fn for_peer(ebgp: bool, multihop: Option<u8>, ttl_security: Option<u8>) -> Self {
        match (ttl_security, multihop) {
            (Some(hops), _) => SocketOptions {
                ttl: Some(255),
                min_ttl: Some(255u8.saturating_sub(hops - 1).max(1)),
            },
            (None, Some(ttl)) => SocketOptions {
                ttl: Some(ttl),
                min_ttl: None,
            },
            (None, None) if ebgp => SocketOptions {
                ttl: Some(1),
                min_ttl: None,
            },
            (None, None) => SocketOptions::default(),
        }
    }

    pub fn apply(&self, sock: SockRef<'_>, v6: bool) -> io::Result<()> {
        if let Some(ttl) = self.ttl {
            if v6 {
                sock.set_unicast_hops_v6(u32::from(ttl))?;
            } else {
                sock.set_ttl_v4(u32::from(ttl))?;
            }
        }
        if let Some(min) = self.min_ttl {
            let (level, name) = if v6 {
                (libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT)
            } else {
                (libc::IPPROTO_IP, libc::IP_MINTTL)
            };
            setsockopt_int(sock.as_raw_fd(), level, name, libc::c_int::from(min))?;
        }
        Ok(())
    }
}

/// Binds a listener; `[::]` also accepts IPv4 (as IPv4-mapped addresses).
///
/// The listener sends with TTL 255: its SYN-ACK leaves before per-peer
/// options can be set on the accepted socket, and a GTSM peer drops
/// anything below 255. Peers that do not check are not affected.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    if addr.is_ipv6() {
        sock.set_only_v6(false)?;
        sock.set_unicast_hops_v6(255)?;
    }
    sock.set_ttl_v4(255)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(128)?;
    TcpListener::from_std(sock.into())
}

/// Dials `remote`, from `local` when given, with the peer's options and
/// MD5 key set before the SYN goes out.
pub async fn connect(
    remote: SocketAddr,
    local: Option<IpAddr>,
    options: &SocketOptions,
    md5: Option<&[u8]>,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let sock = if remote.is_ipv6() {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    if let Some(local) = local {
        sock.bind(SocketAddr::new(local, 0))?;
    }
    options.apply(SockRef::from(&sock), remote.is_ipv6())?;
    if let Some(key) = md5 {
        set_md5(
            sock.as_raw_fd(),
            remote.is_ipv6(),
            IpNet::from(remote.ip()),
            Some(key),
        )?;
    }
    let stream = tokio::time::timeout(timeout, sock.connect(remote))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// `struct tcp_md5sig` of linux/tcp.h.
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: libc::c_int,
    key: [u8; 80],
}

const TCP_MD5SIG_EXT: libc::c_int = 32;
const TCP_MD5SIG_FLAG_PREFIX: u8 = 1;

/// Sets (or with `None` removes) the MD5 key for a peer address or range
/// on a socket. `socket_v6` says whether the socket is IPv6: an IPv4 peer
/// reached through a dual-stack listener is keyed by its mapped address.
pub fn set_md5(fd: RawFd, socket_v6: bool, peer: IpNet, key: Option<&[u8]>) -> io::Result<()> {
    let (addr, prefix_len) = match peer {
        IpNet::V4(n) if socket_v6 => (IpAddr::V6(n.addr().to_ipv6_mapped()), n.prefix_len() + 96),
        other => (other.addr(), other.prefix_len()),
    };
    let key = key.unwrap_or_default();
    if key.len() > 80 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "MD5 key longer than 80 bytes",
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: sockaddr_storage(addr),
        flags: 0,
        prefix_len: 0,
        key_len: key.len() as u16,
        ifindex: 0,
        key: [0; 80],
    };
    sig.key[..key.len()].copy_from_slice(key);
    let full = if addr.is_ipv4() { 32 } else { 128 };
    let name = if prefix_len < full {
        sig.flags = TCP_MD5SIG_FLAG_PREFIX;
        sig.prefix_len = prefix_len;
        TCP_MD5SIG_EXT
    } else {
        libc::TCP_MD5SIG
    };
    setsockopt(fd, libc::IPPROTO_TCP, name, &sig)
}

/// A `sockaddr_storage` holding `addr` with port 0.
#[allow(unsafe_code)]
fn sockaddr_storage(addr: IpAddr) -> libc::sockaddr_storage {
    // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let target = (&mut ss as *mut libc::sockaddr_storage).cast::<u8>();
    match addr {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: `sockaddr_storage` is larger than and aligned for
            // `sockaddr_in`, which is what the kernel reads at its start.
            unsafe { std::ptr::write(target.cast::<libc::sockaddr_in>(), sin) };
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: a.octets() },
                sin6_scope_id: 0,
            };
            // SAFETY: as above, for `sockaddr_in6`.
            unsafe { std::ptr::write(target.cast::<libc::sockaddr_in6>(), sin6) };
        }
    }
    ss
}

fn setsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    setsockopt(fd, level, name, &value)
}

#[allow(unsafe_code)]
fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live, initialised `T` for the duration of the
    // call and its size is passed alongside; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_per_peer_kind() {
        assert_eq!(
            SocketOptions::for_peer(true, None, None),
            SocketOptions {
                ttl: Some(1),
                min_ttl: None
            }
        );
        assert_eq!(
            SocketOptions::for_peer(false, None, None),
            SocketOptions::default()
        );
        assert_eq!(
            SocketOptions::for_peer(true, Some(4), None),
            SocketOptions {
                ttl: Some(4),
                min_ttl: None
            }
        );
        // RFC 5082: one hop allowed means only TTL 255 is accepted.
        assert_eq!(
            SocketOptions::for_peer(true, None, Some(1)),
            SocketOptions {
                ttl: Some(255),
                min_ttl: Some(255)
            }
        );
        assert_eq!(
            SocketOptions::for_peer(true, None, Some(3)),
            SocketOptions {
                ttl: Some(255),
                min_ttl: Some(253)
            }
        );
    }

    #[tokio::test]
    async fn options_and_md5_keys_apply_to_real_sockets() {
        let listener = listen("[::1]:0".parse().unwrap()).unwrap();
        let fd = listener.as_raw_fd();
        set_md5(fd, true, "::1/128".parse().unwrap(), Some(b"secret")).unwrap();
        set_md5(fd, true, "fd00:101::/64".parse().unwrap(), Some(b"range")).unwrap();
        set_md5(fd, true, "10.0.0.1/32".parse().unwrap(), Some(b"mapped")).unwrap();
        set_md5(fd, true, "::1/128".parse().unwrap(), None).unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = SocketOptions::for_peer(true, None, Some(1));
        let accept = tokio::spawn(async move { listener.accept().await.map(|(s, _)| s) });
        let stream = connect(
            addr,
            Some("::1".parse().unwrap()),
            &opts,
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let sock = SockRef::from(&stream);
        assert_eq!(sock.unicast_hops_v6().unwrap(), 255);
        accept.await.unwrap().unwrap();
    }
}
