//! The BFD thread: its own OS thread and current-thread runtime, so a
//! full table being decoded, selected or written to the kernel on the
//! other threads never delays a packet or a timer here.
//!
//! Sockets (RFC 5881 §4, RFC 5883 §5): one receiving socket per family and
//! port (3784 single-hop, 4784 multihop), each reporting the TTL or hop
//! limit of what it receives; one sending socket per session, bound to a
//! source port in 49152–65535 that the session keeps, sending with TTL
//! 255, connected to the peer.

use std::collections::HashMap;
use std::io;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::{
    Change, Datagram, Handover, MULTIHOP_PORT, Outgoing, SINGLE_HOP_PORT, SessionConfig, Sessions, State,
};
use crate::clock;
use crate::status::{BfdStatus, BfdView};

/// Orders for the BFD thread.
pub enum BfdControl {
    /// The sessions there must be, all of them (start and reload).
    Configure(Vec<SessionConfig>),
    /// The sessions as the API shows them.
    Status(oneshot::Sender<BfdStatus>),
    /// Stop. With `hand_over`, a planned restart: ask every peer to wait
    /// that long (a Poll Sequence), then leave the sessions to the next
    /// run in the state directory, so the peers see no failure.
    Stop {
        hand_over: Option<Duration>,
        done: oneshot::Sender<()>,
    },
}

pub struct BfdHandle {
    pub control: mpsc::UnboundedSender<BfdControl>,
    /// State changes, for the BGP sessions.
    pub changes: mpsc::UnboundedReceiver<Change>,
}

/// A session handed over across a planned restart.
#[derive(Serialize, Deserialize)]
struct Saved {
    peer: String,
    remote: IpAddr,
    local: Option<IpAddr>,
    multihop: bool,
    /// Unix seconds until which the peer waits.
    until: u64,
    #[serde(flatten)]
    handover: Handover,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads (and removes) what the previous run handed over; what is stale
/// or unreadable is left out.
fn take_handover(path: &Path) -> Vec<Saved> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let _ = std::fs::remove_file(path);
    let now = unix_now();
    match serde_json::from_str::<Vec<Saved>>(&text) {
        Ok(v) => v.into_iter().filter(|s| s.until > now + 1).collect(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the BFD sessions of the previous run; starting them afresh");
            Vec::new()
        }
    }
}

/// Starts the BFD thread; `handover` is where sessions wait across a
/// planned restart.
pub fn start(seed: u64, handover: PathBuf) -> io::Result<BfdHandle> {
    let (control, control_rx) = mpsc::unbounded_channel();
    let (changes_tx, changes) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("tern-bfd".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the BFD thread's runtime; BFD is off");
                    return;
                }
            };
            runtime.block_on(run(seed, handover, control_rx, changes_tx));
        })?;
    Ok(BfdHandle { control, changes })
}

async fn run(
    seed: u64,
    handover: PathBuf,
    mut control: mpsc::UnboundedReceiver<BfdControl>,
    changes_tx: mpsc::UnboundedSender<Change>,
) {
    let mut sessions = Sessions::new(seed);
    let mut saved = take_handover(&handover);
    let (rx_tx, mut rx) = mpsc::channel::<Datagram>(1024);
    let mut receivers: HashMap<(bool, bool), tokio::task::JoinHandle<()>> = HashMap::new();
    let mut senders: HashMap<u32, UdpSocket> = HashMap::new();
    let mut send_errors: u64 = 0;
    loop {
        let mut out = Vec::new();
        let mut changes = Vec::new();
        let deadline = sessions.next_deadline();
        tokio::select! {
            biased;
            Some(d) = rx.recv() => {
                let now = Instant::now();
                let _ = sessions.receive(&d, now, &mut out, &mut changes);
                // Whatever else arrived meanwhile, before the timers.
                while let Ok(d) = rx.try_recv() {
                    let _ = sessions.receive(&d, now, &mut out, &mut changes);
                }
            }
            _ = clock::sleep_until(deadline) => {
                sessions.on_timer(Instant::now(), &mut out, &mut changes);
            }
            ctl = control.recv() => match ctl {
                None => return,
                Some(BfdControl::Configure(configs)) => {
                    let now = Instant::now();
                    let wanted: Vec<&str> = configs.iter().map(|c| c.peer.as_str()).collect();
                    let gone: Vec<String> = sessions.peers().filter(|p| !wanted.contains(p)).map(str::to_owned).collect();
                    for peer in gone {
                        if let Some((config, packet)) = sessions.remove(&peer, now) {
                            tracing::info!(peer = %config.peer, remote = %config.remote, "BFD session removed");
                            if let Some(p) = packet
                                && let Ok(s) = sender(&config)
                            {
                                let _ = s.try_send(&p.encode());
                            }
                        }
                    }
                    for c in configs {
                        let (family_v6, multihop) = (c.remote.is_ipv6(), c.multihop);
                        if let std::collections::hash_map::Entry::Vacant(v) = receivers.entry((family_v6, multihop)) {
                            match receiver(family_v6, multihop) {
                                Ok(sock) => {
                                    v.insert(tokio::spawn(receive(sock, multihop, rx_tx.clone())));
                                }
                                Err(e) => tracing::error!(
                                    error = %e,
                                    port = if multihop { MULTIHOP_PORT } else { SINGLE_HOP_PORT },
                                    ipv6 = family_v6,
                                    "cannot open the BFD receiving socket"
                                ),
                            }
                        }
                        let resumed = saved
                            .iter()
                            .position(|s| s.peer == c.peer && s.remote == c.remote && s.local == c.local && s.multihop == c.multihop)
                            .map(|i| saved.swap_remove(i))
                            .and_then(|s| sessions.resume(c.clone(), &s.handover, now));
                        if resumed.is_some() {
                            tracing::info!(peer = %c.peer, remote = %c.remote, "BFD session taken over from the previous run, up");
                        }
                        let discr = resumed.unwrap_or_else(|| sessions.configure(c.clone(), now));
                        if let std::collections::hash_map::Entry::Vacant(v) = senders.entry(discr) {
                            match sender(&c) {
                                Ok(s) => {
                                    v.insert(s);
                                    tracing::info!(peer = %c.peer, remote = %c.remote, multihop = c.multihop, discriminator = discr, "BFD session configured");
                                }
                                Err(e) => tracing::error!(peer = %c.peer, remote = %c.remote, error = %e, "cannot open a BFD socket for the peer"),
                            }
                        }
                    }
                    let live: Vec<u32> = sessions.snapshots().iter().map(|(_, s)| s.local_discr).collect();
                    senders.retain(|d, _| live.contains(d));
                    sessions.on_timer(now, &mut out, &mut changes);
                }
                Some(BfdControl::Status(reply)) => {
                    let _ = reply.send(status(&sessions, send_errors));
                }
                Some(BfdControl::Stop { hand_over, done }) => {
                    if let Some(hold) = hand_over {
                        hand_over_sessions(&mut sessions, &senders, &mut rx, hold, &handover).await;
                    }
                    let _ = done.send(());
                    return;
                }
            },
        }
        for Outgoing { discr, packet } in out {
            match senders.get(&discr) {
                Some(s) => match s.try_send(&packet.encode()) {
                    Ok(_) => sessions.sent += 1,
                    Err(_) => send_errors += 1,
                },
                None => send_errors += 1,
            }
        }
        for c in changes {
            if c.to == State::Up {
                tracing::info!(peer = %c.peer, from = %c.from, to = %c.to, "BFD session up");
            } else {
                tracing::info!(peer = %c.peer, from = %c.from, to = %c.to, diagnostic = %c.diag, "BFD session state changed");
            }
            let _ = changes_tx.send(c);
        }
    }
}

/// Asks the peers to wait `hold` (a Poll Sequence per session, answered
/// within a transmit interval or two), then writes the sessions whose
/// peers agreed for the next run. Gives up after two seconds: a session
/// not handed over fails at its peer when its Detection Time passes.
async fn hand_over_sessions(
    sessions: &mut Sessions,
    senders: &HashMap<u32, UdpSocket>,
    rx: &mut mpsc::Receiver<Datagram>,
    hold: Duration,
    path: &Path,
) {
    sessions.hold_for_restart(hold);
    let deadline = Instant::now() + Duration::from_secs(2);
    while !sessions.handover_ready() && Instant::now() < deadline {
        let (mut out, mut changes) = (Vec::new(), Vec::new());
        let wake = sessions.next_deadline().map_or(deadline, |t| t.min(deadline));
        tokio::select! {
            Some(d) = rx.recv() => {
                let _ = sessions.receive(&d, Instant::now(), &mut out, &mut changes);
            }
            _ = clock::sleep_until(Some(wake)) => sessions.on_timer(Instant::now(), &mut out, &mut changes),
        }
        for o in out {
            if let Some(s) = senders.get(&o.discr) {
                let _ = s.try_send(&o.packet.encode());
            }
        }
    }
    let until = unix_now() + hold.as_secs();
    let saved: Vec<Saved> = sessions
        .handovers()
        .into_iter()
        .map(|(c, handover)| Saved {
            peer: c.peer,
            remote: c.remote,
            local: c.local,
            multihop: c.multihop,
            until,
            handover,
        })
        .collect();
    let all = sessions
        .snapshots()
        .iter()
        .filter(|(_, s)| s.state == State::Up)
        .count();
    match serde_json::to_string(&saved)
        .map_err(io::Error::other)
        .and_then(|t| std::fs::write(path, t))
    {
        Ok(()) => tracing::info!(
            handed_over = saved.len(),
            up = all,
            hold_secs = hold.as_secs(),
            "BFD sessions left to the next start"
        ),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot keep the BFD sessions for the next start; their peers will see them fail")
        }
    }
}

fn status(sessions: &Sessions, send_errors: u64) -> BfdStatus {
    let now = Instant::now();
    BfdStatus {
        sessions: sessions
            .snapshots()
            .into_iter()
            .map(|(c, s)| BfdView {
                peer: c.peer,
                remote: c.remote.to_string(),
                local: c.local.map(|a| a.to_string()),
                multihop: c.multihop,
                state: s.state.name().into(),
                remote_state: s.remote_state.name().into(),
                diagnostic: s.diag.name().into(),
                remote_diagnostic: s.remote_diag.name().into(),
                local_discriminator: s.local_discr,
                remote_discriminator: s.remote_discr,
                multiplier: s.multiplier,
                remote_multiplier: s.remote_multiplier,
                min_tx_ms: c.timers.min_tx.as_millis() as u64,
                min_rx_ms: c.timers.min_rx.as_millis() as u64,
                tx_interval_ms: s.tx_interval.as_millis() as u64,
                detection_time_ms: s.detection_time.as_millis() as u64,
                remote_min_rx_ms: s.remote_min_rx.as_millis() as u64,
                remote_min_tx_ms: s.remote_min_tx.as_millis() as u64,
                since_secs: now.saturating_duration_since(s.since).as_secs(),
                ups: s.ups,
                flaps: s.flaps,
            })
            .collect(),
        received: sessions.received,
        sent: sessions.sent,
        send_errors,
        dropped: sessions
            .dropped
            .iter()
            .map(|(d, n)| (d.name().to_owned(), *n))
            .collect(),
    }
}

/// The receiving socket of a family and port, reporting TTL / hop limit.
fn receiver(v6: bool, multihop: bool) -> io::Result<UdpSocket> {
    let port = if multihop { MULTIHOP_PORT } else { SINGLE_HOP_PORT };
    let (domain, addr) = if v6 {
        (
            Domain::IPV6,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        )
    } else {
        (
            Domain::IPV4,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        )
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    if v6 {
        s.set_only_v6(true)?;
        setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true)?;
    } else {
        setsockopt(&s, sockopt::Ipv4RecvTtl, &true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(std::net::UdpSocket::from(s))
}

async fn receive(sock: UdpSocket, multihop: bool, tx: mpsc::Sender<Datagram>) {
    let mut buf = [0u8; 512];
    let fd = sock.as_raw_fd();
    loop {
        match sock
            .async_io(Interest::READABLE, || recv_with_ttl(fd, &mut buf))
            .await
        {
            Ok((n, from, ttl)) => {
                let d = Datagram {
                    bytes: buf[..n].to_vec(),
                    from,
                    ttl,
                    multihop,
                };
                if tx.send(d).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::debug!(error = %e, "BFD receive failed"),
        }
    }
}

fn recv_with_ttl(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, IpAddr, u8)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(libc::c_int);
    let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let mut ttl = 0u8;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv4Ttl(t) => ttl = t as u8,
            ControlMessageOwned::Ipv6HopLimit(h) => ttl = h as u8,
            _ => {}
        }
    }
    let from = msg
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .ok_or_else(|| io::Error::other("no source address"))?;
    Ok((msg.bytes, from, ttl))
}

/// A session's sending socket: a source port of 49152–65535 (RFC 5881
/// §4), TTL 255, connected to the peer's BFD port.
fn sender(c: &SessionConfig) -> io::Result<UdpSocket> {
    let port = if c.multihop {
        MULTIHOP_PORT
    } else {
        SINGLE_HOP_PORT
    };
    let remote = match (c.remote, c.ifindex) {
        (IpAddr::V6(a), Some(scope)) => SocketAddr::V6(std::net::SocketAddrV6::new(a, port, 0, scope)),
        (a, _) => SocketAddr::new(a, port),
    };
    let domain = if c.remote.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let local_ip = c.local.unwrap_or(if c.remote.is_ipv6() {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    // Start the search for a free port somewhere depending on the peer, so
    // sessions rarely collide.
    let start = {
        let mut h: u32 = 2166136261;
        for b in c.peer.bytes() {
            h = (h ^ u32::from(b)).wrapping_mul(16777619);
        }
        h % 16384
    };
    let mut last = io::Error::other("no free source port");
    for i in 0..16384u32 {
        let port = 49152 + ((start + i) % 16384) as u16;
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        if c.remote.is_ipv6() {
            s.set_only_v6(true)?;
            s.set_unicast_hops_v6(255)?;
        } else {
            s.set_ttl_v4(255)?;
        }
        s.set_nonblocking(true)?;
        match s.bind(&SocketAddr::new(local_ip, port).into()) {
            Ok(()) => {
                s.connect(&remote.into())?;
                return UdpSocket::from_std(std::net::UdpSocket::from(s));
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}
