//! Unnumbered peers (`interface = "eth1"`): finding the router at the
//! other end of a link by its IPv6 link-local address, and letting it find
//! us.
//!
//! FRR's `neighbor IFACE interface` learns its peer's address only from
//! the router advertisements it receives on the link (RFC 4861 §4.2), and
//! sends its own every 10 s; so do we, and each side learns the other from
//! them. A connection that arrives from a link-local address on the link
//! teaches us the same (see the supervisor).
//!
//! Sans I/O like the BGP and BFD state machines: links, received packets
//! and `now` go in; advertisements to send and neighbours found come out.
//! [`task`] owns the socket.
//!
//! What we advertise says only "a router is here": router lifetime 0 (no
//! host may take us as its default router), no prefixes, and our
//! link-layer address.

pub mod task;

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

/// ICMPv6 types (RFC 4861 §4.1, §4.2).
pub const ROUTER_SOLICITATION: u8 = 133;
pub const ROUTER_ADVERTISEMENT: u8 = 134;
/// Option type of a source link-layer address (RFC 4861 §4.6.1).
const SOURCE_LINK_LAYER_ADDRESS: u8 = 1;

/// Between our advertisements once a link is known: what FRR's bgpd asks
/// zebra for on unnumbered links.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// The first advertisements on a link come this close together, so a
/// router that just started hears us at once.
pub const FAST_INTERVAL: Duration = Duration::from_secs(1);
const FAST_COUNT: u8 = 3;
/// A solicitation is answered at once, but not more often than this.
const ANSWER_GAP: Duration = Duration::from_secs(1);
/// A different router on the link replaces the one we know only when that
/// one has not been heard for this long (a link is meant to hold one).
pub const NEIGHBOUR_HOLD: Duration = Duration::from_secs(30);

/// A link as the task sees it (from the interface list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub ifindex: u32,
    pub mac: Option<[u8; 6]>,
    /// Up, with a usable link-local address of ours.
    pub ready: bool,
}

/// Something for the task to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this advertisement to all nodes (ff02::1) on the link.
    Advertise { ifindex: u32, packet: Vec<u8> },
    /// Send this solicitation to all routers (ff02::2) on the link: a
    /// router answers with an advertisement at once rather than at its
    /// next turn (FRR's is every 10 s), so a restart finds it again fast.
    Solicit { ifindex: u32, packet: Vec<u8> },
    /// The router at the other end of `interface` is `address`.
    Neighbour {
        interface: String,
        address: Ipv6Addr,
        ifindex: u32,
    },
}

/// Where a received packet came from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    pub ifindex: u32,
    pub source: Ipv6Addr,
    pub hop_limit: u8,
    /// The source is one of our own addresses.
    pub own: bool,
}

/// Why a received packet was not used.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Ignored {
    /// RFC 4861 §6.1: hop limit below 255 (it came from off the link).
    HopLimit,
    /// Not from a link-local address.
    Source,
    /// Too short, a code other than 0, or a bad option.
    Malformed,
    /// Not on a link of an unnumbered peer.
    Link,
    /// From one of our own addresses (a looped-back copy).
    Own,
}

#[derive(Debug)]
struct Link {
    info: Option<LinkInfo>,
    next: Option<Instant>,
    fast_left: u8,
    last_sent: Option<Instant>,
    neighbour: Option<(Ipv6Addr, Instant)>,
    /// A solicitation is owed (the link just became ready).
    solicit: bool,
}

impl Link {
    fn new() -> Self {
        Link {
            info: None,
            next: None,
            fast_left: FAST_COUNT,
            last_sent: None,
            neighbour: None,
            solicit: false,
        }
    }
}

/// The unnumbered links and what was heard on them.
#[derive(Debug, Default)]
pub struct Discovery {
    links: BTreeMap<String, Link>,
    pub sent: u64,
    pub received: u64,
    pub ignored: u64,
}

impl Discovery {
    /// The interfaces of unnumbered peers (at start and on reload).
    pub fn configure(&mut self, interfaces: &[String]) {
        self.links.retain(|name, _| interfaces.contains(name));
        for name in interfaces {
            self.links.entry(name.clone()).or_insert_with(Link::new);
        }
    }

    pub fn interfaces(&self) -> impl Iterator<Item = &str> {
        self.links.keys().map(String::as_str)
    }

    /// What the interface list says of a link now; `None` when it is gone.
    /// A link that comes back, or comes back as a new interface, starts
    /// over: fast advertisements, and its neighbour learned again.
    pub fn link(&mut self, name: &str, info: Option<LinkInfo>, now: Instant) {
        let Some(link) = self.links.get_mut(name) else {
            return;
        };
        let ready = |i: &Option<LinkInfo>| i.as_ref().filter(|i| i.ready).map(|i| i.ifindex);
        if ready(&link.info) != ready(&info) {
            link.fast_left = FAST_COUNT;
            link.neighbour = None;
            link.next = ready(&info).map(|_| now);
            link.solicit = ready(&info).is_some();
        }
        link.info = info;
    }

    /// The known neighbour of a link.
    pub fn neighbour(&self, name: &str) -> Option<Ipv6Addr> {
        self.links.get(name)?.neighbour.map(|(a, _)| a)
    }

    /// A connection (or anything else trustworthy) came from `address` on
    /// link `ifindex`: it is the neighbour there.
    pub fn heard(&mut self, ifindex: u32, address: Ipv6Addr, now: Instant, out: &mut Vec<Output>) {
        let Some((name, link)) = self
            .links
            .iter_mut()
            .find(|(_, l)| l.info.as_ref().is_some_and(|i| i.ifindex == ifindex))
        else {
            return;
        };
        match &mut link.neighbour {
            Some((a, at)) if *a == address => *at = now,
            Some((_, at)) if now.saturating_duration_since(*at) < NEIGHBOUR_HOLD => {}
            n => {
                *n = Some((address, now));
                out.push(Output::Neighbour {
                    interface: name.clone(),
                    address,
                    ifindex,
                });
            }
        }
    }

    /// An ICMPv6 packet received.
    pub fn receive(
        &mut self,
        from: Arrival,
        packet: &[u8],
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), Ignored> {
        let result = self.check(from, packet);
        match result {
            Ok(ROUTER_ADVERTISEMENT) => {
                self.received += 1;
                self.heard(from.ifindex, from.source, now, out);
            }
            Ok(_) => {
                self.received += 1;
                // A solicitation: answer now rather than at the next turn.
                if let Some(link) = self.links.values_mut().find(|l| {
                    l.info
                        .as_ref()
                        .is_some_and(|i| i.ifindex == from.ifindex && i.ready)
                }) && link
                    .last_sent
                    .is_none_or(|t| now.saturating_duration_since(t) >= ANSWER_GAP)
                {
                    link.next = Some(now);
                }
            }
            Err(_) => self.ignored += 1,
        }
        result.map(|_| ())
    }

    fn check(&self, from: Arrival, packet: &[u8]) -> Result<u8, Ignored> {
        if from.hop_limit != 255 {
            return Err(Ignored::HopLimit);
        }
        let kind = parse(packet)?;
        if !self
            .links
            .values()
            .any(|l| l.info.as_ref().is_some_and(|i| i.ifindex == from.ifindex))
        {
            return Err(Ignored::Link);
        }
        if from.own {
            return Err(Ignored::Own);
        }
        // A solicitation may come from the unspecified address (a host
        // without an address yet); an advertisement must not.
        let unspecified_ok = kind == ROUTER_SOLICITATION && from.source.is_unspecified();
        if !(from.source.is_unicast_link_local() || unspecified_ok) {
            return Err(Ignored::Source);
        }
        Ok(kind)
    }

    /// Advertisements due.
    pub fn on_timer(&mut self, now: Instant, out: &mut Vec<Output>) {
        for link in self.links.values_mut() {
            let Some(info) = link.info.as_ref().filter(|i| i.ready) else {
                continue;
            };
            if std::mem::take(&mut link.solicit) {
                out.push(Output::Solicit {
                    ifindex: info.ifindex,
                    packet: solicitation(info.mac),
                });
            }
            if link.next.is_none_or(|t| t > now) {
                continue;
            }
            out.push(Output::Advertise {
                ifindex: info.ifindex,
                packet: advertisement(info.mac),
            });
            self.sent += 1;
            link.last_sent = Some(now);
            let gap = if link.fast_left > 0 {
                link.fast_left -= 1;
                FAST_INTERVAL
            } else {
                INTERVAL
            };
            link.next = Some(now + gap);
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.links
            .values()
            .filter(|l| l.info.as_ref().is_some_and(|i| i.ready))
            .filter_map(|l| l.next)
            .min()
    }
}

/// Our router advertisement: hop limit and flags unspecified, router
/// lifetime 0, reachable time and retransmit timer unspecified, and our
/// link-layer address when the link has one. The kernel fills in the
/// checksum.
pub fn advertisement(mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut p = vec![ROUTER_ADVERTISEMENT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    if let Some(mac) = mac {
        p.extend_from_slice(&[SOURCE_LINK_LAYER_ADDRESS, 1]);
        p.extend_from_slice(&mac);
    }
    p
}

/// Our router solicitation (RFC 4861 §4.1), with our link-layer address.
pub fn solicitation(mac: Option<[u8; 6]>) -> Vec<u8> {
    let mut p = vec![ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    if let Some(mac) = mac {
        p.extend_from_slice(&[SOURCE_LINK_LAYER_ADDRESS, 1]);
        p.extend_from_slice(&mac);
    }
    p
}

/// The type of a well-formed router advertisement or solicitation (RFC
/// 4861 §6.1.1, §6.1.2: code 0, long enough, every option of non-zero
/// length and inside the packet).
pub fn parse(packet: &[u8]) -> Result<u8, Ignored> {
    let (kind, fixed) = match packet.first() {
        Some(&ROUTER_ADVERTISEMENT) => (ROUTER_ADVERTISEMENT, 16),
        Some(&ROUTER_SOLICITATION) => (ROUTER_SOLICITATION, 8),
        _ => return Err(Ignored::Malformed),
    };
    if packet.len() < fixed || packet[1] != 0 {
        return Err(Ignored::Malformed);
    }
    let mut options = &packet[fixed..];
    while !options.is_empty() {
        let len = usize::from(*options.get(1).ok_or(Ignored::Malformed)?) * 8;
        if len == 0 || len > options.len() {
            return Err(Ignored::Malformed);
        }
        options = &options[len..];
    }
    Ok(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETH1: u32 = 7;

    fn ll(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn ready(ifindex: u32) -> Option<LinkInfo> {
        Some(LinkInfo {
            ifindex,
            mac: Some([2, 0, 0, 0, 0, 1]),
            ready: true,
        })
    }

    fn setup(now: Instant) -> Discovery {
        let mut d = Discovery::default();
        d.configure(&["eth1".to_owned()]);
        d.link("eth1", ready(ETH1), now);
        d
    }

    fn rx(ifindex: u32, source: &str, hop_limit: u8, own: bool) -> Arrival {
        Arrival {
            ifindex,
            source: source.parse().unwrap(),
            hop_limit,
            own,
        }
    }

    fn advertised(out: &[Output]) -> usize {
        out.iter()
            .filter(|o| matches!(o, Output::Advertise { .. }))
            .count()
    }

    #[test]
    fn advertisements_start_fast_then_settle() {
        let t0 = Instant::now();
        let mut d = setup(t0);
        let mut times = Vec::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(25) {
            let mut out = Vec::new();
            d.on_timer(now, &mut out);
            if advertised(&out) > 0 {
                times.push(now.duration_since(t0).as_secs());
            }
            now = d.next_deadline().unwrap();
        }
        assert_eq!(times, vec![0, 1, 2, 3, 13, 23]);
        assert_eq!(d.sent, 6);
        // One solicitation, with the first advertisement.
        let mut out = Vec::new();
        let mut d = setup(t0);
        d.on_timer(t0, &mut out);
        d.on_timer(t0 + FAST_INTERVAL, &mut out);
        let solicited = out.iter().filter(|o| matches!(o, Output::Solicit { .. })).count();
        assert_eq!(solicited, 1);
    }

    #[test]
    fn nothing_is_sent_on_a_link_that_is_not_ready() {
        let t0 = Instant::now();
        let mut d = Discovery::default();
        d.configure(&["eth1".to_owned()]);
        let mut out = Vec::new();
        d.on_timer(t0, &mut out);
        assert!(out.is_empty() && d.next_deadline().is_none());
        d.link(
            "eth1",
            Some(LinkInfo {
                ifindex: ETH1,
                mac: None,
                ready: false,
            }),
            t0,
        );
        d.on_timer(t0, &mut out);
        assert!(out.is_empty());
        d.link("eth1", ready(ETH1), t0);
        d.on_timer(t0, &mut out);
        assert_eq!(advertised(&out), 1);
    }

    #[test]
    fn the_advertisement_is_what_rfc_4861_describes() {
        let p = advertisement(Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(p.len(), 24);
        assert_eq!(p[0], ROUTER_ADVERTISEMENT);
        // Router lifetime 0: no host takes us as its default router.
        assert_eq!(&p[6..8], &[0, 0]);
        assert_eq!(&p[16..], &[1, 1, 2, 0, 0, 0, 0, 1]);
        assert_eq!(parse(&p), Ok(ROUTER_ADVERTISEMENT));
        assert_eq!(parse(&advertisement(None)), Ok(ROUTER_ADVERTISEMENT));
        let rs = solicitation(Some([2, 0, 0, 0, 0, 1]));
        assert_eq!((rs.len(), parse(&rs)), (16, Ok(ROUTER_SOLICITATION)));
    }

    #[test]
    fn a_router_advertisement_names_the_neighbour_once() {
        let t0 = Instant::now();
        let mut d = setup(t0);
        let ra = advertisement(Some([2, 0, 0, 0, 0, 2]));
        let mut out = Vec::new();
        d.receive(rx(ETH1, "fe80::2", 255, false), &ra, t0, &mut out)
            .unwrap();
        assert_eq!(
            out,
            vec![Output::Neighbour {
                interface: "eth1".into(),
                address: ll("fe80::2"),
                ifindex: ETH1
            }]
        );
        out.clear();
        d.receive(rx(ETH1, "fe80::2", 255, false), &ra, t0 + INTERVAL, &mut out)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(d.neighbour("eth1"), Some(ll("fe80::2")));
    }

    #[test]
    fn another_router_replaces_the_neighbour_only_once_it_went_quiet() {
        let t0 = Instant::now();
        let mut d = setup(t0);
        let ra = advertisement(None);
        let mut out = Vec::new();
        d.receive(rx(ETH1, "fe80::2", 255, false), &ra, t0, &mut out)
            .unwrap();
        out.clear();
        d.receive(rx(ETH1, "fe80::3", 255, false), &ra, t0 + INTERVAL, &mut out)
            .unwrap();
        assert!(out.is_empty());
        assert_eq!(d.neighbour("eth1"), Some(ll("fe80::2")));
        d.receive(
            rx(ETH1, "fe80::3", 255, false),
            &ra,
            t0 + NEIGHBOUR_HOLD + INTERVAL,
            &mut out,
        )
        .unwrap();
        assert_eq!(d.neighbour("eth1"), Some(ll("fe80::3")));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn bad_packets_are_ignored_and_counted() {
        let t0 = Instant::now();
        let mut d = setup(t0);
        let ra = advertisement(None);
        let mut out = Vec::new();
        let mut bad_option = advertisement(Some([2, 0, 0, 0, 0, 2]));
        bad_option[17] = 0;
        let mut code = ra.clone();
        code[1] = 1;
        let cases: Vec<(Arrival, &[u8], Ignored)> = vec![
            (rx(ETH1, "fe80::2", 64, false), &ra, Ignored::HopLimit),
            (rx(ETH1, "fd00::2", 255, false), &ra, Ignored::Source),
            (rx(ETH1, "::", 255, false), &ra, Ignored::Source),
            (rx(ETH1, "fe80::2", 255, false), &ra[..10], Ignored::Malformed),
            (rx(ETH1, "fe80::2", 255, false), &code, Ignored::Malformed),
            (rx(ETH1, "fe80::2", 255, false), &bad_option, Ignored::Malformed),
            (
                rx(ETH1, "fe80::2", 255, false),
                &[128, 0, 0, 0],
                Ignored::Malformed,
            ),
            (rx(ETH1 + 1, "fe80::2", 255, false), &ra, Ignored::Link),
            (rx(ETH1, "fe80::1", 255, true), &ra, Ignored::Own),
        ];
        for (i, (from, p, why)) in cases.iter().enumerate() {
            assert_eq!(d.receive(*from, p, t0, &mut out), Err(*why), "case {i}");
        }
        assert!(out.is_empty() && d.neighbour("eth1").is_none());
        assert_eq!(d.ignored, cases.len() as u64);
    }

    #[test]
    fn a_solicitation_is_answered_at_once_but_not_too_often() {
        let t0 = Instant::now();
        let mut d = setup(t0);
        let mut out = Vec::new();
        for _ in 0..4 {
            d.on_timer(t0 + Duration::from_secs(30), &mut out);
        }
        let later = t0 + Duration::from_secs(35);
        let rs = [ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
        d.receive(rx(ETH1, "::", 255, false), &rs, later, &mut out)
            .unwrap();
        assert_eq!(d.next_deadline(), Some(later));
        out.clear();
        d.on_timer(later, &mut out);
        assert_eq!(advertised(&out), 1);
        // Another one right away waits for the next turn.
        d.receive(rx(ETH1, "fe80::2", 255, false), &rs, later, &mut out)
            .unwrap();
        assert!(d.next_deadline().unwrap() > later);
        // A solicitation teaches nothing about the neighbour.
        assert!(d.neighbour("eth1").is_none());
    }

    #[test]
    fn a_link_that_comes_back_starts_over() {
        let t0 = Instant::now();
        let mut d = setup(t0);
        let mut out = Vec::new();
        d.receive(
            rx(ETH1, "fe80::2", 255, false),
            &advertisement(None),
            t0,
            &mut out,
        )
        .unwrap();
        d.link("eth1", None, t0);
        assert!(d.neighbour("eth1").is_none() && d.next_deadline().is_none());
        d.link("eth1", ready(ETH1 + 5), t0 + INTERVAL);
        assert_eq!(d.next_deadline(), Some(t0 + INTERVAL));
        // A connection from the neighbour names it too.
        out.clear();
        d.heard(ETH1 + 5, ll("fe80::9"), t0 + INTERVAL, &mut out);
        assert_eq!(d.neighbour("eth1"), Some(ll("fe80::9")));
        assert_eq!(out.len(), 1);
    }
}
