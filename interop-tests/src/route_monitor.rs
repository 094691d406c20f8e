//! The kernel's route and nexthop notifications, read in this process
//! and timed as they arrive: how benchmarks see when a daemon's change
//! reached the kernel without polling it (`ip monitor` would add a process
//! and its own parsing between the kernel and the clock).
//!
//! Opened in the calling thread's network namespace; subscribes to the
//! IPv4 and IPv6 route groups and to nexthop objects. The receive buffer
//! is large (root may pass the limit), so a full table's notifications
//! fit; an overrun is counted, never hidden.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use ipnet::IpNet;

const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_NEWNEXTHOP: u16 = 104;
const RTM_DELNEXTHOP: u16 = 105;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const RTNLGRP_IPV6_ROUTE: u32 = 11;
const RTNLGRP_NEXTHOP: u32 = 32;
const RTA_DST: u16 = 1;
const RTA_TABLE: u16 = 15;

/// One notification, timed when it was read.
#[derive(Clone, Debug)]
pub struct Event {
    pub at: Instant,
    pub what: What,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// A route added or replaced (`add`) or removed, in `table`.
    Route { add: bool, prefix: IpNet, table: u32 },
    /// A nexthop object added, replaced or removed.
    Nexthop,
}

pub struct RouteMonitor {
    socket: netlink_sys::Socket,
    buf: Vec<u8>,
    /// Times the kernel dropped notifications because this socket was
    /// full.
    pub overruns: usize,
}

impl RouteMonitor {
    /// Subscribes in the calling thread's network namespace.
    pub fn open() -> std::io::Result<RouteMonitor> {
        use nix::sys::socket::{setsockopt, sockopt};
        let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
        socket.bind_auto()?;
        for group in [RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_NEXTHOP] {
            socket.add_membership(group)?;
        }
        let _ = setsockopt(&socket, sockopt::RcvBufForce, &(64 << 20));
        socket.set_non_blocking(false)?;
        setsockopt(
            &socket,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(0, 100_000),
        )?;
        Ok(RouteMonitor {
            socket,
            buf: vec![0; 1 << 20],
            overruns: 0,
        })
    }

    /// The notifications of one datagram, or none after waiting up to
    /// 100 ms. An overrun (the kernel dropped notifications) is counted in
    /// [`RouteMonitor::overruns`].
    pub fn read(&mut self) -> std::io::Result<Vec<Event>> {
        let n = match self.socket.recv(&mut &mut self.buf[..], 0) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(Vec::new());
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                self.overruns += 1;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e),
        };
        let at = Instant::now();
        let mut events = Vec::new();
        let buf = &self.buf[..n];
        let mut off = 0;
        while off + 16 <= n {
            let len = u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
            let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
            if len < 16 || off + len > n {
                break;
            }
            let body = &buf[off + 16..off + len];
            match kind {
                RTM_NEWROUTE | RTM_DELROUTE => {
                    if let Some((prefix, table)) = route(body) {
                        events.push(Event {
                            at,
                            what: What::Route {
                                add: kind == RTM_NEWROUTE,
                                prefix,
                                table,
                            },
                        });
                    }
                }
                RTM_NEWNEXTHOP | RTM_DELNEXTHOP => events.push(Event {
                    at,
                    what: What::Nexthop,
                }),
                _ => {}
            }
            off += len.next_multiple_of(4);
        }
        Ok(events)
    }
}

/// The destination and table of an `rtmsg` with its attributes.
fn route(body: &[u8]) -> Option<(IpNet, u32)> {
    // family, dst_len, src_len, tos, table, protocol, scope, type, flags.
    if body.len() < 12 {
        return None;
    }
    let (family, dst_len) = (body[0], body[1]);
    let mut table = u32::from(body[4]);
    let mut dst: Option<IpAddr> = None;
    let mut off = 12;
    while off + 4 <= body.len() {
        let len = usize::from(u16::from_ne_bytes([body[off], body[off + 1]]));
        let kind = u16::from_ne_bytes([body[off + 2], body[off + 3]]);
        if len < 4 || off + len > body.len() {
            break;
        }
        let value = &body[off + 4..off + len];
        match kind {
            RTA_DST if value.len() == 4 => {
                dst = Some(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?).into())
            }
            RTA_DST if value.len() == 16 => {
                dst = Some(Ipv6Addr::from(<[u8; 16]>::try_from(value).ok()?).into())
            }
            RTA_TABLE if value.len() == 4 => table = u32::from_ne_bytes(value.try_into().ok()?),
            _ => {}
        }
        off += len.next_multiple_of(4);
    }
    let dst = dst.unwrap_or(if i32::from(family) == libc::AF_INET6 {
        Ipv6Addr::UNSPECIFIED.into()
    } else {
        Ipv4Addr::UNSPECIFIED.into()
    });
    Some((IpNet::new(dst, dst_len).ok()?, table))
}
