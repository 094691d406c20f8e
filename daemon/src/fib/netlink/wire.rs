//! Netlink framing shared by requests, dumps and events: message types and
//! groups from the kernel's uapi headers, writing a request into a batch,
//! walking the messages of a datagram, reading ACKs with their extended
//! ACK message, and opening sockets with the options tern relies on.

use std::io;

use netlink_packet_core::{
    DecodeError, Emitable, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_REQUEST, NetlinkBuffer, NlaBuffer,
    NlasIterator,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use nix::sys::socket::{setsockopt, sockopt};

use super::OpError;

// Message types (linux/rtnetlink.h).
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
pub const RTM_DELROUTE: u16 = 25;
pub const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWNEXTHOP: u16 = 104;
pub const RTM_DELNEXTHOP: u16 = 105;
pub const RTM_GETNEXTHOP: u16 = 106;

// Multicast groups (enum rtnetlink_groups).
pub const RTNLGRP_LINK: u32 = 1;
pub const RTNLGRP_IPV4_IFADDR: u32 = 5;
pub const RTNLGRP_IPV4_ROUTE: u32 = 7;
pub const RTNLGRP_IPV6_IFADDR: u32 = 9;
pub const RTNLGRP_IPV6_ROUTE: u32 = 11;
pub const RTNLGRP_NEXTHOP: u32 = 32;

/// `sizeof(struct nlmsghdr)`.
pub const NETLINK_HEADER_LEN: usize = 16;
/// `NLMSGERR_ATTR_MSG`: the extended ACK's human-readable message.
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Netlink messages are padded to 4 bytes.
pub fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Appends one request (header and `body`) to `buf`.
pub fn push_message(buf: &mut Vec<u8>, message_type: u16, flags: u16, seq: u32, body: &impl Emitable) {
    let start = buf.len();
    let len = NETLINK_HEADER_LEN + body.buffer_len();
    buf.resize(start + align(len), 0);
    let mut header = NetlinkBuffer::new(&mut buf[start..start + len]);
    header.set_length(len as u32);
    header.set_message_type(message_type);
    header.set_flags(flags | NLM_F_REQUEST);
    header.set_sequence_number(seq);
    header.set_port_number(0);
    body.emit(&mut buf[start + NETLINK_HEADER_LEN..start + len]);
}

/// One message of a received datagram.
pub struct Message<'a> {
    pub message_type: u16,
    pub flags: u16,
    pub seq: u32,
    pub payload: &'a [u8],
}

/// The messages packed in one datagram; stops at the first malformed one.
pub fn messages(datagram: &[u8]) -> impl Iterator<Item = Result<Message<'_>, DecodeError>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let message = NetlinkBuffer::new_checked(rest).map(|buf| {
            let len = buf.length() as usize;
            let message = Message {
                message_type: buf.message_type(),
                flags: buf.flags(),
                seq: buf.sequence_number(),
                payload: &rest[NETLINK_HEADER_LEN..len],
            };
            rest = rest.get(align(len)..).unwrap_or_default();
            message
        });
        if message.is_err() {
            rest = &[];
        }
        Some(message)
    })
}

/// The error code at the start of an `NLMSG_ERROR` or `NLMSG_DONE` payload
/// (0 for an ACK), negated as the kernel sends it.
pub fn code(payload: &[u8]) -> Option<i32> {
    payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// The failure an `NLMSG_ERROR` reports, or `None` for a plain ACK.
pub fn ack_error(payload: &[u8], flags: u16) -> Option<OpError> {
    let code = code(payload).unwrap_or(-libc::EPROTO);
    if code == 0 {
        return None;
    }
    let errno = -code;
    let message = extended_ack_message(payload, flags)
        .unwrap_or_else(|| nix::errno::Errno::from_raw(errno).desc().to_owned());
    Some(OpError { errno, message })
}

/// The extended ACK's message: after the code and the echoed request (just
/// its header when capped), attributes follow when `NLM_F_ACK_TLVS` is set.
fn extended_ack_message(payload: &[u8], flags: u16) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 {
        NETLINK_HEADER_LEN
    } else {
        align(NetlinkBuffer::new_checked(payload.get(4..)?).ok()?.length() as usize)
    };
    let tlvs = payload.get(4 + echoed..)?;
    NlasIterator::new(tlvs)
        .filter_map(Result::ok)
        .find_map(|nla: NlaBuffer<&[u8]>| {
            (nla.kind() == NLMSGERR_ATTR_MSG).then(|| {
                let text = nla.value().split(|&b| b == 0).next().unwrap_or_default();
                String::from_utf8_lossy(text).into_owned()
            })
        })
}

/// A `NETLINK_ROUTE` socket for requests and dumps, talking to the kernel:
/// strict checking of dump requests (so filters apply in the kernel),
/// extended ACKs, errors capped to the request's header, and buffers of
/// the given sizes.
/// Returns it with its port, which the kernel's notifications of the
/// changes it requests carry.
pub fn request_socket(receive_buffer: usize, send_buffer: usize) -> io::Result<(Socket, u32)> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    let port = socket.bind_auto()?.port_number();
    socket.connect(&SocketAddr::new(0, 0))?;
    socket.set_netlink_get_strict_chk(true)?;
    socket.set_ext_ack(true)?;
    socket.set_cap_ack(true)?;
    set_buffers(&socket, receive_buffer, Some(send_buffer))?;
    Ok((socket, port))
}

/// Binds an event socket, joins `groups` and sizes its receive buffer.
pub fn join(socket: &mut Socket, groups: &[u32], receive_buffer: usize) -> io::Result<()> {
    socket.bind_auto()?;
    for &group in groups {
        socket.add_membership(group)?;
    }
    set_buffers(socket, receive_buffer, None)
}

/// Has the kernel drop, before they are queued, the notifications that
/// tell tern nothing: every change its own request socket (port `writer`)
/// made, additions and removals (a full table is a million of them each
/// way, each to be read and parsed), and any addition or replacement of a
/// route of `protocol`. Removals of its routes by anyone else (another
/// program, or the kernel when a link goes down) still come through:
/// that is drift to repair. A notification carries the port of the socket
/// whose request caused it. A classic BPF program on the socket:
///
/// ```text
/// ld [12]                    nlmsg_pid (host order, read as big-endian)
/// jeq writer, 4, 0
/// ldh [4]                    nlmsg_type
/// jeq RTM_NEWROUTE, 0, 3
/// ldb [21]                   rtm_protocol (16-byte header, 5th byte of rtmsg)
/// jeq protocol, 0, 1
/// ret 0                      drop
/// ret 0xffffffff             keep
/// ```
pub fn ignore_own_changes(socket: &Socket, protocol: u8, writer: u32) -> io::Result<()> {
    use socket2::{SockFilter, SockRef};
    const LD_W_ABS: u16 = 0x20;
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let new_route = u16::from_be_bytes(RTM_NEWROUTE.to_ne_bytes());
    let writer = u32::from_be_bytes(writer.to_ne_bytes());
    let program = [
        SockFilter::new(LD_W_ABS, 0, 0, 12),
        SockFilter::new(JEQ_K, 4, 0, writer),
        SockFilter::new(LD_H_ABS, 0, 0, 4),
        SockFilter::new(JEQ_K, 0, 3, u32::from(new_route)),
        SockFilter::new(LD_B_ABS, 0, 0, 21),
        SockFilter::new(JEQ_K, 0, 1, u32::from(protocol)),
        SockFilter::new(RET_K, 0, 0, 0),
        SockFilter::new(RET_K, 0, 0, u32::MAX),
    ];
    SockRef::from(socket).attach_filter(&program)
}

/// Sets the buffer sizes, past `net.core.[rw]mem_max` when we hold
/// `CAP_NET_ADMIN` (`SO_*BUFFORCE`), else as far as the limit allows.
fn set_buffers(socket: &Socket, receive: usize, send: Option<usize>) -> io::Result<()> {
    let receive = receive.min(i32::MAX as usize / 2);
    if setsockopt(socket, sockopt::RcvBufForce, &receive).is_err() {
        setsockopt(socket, sockopt::RcvBuf, &receive)?;
    }
    if let Some(send) = send {
        let send = send.min(i32::MAX as usize / 2);
        if setsockopt(socket, sockopt::SndBufForce, &send).is_err() {
            setsockopt(socket, sockopt::SndBuf, &send)?;
        }
    }
    Ok(())
}

/// The socket's effective receive and send buffers (the kernel doubles what
/// was asked, for its bookkeeping).
pub fn buffer_sizes(socket: &Socket) -> io::Result<(usize, usize)> {
    let receive = nix::sys::socket::getsockopt(socket, sockopt::RcvBuf)?;
    let send = nix::sys::socket::getsockopt(socket, sockopt::SndBuf)?;
    Ok((receive, send))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_message(code: i32, flags: u16, tlvs: &[u8]) -> Vec<u8> {
        let mut payload = code.to_ne_bytes().to_vec();
        // The echoed request header (capped): length 36, RTM_NEWROUTE.
        payload.extend_from_slice(&36u32.to_ne_bytes());
        payload.extend_from_slice(&RTM_NEWROUTE.to_ne_bytes());
        payload.extend_from_slice(&0u16.to_ne_bytes());
        payload.extend_from_slice(&7u32.to_ne_bytes());
        payload.extend_from_slice(&0u32.to_ne_bytes());
        payload.extend_from_slice(tlvs);
        let mut datagram = Vec::new();
        let len = (NETLINK_HEADER_LEN + payload.len()) as u32;
        datagram.extend_from_slice(&len.to_ne_bytes());
        datagram.extend_from_slice(&2u16.to_ne_bytes());
        datagram.extend_from_slice(&flags.to_ne_bytes());
        datagram.extend_from_slice(&7u32.to_ne_bytes());
        datagram.extend_from_slice(&0u32.to_ne_bytes());
        datagram.extend_from_slice(&payload);
        datagram
    }

    #[test]
    fn ack_without_error_is_none() {
        let datagram = error_message(0, NLM_F_CAPPED, &[]);
        let message = messages(&datagram).next().unwrap().unwrap();
        assert_eq!((message.message_type, message.seq), (2, 7));
        assert_eq!(ack_error(message.payload, message.flags), None);
    }

    #[test]
    fn error_carries_the_extended_ack_message() {
        let text = b"Nexthop has invalid gateway\0";
        let mut tlv = ((4 + text.len()) as u16).to_ne_bytes().to_vec();
        tlv.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        tlv.extend_from_slice(text);
        tlv.resize(align(tlv.len()), 0);
        let datagram = error_message(-libc::ENETUNREACH, NLM_F_CAPPED | NLM_F_ACK_TLVS, &tlv);
        let message = messages(&datagram).next().unwrap().unwrap();
        let error = ack_error(message.payload, message.flags).unwrap();
        assert_eq!(error.errno, libc::ENETUNREACH);
        assert_eq!(error.message, "Nexthop has invalid gateway");
        assert_eq!(error.to_string(), "Nexthop has invalid gateway (errno 101)");
    }

    #[test]
    fn error_without_extended_ack_names_the_errno() {
        let datagram = error_message(-libc::ESRCH, NLM_F_CAPPED, &[]);
        let message = messages(&datagram).next().unwrap().unwrap();
        let error = ack_error(message.payload, message.flags).unwrap();
        assert_eq!(error.errno, libc::ESRCH);
        assert_eq!(error.message, "No such process");
    }

    #[test]
    fn messages_walks_a_datagram_and_stops_at_garbage() {
        let mut datagram = error_message(0, 0, &[]);
        datagram.extend(error_message(-libc::EEXIST, 0, &[]));
        datagram.extend_from_slice(&[1, 2, 3]);
        let got: Vec<_> = messages(&datagram).collect();
        assert_eq!(got.len(), 3);
        assert!(got[0].is_ok() && got[1].is_ok() && got[2].is_err());
    }
}
