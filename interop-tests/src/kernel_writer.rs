//! The kernel's own limit for loading routes, as benchmarks compare
//! daemons with it: the fastest a program can hand a table to the kernel.
//!
//! - [`netlink_load`]: a minimal pipelined rtnetlink writer. Messages are
//!   packed many to a `sendmsg` and never wait for an acknowledgement (the
//!   kernel only answers errors), optionally all pointing at one shared
//!   nexthop object per family (`RTA_NH_ID`) instead of carrying the
//!   gateway.
//! - [`ip_batch`]: `ip -batch`, what a shell script would do.
//!
//! Both run in the calling thread's network namespace.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use ipnet::IpNet;

const NLMSG_ERROR: u16 = 2;
const RTM_NEWROUTE: u16 = 24;
const RTM_NEWNEXTHOP: u16 = 104;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_NH_ID: u16 = 30;
const NHA_ID: u16 = 1;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
/// `proto bgp`, as the daemons' routes.
const PROTOCOL: u8 = 186;
/// Bytes per `sendmsg`.
const BATCH: usize = 256 * 1024;

/// Where every route goes: a gateway per family on one link.
#[derive(Clone, Copy, Debug)]
pub struct Via {
    pub gateway4: Ipv4Addr,
    pub gateway6: Ipv6Addr,
    pub ifindex: u32,
}

/// What a load cost: route messages the kernel refused (0 when all went
/// in).
#[derive(Debug, Default)]
pub struct Loaded {
    pub refused: usize,
}

struct Socket(socket2::Socket);

impl Socket {
    fn open() -> std::io::Result<Socket> {
        let s = socket2::Socket::new(
            socket2::Domain::from(libc::AF_NETLINK),
            socket2::Type::RAW.cloexec(),
            Some(socket2::Protocol::from(libc::NETLINK_ROUTE)),
        )?;
        // Room for a whole batch each way (root may go past the limits).
        use nix::sys::socket::{setsockopt, sockopt};
        let _ = setsockopt(&s, sockopt::SndBufForce, &(8 << 20));
        let _ = setsockopt(&s, sockopt::RcvBufForce, &(8 << 20));
        Ok(Socket(s))
    }

    fn send(&self, buf: &[u8]) -> std::io::Result<()> {
        self.0.send(buf).map(drop)
    }

    /// Error answers waiting, without blocking; `wait` blocks for the
    /// first datagram.
    fn errors(&self, wait: bool) -> std::io::Result<usize> {
        use std::io::Read;
        let mut buf = vec![0u8; 1 << 16];
        let mut errors = 0;
        self.0.set_nonblocking(!wait)?;
        loop {
            let n = match (&self.0).read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(errors),
                Err(e) => return Err(e),
            };
            let mut at = 0;
            while at + 16 <= n {
                let len = u32::from_ne_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().expect("2 bytes"));
                if kind == NLMSG_ERROR && at + 20 <= n {
                    let code = i32::from_ne_bytes(buf[at + 16..at + 20].try_into().expect("4 bytes"));
                    if code != 0 {
                        errors += 1;
                    }
                }
                at += len.max(16).next_multiple_of(4);
            }
            self.0.set_nonblocking(true)?;
        }
    }
}

fn attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// Appends one netlink message: header, fixed part, attributes.
fn message(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; 16]);
    body(buf);
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    buf[start + 4..start + 6].copy_from_slice(&kind.to_ne_bytes());
    buf[start + 6..start + 8].copy_from_slice(&flags.to_ne_bytes());
    buf[start + 8..start + 12].copy_from_slice(&seq.to_ne_bytes());
}

fn address_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Loads `routes` into the main table with a pipelined writer; with
/// `nexthop_objects`, each route points at one nexthop object of its
/// family. Returns once every message is written and the kernel has
/// answered a final acknowledged request (so every route before it was
/// processed).
pub fn netlink_load(routes: &[IpNet], via: Via, nexthop_objects: bool) -> std::io::Result<Loaded> {
    let socket = Socket::open()?;
    let mut buf = Vec::with_capacity(BATCH + 4096);
    let mut seq = 0u32;
    // Object ids far from anything a daemon would use.
    let (nh4, nh6) = (0x7e57_0004u32, 0x7e57_0006u32);
    if nexthop_objects {
        for (id, family, gateway) in [
            (nh4, libc::AF_INET as u8, IpAddr::V4(via.gateway4)),
            (nh6, libc::AF_INET6 as u8, IpAddr::V6(via.gateway6)),
        ] {
            seq += 1;
            message(
                &mut buf,
                RTM_NEWNEXTHOP,
                NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK,
                seq,
                |b| {
                    // struct nhmsg: family, scope, protocol, reserved, flags.
                    b.extend_from_slice(&[family, 0, PROTOCOL, 0, 0, 0, 0, 0]);
                    attr(b, NHA_ID, &id.to_ne_bytes());
                    attr(b, NHA_OIF, &via.ifindex.to_ne_bytes());
                    attr(b, NHA_GATEWAY, &address_bytes(gateway));
                },
            );
            socket.send(&buf)?;
            buf.clear();
            if socket.errors(true)? > 0 {
                return Err(std::io::Error::other("the kernel refused the nexthop object"));
            }
        }
    }
    let mut refused = 0;
    for p in routes {
        seq = seq.wrapping_add(1);
        message(
            &mut buf,
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL,
            seq,
            |b| {
                let family = if p.addr().is_ipv4() {
                    libc::AF_INET
                } else {
                    libc::AF_INET6
                } as u8;
                // struct rtmsg: family, dst_len, src_len, tos, table (main),
                // protocol, scope (universe), type (unicast), flags.
                b.extend_from_slice(&[family, p.prefix_len(), 0, 0, 254, PROTOCOL, 0, 1, 0, 0, 0, 0]);
                attr(b, RTA_DST, &address_bytes(p.addr()));
                match (nexthop_objects, p) {
                    (true, IpNet::V4(_)) => attr(b, RTA_NH_ID, &nh4.to_ne_bytes()),
                    (true, IpNet::V6(_)) => attr(b, RTA_NH_ID, &nh6.to_ne_bytes()),
                    (false, IpNet::V4(_)) => {
                        attr(b, RTA_GATEWAY, &via.gateway4.octets());
                        attr(b, RTA_OIF, &via.ifindex.to_ne_bytes());
                    }
                    (false, IpNet::V6(_)) => {
                        attr(b, RTA_GATEWAY, &via.gateway6.octets());
                        attr(b, RTA_OIF, &via.ifindex.to_ne_bytes());
                    }
                }
            },
        );
        if buf.len() >= BATCH {
            socket.send(&buf)?;
            buf.clear();
            refused += socket.errors(false)?;
        }
    }
    // A last, acknowledged request: its answer comes after every other.
    seq = seq.wrapping_add(1);
    message(
        &mut buf,
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK,
        seq,
        |b| {
            b.extend_from_slice(&[libc::AF_INET as u8, 32, 0, 0, 254, PROTOCOL, 0, 1, 0, 0, 0, 0]);
            attr(b, RTA_DST, &[10, 255, 255, 255]);
            attr(b, RTA_GATEWAY, &via.gateway4.octets());
            attr(b, RTA_OIF, &via.ifindex.to_ne_bytes());
        },
    );
    socket.send(&buf)?;
    refused += socket.errors(true)?;
    Ok(Loaded { refused })
}

/// Loads `routes` with `ip -batch -` (`route add PREFIX via GATEWAY dev
/// DEVICE proto 186`), in the namespace the calling thread is in.
pub fn ip_batch(routes: &[IpNet], via: Via, device: &str) -> std::io::Result<Loaded> {
    let mut child = Command::new("ip")
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    {
        let mut input = std::io::BufWriter::new(child.stdin.take().expect("stdin"));
        for p in routes {
            let gw = match p {
                IpNet::V4(_) => via.gateway4.to_string(),
                IpNet::V6(_) => via.gateway6.to_string(),
            };
            writeln!(input, "route add {p} via {gw} dev {device} proto {PROTOCOL}")?;
        }
    }
    let out = child.wait_with_output()?;
    let refused = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("Command failed"))
        .count();
    Ok(Loaded { refused })
}
