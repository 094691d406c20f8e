//! A raw BGP speaker built on bgp-proto, for tests that need a peer doing
//! exactly what they say: well-formed sessions that feed a table, or
//! malformed messages byte by byte. It dials from an address inside a lab
//! namespace; the socket, once made there, is used from the test thread.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bgp_proto::{Capability, Context, Family, Message, Notification, Open};
use bytes::BytesMut;

use crate::netns::Netns;

/// Reads one BGP message (header and body) from a blocking socket. With a
/// read timeout set on `s`, a timeout before the message's first byte is
/// returned as such; once begun, the message is read whole.
pub fn read_message(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut msg = vec![0u8; 19];
    if s.read(&mut msg[..1])? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let timeout = s.read_timeout()?;
    s.set_read_timeout(None)?;
    let rest = (|| {
        s.read_exact(&mut msg[1..])?;
        let len = usize::from(u16::from_be_bytes([msg[16], msg[17]]));
        msg.resize(len.max(19), 0);
        s.read_exact(&mut msg[19..])
    })();
    s.set_read_timeout(timeout)?;
    rest.map(|()| msg)
}

/// A whole BGP message: marker, length, type, body.
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// An OPEN with both unicast families, route refresh and 4-octet AS;
/// `version` is written as given (4 is BGP-4).
pub fn open_message(asn: u32, hold: u16, id: [u8; 4], version: u8) -> Vec<u8> {
    let caps = vec![
        Capability::Multiprotocol(Family::IPV4_UNICAST),
        Capability::Multiprotocol(Family::IPV6_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(asn),
    ];
    let mut buf = BytesMut::new();
    Message::Open(Open::new(asn, hold, id.into(), caps))
        .encode(&Context::default(), &mut buf)
        .expect("encode");
    let mut m = buf.to_vec();
    m[19] = version;
    m
}

/// One raw connection to a BGP speaker.
pub struct RawPeer {
    s: TcpStream,
    buf: Vec<u8>,
}

impl RawPeer {
    /// Connects from `source` (an address of `ns`) to `to` port 179.
    pub fn connect(ns: &Netns, source: IpAddr, to: IpAddr) -> RawPeer {
        let s = ns
            .spawn_in(move || {
                let domain = if to.is_ipv6() {
                    socket2::Domain::IPV6
                } else {
                    socket2::Domain::IPV4
                };
                let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
                sock.bind(&SocketAddr::new(source, 0).into())?;
                sock.connect_timeout(&SocketAddr::new(to, 179).into(), Duration::from_secs(5))?;
                std::io::Result::Ok(TcpStream::from(sock))
            })
            .join()
            .expect("connect thread")
            .expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        RawPeer { s, buf: Vec::new() }
    }

    /// Connects and brings the session up: the speaker's OPEN (of
    /// `their_asn`), ours, KEEPALIVEs. `hold` 0 needs no keepalives.
    pub fn establish(ns: &Netns, source: IpAddr, to: IpAddr, their_asn: u32, open: &[u8]) -> RawPeer {
        let mut p = RawPeer::connect(ns, source, to);
        match p.read(Duration::from_secs(5)) {
            Some(Message::Open(o)) => assert_eq!(o.asn(), their_asn),
            other => panic!("the speaker's OPEN: {other:?}"),
        }
        p.send(open);
        p.send(&message(4, &[]));
        loop {
            match p.read(Duration::from_secs(5)) {
                Some(Message::Keepalive) => return p,
                Some(Message::Notification(n)) => panic!("the session was refused: {n}"),
                Some(_) => {}
                None => panic!("no KEEPALIVE"),
            }
        }
    }

    /// Sends bytes as they are. The other side may have closed already:
    /// what it sent before is still read.
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes);
    }

    /// The next message within `within`, or None (also when the other side
    /// closed).
    pub fn read(&mut self, within: Duration) -> Option<Message> {
        let deadline = Instant::now() + within;
        let ctx = Context {
            four_octet_as: true,
            ..Context::default()
        };
        loop {
            if self.buf.len() >= 19 {
                let len = usize::from(u16::from_be_bytes([self.buf[16], self.buf[17]]));
                if self.buf.len() >= len {
                    let frame: Vec<u8> = self.buf.drain(..len).collect();
                    return Message::decode(&frame, &ctx).ok();
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return None,
            }
        }
    }

    /// A NOTIFICATION within `within`, if one comes.
    pub fn notification(&mut self, within: Duration) -> Option<Notification> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.read(deadline - Instant::now()) {
                Some(Message::Notification(n)) => return Some(n),
                Some(_) => {}
                None => return None,
            }
        }
        None
    }
}
