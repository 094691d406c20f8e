//! The socket side of [`super::Discovery`]: one raw ICMPv6 socket that
//! hears router advertisements and solicitations on every link (with the
//! link and hop limit of each) and sends ours to ff02::1 with hop limit
//! 255; the interface list read once a second for links that come, go or
//! change. Needs CAP_NET_RAW; without it, neighbours are still learned from
//! their connections and the log says what is missing.

use std::collections::HashMap;
use std::io::{self, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use super::{Arrival, Discovery, LinkInfo, Output, ROUTER_ADVERTISEMENT, ROUTER_SOLICITATION};
use crate::clock;

/// Orders from the supervisor.
pub enum DiscoveryControl {
    /// The interfaces of unnumbered peers, all of them.
    Configure(Vec<String>),
    /// A connection came from `address` on link `ifindex`.
    Heard { ifindex: u32, address: Ipv6Addr },
}

/// A neighbour found: the router at the other end of `interface`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub interface: String,
    pub address: SocketAddrV6,
}

pub struct DiscoveryHandle {
    pub control: mpsc::UnboundedSender<DiscoveryControl>,
    pub neighbours: mpsc::UnboundedReceiver<Neighbour>,
}

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// How often the interface list is read.
const LINK_POLL: Duration = Duration::from_secs(1);

pub fn start() -> DiscoveryHandle {
    let (control, control_rx) = mpsc::unbounded_channel();
    let (neighbours_tx, neighbours) = mpsc::unbounded_channel();
    tokio::spawn(run(control_rx, neighbours_tx));
    DiscoveryHandle { control, neighbours }
}

async fn run(
    mut control: mpsc::UnboundedReceiver<DiscoveryControl>,
    neighbours: mpsc::UnboundedSender<Neighbour>,
) {
    let mut d = Discovery::default();
    let mut socket: Option<AsyncFd<Socket>> = None;
    let mut socket_error_said = false;
    let mut joined: HashMap<u32, ()> = HashMap::new();
    let mut own: Vec<Ipv6Addr> = Vec::new();
    let mut poll = tokio::time::interval(LINK_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; 1500];
    loop {
        let mut out = Vec::new();
        let now = Instant::now();
        tokio::select! {
            ctl = control.recv() => match ctl {
                None => return,
                Some(DiscoveryControl::Configure(interfaces)) => {
                    d.configure(&interfaces);
                    if !interfaces.is_empty() && socket.is_none() {
                        match open() {
                            Ok(s) => socket = Some(s),
                            Err(e) if !socket_error_said => {
                                socket_error_said = true;
                                tracing::error!(
                                    error = %e,
                                    "cannot open the ICMPv6 socket for unnumbered peers (it needs CAP_NET_RAW): routers on their links do not learn our address from router advertisements; sessions come up only where the router connects first"
                                );
                            }
                            Err(_) => {}
                        }
                    }
                    own = links(&mut d, socket.as_ref(), &mut joined, now);
                }
                Some(DiscoveryControl::Heard { ifindex, address }) => d.heard(ifindex, address, now, &mut out),
            },
            _ = poll.tick() => own = links(&mut d, socket.as_ref(), &mut joined, now),
            _ = clock::sleep_until(d.next_deadline()) => d.on_timer(now, &mut out),
            r = readable(socket.as_ref(), &mut buf) => match r {
                Ok((n, source, ifindex, hop_limit)) => {
                    let from = Arrival { ifindex, source, hop_limit, own: own.contains(&source) };
                    if let Err(why) = d.receive(from, &buf[..n], now, &mut out) {
                        tracing::debug!(%source, ifindex, ?why, "router advertisement or solicitation ignored");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "ICMPv6 receive failed"),
            },
        }
        for o in out {
            match o {
                Output::Advertise { ifindex, packet } | Output::Solicit { ifindex, packet } => {
                    let group = if packet[0] == ROUTER_ADVERTISEMENT {
                        ALL_NODES
                    } else {
                        ALL_ROUTERS
                    };
                    if let Some(s) = &socket {
                        let to = SocketAddrV6::new(group, 0, 0, ifindex);
                        if let Err(e) = s.get_ref().send_to(&packet, &to.into()) {
                            tracing::debug!(ifindex, error = %e, "cannot send a router advertisement or solicitation");
                        }
                    }
                }
                Output::Neighbour {
                    interface,
                    address,
                    ifindex,
                } => {
                    tracing::info!(%interface, neighbour = %address, "router found on an unnumbered link");
                    let _ = neighbours.send(Neighbour {
                        interface,
                        address: SocketAddrV6::new(address, 0, 0, ifindex),
                    });
                }
            }
        }
    }
}

/// Waits for a packet; forever without a socket.
async fn readable(
    socket: Option<&AsyncFd<Socket>>,
    buf: &mut [u8],
) -> io::Result<(usize, Ipv6Addr, u32, u8)> {
    let Some(s) = socket else {
        return std::future::pending().await;
    };
    let fd = s.as_raw_fd();
    s.async_io(Interest::READABLE, |_| receive(fd, buf)).await
}

/// The raw socket: only router solicitations and advertisements pass its
/// filter; each comes with its link and hop limit.
#[allow(unsafe_code)]
fn open() -> io::Result<AsyncFd<Socket>> {
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    s.set_nonblocking(true)?;
    s.set_multicast_hops_v6(255)?;
    s.set_unicast_hops_v6(255)?;
    s.set_multicast_loop_v6(false)?;
    setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true)?;
    setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?;
    set_filter(s.as_raw_fd(), &[ROUTER_SOLICITATION, ROUTER_ADVERTISEMENT])?;
    // SAFETY: the `Socket` owns its descriptor, and nothing closes or
    // replaces it while the `AsyncFd` holds it.
    unsafe { AsyncFd::register(s) }.map_err(|e| e.into_parts().1)
}

/// ICMP6_FILTER (RFC 3542 §3.2): a set bit blocks its type.
#[allow(unsafe_code)]
fn set_filter(fd: RawFd, pass: &[u8]) -> io::Result<()> {
    const ICMP6_FILTER: libc::c_int = 1;
    let mut blocked = [u32::MAX; 8];
    for t in pass {
        blocked[usize::from(t >> 5)] &= !(1u32 << (t & 31));
    }
    // SAFETY: `blocked` is a live `struct icmp6_filter` (eight 32-bit
    // words) for the duration of the call, and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_ICMPV6,
            ICMP6_FILTER,
            blocked.as_ptr().cast(),
            std::mem::size_of_val(&blocked) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn receive(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Ipv6Addr, u32, u8)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let (mut ifindex, mut hop_limit) = (0u32, 0u8);
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv6PacketInfo(info) => ifindex = info.ipi6_ifindex,
            ControlMessageOwned::Ipv6HopLimit(h) => hop_limit = u8::try_from(h).unwrap_or(0),
            _ => {}
        }
    }
    let source = msg
        .address
        .and_then(|a| a.as_sockaddr_in6().map(|v6| v6.ip()))
        .ok_or_else(|| io::Error::other("no source address"))?;
    Ok((msg.bytes, source, ifindex, hop_limit))
}

/// Reads the interface list into `d` (each configured link: its index,
/// MAC, and whether it is up with a link-local address), joins all-routers
/// on new links to hear solicitations, and returns our own link-local
/// addresses.
fn links(
    d: &mut Discovery,
    socket: Option<&AsyncFd<Socket>>,
    joined: &mut HashMap<u32, ()>,
    now: Instant,
) -> Vec<Ipv6Addr> {
    let names: Vec<String> = d.interfaces().map(str::to_owned).collect();
    if names.is_empty() {
        return Vec::new();
    }
    let mut found: HashMap<String, LinkInfo> = HashMap::new();
    let mut own = Vec::new();
    if let Ok(addrs) = getifaddrs() {
        for a in addrs {
            let Some(address) = a.address else { continue };
            let index = nix::net::if_::if_nametoindex(a.interface_name.as_str()).unwrap_or(0);
            let up =
                a.flags.contains(InterfaceFlags::IFF_UP) && a.flags.contains(InterfaceFlags::IFF_RUNNING);
            let entry = found.entry(a.interface_name.clone()).or_insert(LinkInfo {
                ifindex: index,
                mac: None,
                ready: false,
            });
            if let Some(link) = address.as_link_addr()
                && let Some(mac) = link.addr()
            {
                entry.mac = Some(mac);
            }
            if let Some(v6) = address.as_sockaddr_in6()
                && v6.ip().is_unicast_link_local()
            {
                own.push(v6.ip());
                entry.ready |= up;
            }
        }
    }
    for name in names {
        let info = found.remove(&name).filter(|i| i.ifindex != 0);
        if let (Some(s), Some(i)) = (socket, &info)
            && joined.insert(i.ifindex, ()).is_none()
        {
            // Already a member when the link forwards; either is fine.
            let _ = s.get_ref().join_multicast_v6(&ALL_ROUTERS, i.ifindex);
        }
        d.link(&name, info, now);
    }
    own
}
