//! The kernel I/O of the FIB over rtnetlink: applying route and nexthop
//! object operations, dumping what the kernel holds, and reporting kernel
//! events. It does what it is told and decides nothing: it only deletes or
//! replaces what it is handed, and dumps filter by protocol, so routes of
//! other protocols are never touched.
//!
//! ```text
//!  caller ──ops──▶ Netlink::apply ──encoded batches (≤ 2 queued)──▶ worker thread
//!    ▲               (encodes ~256 KiB                               sendmsg, reads the
//!    └──one result────of requests at a time)◀──errors by sequence────batch's failures
//!       per op                                                       (non-blocking)
//!
//!  kernel groups ──▶ Monitor (own non-blocking socket on the runtime) ──▶ Event
//! ```
//!
//! The kernel handles a netlink request inside the `sendmsg` that carries
//! it, so a 256 KiB send is milliseconds of kernel work: the socket lives on
//! a dedicated thread and never blocks the runtime. Every request has its
//! own sequence number; writes ask for no acknowledgement, so the kernel
//! answers only failures (an ACK per route would cost the kernel an skb,
//! and this thread a read, for each of a million routes). By the time
//! `sendmsg` returns, the batch's answers are all queued; a batch is at most
//! a window of requests whose answers, should all fail, fit the receive
//! buffer. Encoding the next batch overlaps with the kernel's work on this
//! one.

mod interface;
mod nexthop;
mod route;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR};
use netlink_packet_route::AddressFamily;
use netlink_sys::{AsyncSocket, AsyncSocketExt, Socket, TokioSocket};
use tokio::sync::oneshot;

pub use super::kernel::{
    Address, Event, KernelNextHop, KernelRoute, Link, NexthopObject, NexthopSpec, Op, OpError, RTPROT_BGP,
    RouteKind,
};

impl OpError {
    fn from_io(e: &io::Error) -> Self {
        let errno = e.raw_os_error().unwrap_or(libc::EIO);
        OpError {
            errno,
            message: e.to_string(),
        }
    }

    fn worker_gone() -> Self {
        OpError {
            errno: libc::EIO,
            message: "the netlink thread has stopped".into(),
        }
    }
}

/// Bytes of requests per `sendmsg`.
const BATCH_BYTES: usize = 256 * 1024;
/// Batches handed to the worker and not yet answered: one in the kernel,
/// one being encoded or queued behind it.
const PIPELINE_DEPTH: usize = 2;
/// Receive-buffer bytes reserved per request of a batch, should it fail:
/// an error is a ~36-byte message, but the kernel charges its skb's true
/// size (about 768 bytes) to the buffer, more with an extended ACK
/// message.
const ACK_BUDGET: usize = 1024;
const REQUEST_RECEIVE_BUFFER: usize = 32 << 20;
const REQUEST_SEND_BUFFER: usize = 4 << 20;
const MONITOR_RECEIVE_BUFFER: usize = 64 << 20;
/// Room for one received datagram: dumps come in skbs of up to 32 KiB, but
/// one large link message may need more.
const RECEIVE_CHUNK: usize = 1 << 20;
/// Dumps interrupted by concurrent changes (`NLM_F_DUMP_INTR`) are retried.
const DUMP_ATTEMPTS: usize = 3;

type Job = Box<dyn FnOnce(&mut Io) + Send>;

/// A `NETLINK_ROUTE` socket for requests and dumps, owned by its own thread.
pub struct Netlink {
    jobs: std::sync::mpsc::Sender<Job>,
    /// The socket's port: the kernel's notifications of our own changes
    /// carry it.
    port: u32,
    seq: u32,
    /// Requests per batch at most, so their answers fit the receive buffer.
    window: usize,
    /// Bytes per batch at most, within the send buffer.
    batch_bytes: usize,
    nexthop_objects: Option<bool>,
}

impl Netlink {
    /// Opens the socket (in the calling thread's network namespace):
    /// NETLINK_GET_STRICT_CHK and NETLINK_EXT_ACK on, NETLINK_CAP_ACK (an
    /// error echoes only the request's header), large SO_SNDBUF/SO_RCVBUF
    /// (SO_*BUFFORCE where permitted).
    pub fn open() -> io::Result<Netlink> {
        let (socket, port) = wire::request_socket(REQUEST_RECEIVE_BUFFER, REQUEST_SEND_BUFFER)?;
        let (receive, send) = wire::buffer_sizes(&socket)?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("tern-netlink".into())
            .spawn(move || {
                let mut io = Io {
                    socket,
                    buf: Vec::with_capacity(RECEIVE_CHUNK),
                    failures: Vec::new(),
                };
                while let Ok(job) = queue.recv() {
                    job(&mut io);
                }
            })?;
        Ok(Netlink {
            jobs,
            port,
            seq: 1,
            window: (receive / ACK_BUDGET).max(1),
            // The kernel refuses a send longer than the buffer less 32
            // bytes; a batch may overshoot by one request.
            batch_bytes: BATCH_BYTES.min(send / 2),
            nexthop_objects: None,
        })
    }

    /// The socket's port (see [`Monitor::open_ignoring`]).
    pub fn port(&self) -> u32 {
        self.port
    }

    fn next_seq(&mut self) -> u32 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        seq
    }

    /// Queues `f` to run on the socket's thread; the receiver fails if that
    /// thread has stopped.
    fn submit<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Io) -> R + Send + 'static,
    ) -> oneshot::Receiver<R> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |io| {
            let _ = reply.send(f(io));
        });
        // Should the thread be gone, the job and its reply are dropped and
        // the receiver says so.
        let _ = self.jobs.send(job);
        answer
    }

    /// Runs `f` on the socket's thread.
    async fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Io) -> R + Send + 'static) -> io::Result<R> {
        self.submit(f)
            .await
            .map_err(|_| io::Error::other("the netlink thread has stopped"))
    }

    /// Sends every op pipelined: requests packed into ~256 KiB sendmsg
    /// calls, each with its own sequence number, at most a bounded window
    /// of requests per batch, failures read and matched by sequence
    /// number. Returns one result per op, in order.
    /// Ops are applied in order (a nexthop object before the routes that
    /// use it).
    pub async fn apply(&mut self, ops: &[Op]) -> Vec<Result<(), OpError>> {
        let mut results = vec![Ok(()); ops.len()];
        let mut in_flight = VecDeque::with_capacity(PIPELINE_DEPTH);
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let mut next = 0;
        while next < ops.len() {
            let mut bytes = spare
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(self.batch_bytes + 4096));
            bytes.clear();
            let (first, first_seq) = (next, self.seq);
            while next < ops.len() && bytes.len() < self.batch_bytes && next - first < self.window {
                encode(
                    &ops[next],
                    first_seq.wrapping_add((next - first) as u32),
                    &mut bytes,
                );
                next += 1;
            }
            let count = next - first;
            self.seq = first_seq.wrapping_add(count as u32);
            let answer = self.submit(move |io| {
                let failures = io.send_batch(&bytes, first_seq, count);
                (bytes, failures)
            });
            in_flight.push_back((first, count, answer));
            if in_flight.len() >= PIPELINE_DEPTH {
                if let Some((first, count, answer)) = in_flight.pop_front() {
                    settle(&mut results, first, count, answer.await, &mut spare);
                }
            } else {
                // Let the worker start on this batch and the runtime run
                // others while we encode the next one.
                tokio::task::yield_now().await;
            }
        }
        while let Some((first, count, answer)) = in_flight.pop_front() {
            settle(&mut results, first, count, answer.await, &mut spare);
        }
        results
    }

    /// [`Netlink::apply`] while the caller goes on, for ops the caller
    /// works out piece by piece: they are encoded here, and each batch is
    /// handed to the socket's thread as soon as it is full, so the kernel
    /// works on the first while the caller works out and encodes the rest
    /// (that thread, where the kernel does its work, is the busy one during
    /// a full table). [`Write::finish`] sends the last batch; its answer is
    /// the ops back with one result each. Writes started later are applied
    /// after these.
    pub fn start_write(&mut self) -> Write<'_> {
        Write {
            first_seq: self.seq,
            ops: Vec::new(),
            bytes: Vec::new(),
            first: 0,
            netlink: self,
        }
    }

    /// Runs a dump on the socket's thread, parsing each message there with
    /// `parse`; retried when the kernel marks it interrupted.
    async fn dump<T: Send + 'static>(
        &mut self,
        request: impl FnOnce(&mut Vec<u8>, u32),
        parse: impl Fn(&wire::Message) -> Option<T> + Send + 'static,
    ) -> io::Result<Vec<T>> {
        let seq = self.next_seq();
        let mut bytes = Vec::new();
        request(&mut bytes, seq);
        self.call(move |io| {
            let mut out = Vec::new();
            for _ in 0..DUMP_ATTEMPTS {
                out.clear();
                if io.dump(&bytes, seq, |m| out.extend(parse(m)))? {
                    return Ok(out);
                }
            }
            Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "dump interrupted by concurrent changes, 3 times",
            ))
        })
        .await?
    }

    /// Dumps routes of one family, filtered in the kernel by table and
    /// protocol (strict checking). A table that does not exist is empty.
    pub async fn dump_routes(
        &mut self,
        family: bgp_proto::Family,
        table: Option<u32>,
        protocol: Option<u8>,
    ) -> io::Result<Vec<KernelRoute>> {
        let af = match family {
            bgp_proto::Family::IPV4_UNICAST => AddressFamily::Inet,
            bgp_proto::Family::IPV6_UNICAST => AddressFamily::Inet6,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("no kernel routes for {family:?}"),
                ));
            }
        };
        let routes = self
            .dump(
                |buf, seq| route::push_dump(buf, seq, af, table, protocol),
                move |m| {
                    if m.message_type != wire::RTM_NEWROUTE {
                        return None;
                    }
                    let route = route::parse(m.payload)?;
                    // The kernel filtered already; this keeps the promise
                    // should strict checking be unavailable.
                    let wanted = table.is_none_or(|t| t == route.table)
                        && protocol.is_none_or(|p| p == route.protocol);
                    wanted.then_some(route)
                },
            )
            .await;
        match routes {
            Err(e) if table.is_some() && e.raw_os_error() == Some(libc::ENOENT) => Ok(vec![]),
            other => other,
        }
    }

    /// The route the kernel would use for `address` (`ip route get ADDRESS
    /// fibmatch`), of any type and protocol; None when nothing routes it.
    pub async fn route_get(&mut self, address: IpAddr) -> io::Result<Option<KernelRoute>> {
        let found = self
            .dump(
                |buf, seq| route::push_get(buf, seq, address),
                |m| {
                    (m.message_type == wire::RTM_NEWROUTE)
                        .then(|| route::parse(m.payload))
                        .flatten()
                },
            )
            .await;
        match found {
            Ok(mut routes) => Ok(routes.pop()),
            // No route to it at all.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENETUNREACH | libc::EHOSTUNREACH)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Nexthop objects, of one protocol if given. The kernel cannot filter
    /// nexthop dumps by protocol, so it is done here. Empty where the
    /// kernel has no nexthop objects.
    pub async fn dump_nexthops(&mut self, protocol: Option<u8>) -> io::Result<Vec<NexthopObject>> {
        let objects = self
            .dump(nexthop::push_dump, move |m| {
                if m.message_type != wire::RTM_NEWNEXTHOP {
                    return None;
                }
                let object = nexthop::decode(m.payload).ok()?;
                protocol.is_none_or(|p| p == object.protocol).then_some(object)
            })
            .await;
        match objects {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(vec![]),
            other => other,
        }
    }

    /// Every device: ifindex, name, up (IFF_UP and operationally up or
    /// unknown), MTU.
    pub async fn links(&mut self) -> io::Result<Vec<Link>> {
        self.dump(interface::push_link_dump, |m| match m.message_type {
            wire::RTM_NEWLINK => interface::link(m.payload),
            _ => None,
        })
        .await
    }

    /// Every IPv4 and IPv6 address, with its device.
    pub async fn addresses(&mut self) -> io::Result<Vec<Address>> {
        self.dump(interface::push_address_dump, |m| match m.message_type {
            wire::RTM_NEWADDR => interface::address(m.payload),
            _ => None,
        })
        .await
    }

    /// Whether the kernel has nexthop objects. Probed once, with a dump.
    pub async fn supports_nexthop_objects(&mut self) -> bool {
        if let Some(known) = self.nexthop_objects {
            return known;
        }
        // A dump changes nothing: a restart must not write to the kernel,
        // not even a throwaway object. Kernels without nexthop objects
        // refuse RTM_GETNEXTHOP.
        let supported = match self.dump(nexthop::push_dump, |_| None::<()>).await {
            Ok(_) => true,
            Err(e) => {
                tracing::info!(error = %e, "the kernel has no nexthop objects; routes carry their next hops");
                false
            }
        };
        self.nexthop_objects = Some(supported);
        supported
    }
}

fn encode(op: &Op, seq: u32, buf: &mut Vec<u8>) {
    match op {
        Op::ReplaceRoute(r) => route::push_replace(buf, seq, r),
        Op::DeleteRoute(r) => route::push_delete(buf, seq, r),
        Op::ReplaceNexthop(o) => nexthop::push_replace(buf, seq, o),
        Op::DeleteNexthop(id) => nexthop::push_delete(buf, seq, *id),
    }
}

/// Ops being applied by a [`Write`]; fails if the socket's
/// thread has stopped.
pub type Applying = oneshot::Receiver<(Vec<Op>, Vec<Result<(), OpError>>)>;

/// A write being handed to the socket's thread batch by batch (see
/// [`Netlink::start_write`]).
pub struct Write<'a> {
    netlink: &'a mut Netlink,
    /// The sequence number of the write's first op; op `i` has
    /// `first_seq + i`.
    first_seq: u32,
    /// Every op of the write so far, in order.
    ops: Vec<Op>,
    /// The batch being encoded, from `ops[first..]`.
    bytes: Vec<u8>,
    first: usize,
}

impl Write<'_> {
    /// Adds ops at the end of the write.
    pub fn extend(&mut self, ops: impl IntoIterator<Item = Op>) {
        for op in ops {
            if self.bytes.capacity() == 0 {
                self.bytes.reserve(self.netlink.batch_bytes + 4096);
            }
            let seq = self.first_seq.wrapping_add(self.ops.len() as u32);
            encode(&op, seq, &mut self.bytes);
            self.ops.push(op);
            if self.bytes.len() >= self.netlink.batch_bytes
                || self.ops.len() - self.first >= self.netlink.window
            {
                self.hand_over();
            }
        }
    }

    /// Whether the write has no op yet.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Sends the batch encoded so far to the socket's thread.
    fn hand_over(&mut self) {
        let count = self.ops.len() - self.first;
        if count == 0 {
            return;
        }
        let first = self.first;
        let seq = self.first_seq.wrapping_add(first as u32);
        let bytes = std::mem::take(&mut self.bytes);
        let job: Job = Box::new(move |io| {
            let failures = io.send_batch(&bytes, seq, count);
            io.failures
                .extend(failures.into_iter().map(|(p, e)| (first + p, e)));
        });
        let _ = self.netlink.jobs.send(job);
        self.first = self.ops.len();
    }

    /// Sends the last batch; the answer is every op back with its result.
    pub fn finish(mut self) -> Applying {
        self.hand_over();
        let ops = std::mem::take(&mut self.ops);
        self.netlink.seq = self.first_seq.wrapping_add(ops.len() as u32);
        self.netlink.submit(move |io| {
            let mut results = vec![Ok(()); ops.len()];
            for (position, error) in io.failures.drain(..) {
                if let Some(r) = results.get_mut(position) {
                    *r = Err(error);
                }
            }
            (ops, results)
        })
    }
}

type BatchAnswer = Result<(Vec<u8>, Vec<(usize, OpError)>), oneshot::error::RecvError>;

/// Records a batch's failures against its ops and keeps its buffer.
fn settle(
    results: &mut [Result<(), OpError>],
    first: usize,
    count: usize,
    answer: BatchAnswer,
    spare: &mut Vec<Vec<u8>>,
) {
    match answer {
        Ok((bytes, failures)) => {
            spare.push(bytes);
            for (position, error) in failures {
                results[first + position] = Err(error);
            }
        }
        Err(_) => results[first..first + count].fill(Err(OpError::worker_gone())),
    }
}

/// The socket and its buffers, on the worker thread.
struct Io {
    socket: Socket,
    buf: Vec<u8>,
    /// Failures of the batches of a [`Write`] so far, by
    /// position among its ops.
    failures: Vec<(usize, OpError)>,
}

impl Io {
    /// Receives one datagram into `buf`; `Ok(false)` when none is queued
    /// (with `MSG_DONTWAIT`).
    fn receive(&mut self, flags: libc::c_int) -> io::Result<bool> {
        loop {
            self.buf.clear();
            match self.socket.recv(&mut self.buf, flags | libc::MSG_TRUNC) {
                Ok(n) if n > self.buf.len() => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "netlink message truncated",
                    ));
                }
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `count` requests numbered from `first_seq` in one `sendmsg`
    /// and reads the kernel's answers. Writes ask for no acknowledgement:
    /// the kernel answers only the requests that failed, and it has handled
    /// the whole batch, its answers queued, when `sendmsg` returns. Returns
    /// the failures, by position in the batch. Should the receive buffer
    /// overrun, answers are lost: every request not known to have failed is
    /// then reported as `ENOBUFS`, to be tried again.
    fn send_batch(&mut self, bytes: &[u8], first_seq: u32, count: usize) -> Vec<(usize, OpError)> {
        if count == 0 {
            return vec![];
        }
        if let Err(e) = self.socket.send(bytes, 0) {
            let error = OpError::from_io(&e);
            return (0..count).map(|p| (p, error.clone())).collect();
        }
        let mut failures = Vec::new();
        let mut overrun = false;
        loop {
            match self.receive(libc::MSG_DONTWAIT) {
                Ok(true) => {}
                Ok(false) => break,
                // Some answers were dropped; read what is there.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    overrun = true;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading netlink answers");
                    overrun = true;
                    break;
                }
            }
            for message in wire::messages(&self.buf) {
                let Ok(message) = message else { break };
                if message.message_type != NLMSG_ERROR {
                    continue;
                }
                let position = message.seq.wrapping_sub(first_seq) as usize;
                // Anything else answers an earlier, abandoned request.
                if position >= count {
                    continue;
                }
                if let Some(error) = wire::ack_error(message.payload, message.flags) {
                    failures.push((position, error));
                }
            }
        }
        if overrun {
            let lost = OpError {
                errno: libc::ENOBUFS,
                message: "the kernel's answer was lost".into(),
            };
            let mut failed = vec![false; count];
            for (p, _) in &failures {
                failed[*p] = true;
            }
            let unknown: Vec<usize> = (0..count).filter(|p| !failed[*p]).collect();
            failures.extend(unknown.into_iter().map(|p| (p, lost.clone())));
        }
        failures
    }

    /// Sends a dump request and feeds each of its messages to `each` until
    /// `NLMSG_DONE`. Returns whether the dump was consistent (no
    /// `NLM_F_DUMP_INTR`).
    fn dump(&mut self, request: &[u8], seq: u32, mut each: impl FnMut(&wire::Message)) -> io::Result<bool> {
        self.socket.send(request, 0)?;
        let mut consistent = true;
        loop {
            match self.receive(0) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => continue,
                Err(e) => return Err(e),
            }
            for message in wire::messages(&self.buf) {
                let message =
                    message.map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                if message.seq != seq {
                    continue;
                }
                consistent &= message.flags & NLM_F_DUMP_INTR == 0;
                match message.message_type {
                    NLMSG_DONE | NLMSG_ERROR => {
                        let code = wire::code(message.payload).unwrap_or(0);
                        return match code {
                            0 => Ok(consistent),
                            code => Err(io::Error::from_raw_os_error(-code)),
                        };
                    }
                    _ => each(&message),
                }
            }
        }
    }
}

/// Kernel events: RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
/// RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE and RTNLGRP_NEXTHOP, on its own
/// socket with a large receive buffer.
///
/// Our own route changes are reported too (unless opened with
/// [`Monitor::open_ignoring`]): while tern installs a full table, read
/// events steadily or expect an `Overrun`.
pub struct Monitor {
    socket: TokioSocket,
    buf: Vec<u8>,
    pending: VecDeque<Event>,
}

impl Monitor {
    /// Opens the socket in the calling thread's network namespace; must be
    /// called within a tokio runtime.
    pub fn open() -> io::Result<Monitor> {
        Self::open_with(MONITOR_RECEIVE_BUFFER)
    }

    /// [`Monitor::open`], without what the request socket with port
    /// `writer` changed, and without additions and replacements of routes
    /// of `protocol` (see [`wire::ignore_own_changes`]): what the FIB
    /// writes and removes itself is not read back.
    pub fn open_ignoring(protocol: u8, writer: u32) -> io::Result<Monitor> {
        let monitor = Self::open_with(MONITOR_RECEIVE_BUFFER)?;
        wire::ignore_own_changes(monitor.socket.socket_ref(), protocol, writer)?;
        Ok(monitor)
    }

    fn open_with(receive_buffer: usize) -> io::Result<Monitor> {
        const GROUPS: [u32; 6] = [
            wire::RTNLGRP_LINK,
            wire::RTNLGRP_IPV4_IFADDR,
            wire::RTNLGRP_IPV6_IFADDR,
            wire::RTNLGRP_IPV4_ROUTE,
            wire::RTNLGRP_IPV6_ROUTE,
            wire::RTNLGRP_NEXTHOP,
        ];
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let mut socket = TokioSocket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
        wire::join(socket.socket_mut(), &GROUPS, receive_buffer)?;
        Ok(Monitor {
            socket,
            buf: Vec::with_capacity(RECEIVE_CHUNK),
            pending: VecDeque::new(),
        })
    }

    /// The next event. After `Overrun` the monitor goes on reporting what
    /// comes next.
    pub async fn next(&mut self) -> io::Result<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            self.buf.clear();
            match self.socket.recv(&mut self.buf).await {
                Ok(()) => {
                    let events = wire::messages(&self.buf)
                        .map_while(Result::ok)
                        .filter_map(|m| event(&m));
                    self.pending.extend(events);
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Ok(Event::Overrun),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn event(m: &wire::Message) -> Option<Event> {
    let added = matches!(
        m.message_type,
        wire::RTM_NEWADDR | wire::RTM_NEWROUTE | wire::RTM_NEWNEXTHOP
    );
    match m.message_type {
        wire::RTM_NEWLINK => interface::link(m.payload).map(Event::Link),
        wire::RTM_DELLINK => interface::link(m.payload).map(|l| Event::LinkGone(l.ifindex)),
        wire::RTM_NEWADDR | wire::RTM_DELADDR => {
            interface::address(m.payload).map(|address| Event::Address { added, address })
        }
        wire::RTM_NEWROUTE | wire::RTM_DELROUTE => {
            route::parse(m.payload).map(|route| Event::Route { added, route })
        }
        wire::RTM_NEWNEXTHOP | wire::RTM_DELNEXTHOP => nexthop::decode(m.payload)
            .ok()
            .map(|object| Event::Nexthop { added, object }),
        _ => None,
    }
}
