//! Capabilities advertised in OPEN (RFC 5492) and the ones tern uses.
//!
//! A capability of a known code whose value is malformed is kept as
//! [`Capability::Unknown`]: it is then simply not advertised as far as the
//! session is concerned, which is safer than refusing a peer over, say, a
//! badly encoded FQDN.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::wire::{exact_chunks, take_bytes, u8_, u16_, u24_, u32_};
use crate::{Afi, Family, Safi};

/// Capability codes (IANA "Capability Codes").
pub mod code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GRACEFUL_RESTART: u8 = 71;
    pub const FQDN: u8 = 73;
}

/// One entry of the extended next hop capability (RFC 8950 §3): NLRI of
/// `nlri` may carry a next hop of `next_hop_afi`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtendedNextHop {
    pub nlri: Family,
    pub next_hop_afi: Afi,
}

/// Graceful restart (RFC 4724 §3, RFC 8538 §2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restarting: bool,
    /// N bit: the sender supports graceful restart for NOTIFICATION
    /// (RFC 8538).
    pub notification: bool,
    /// Seconds, 12 bits.
    pub restart_time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    pub family: Family,
    /// F bit: forwarding state for the family was preserved.
    pub forwarding: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddPathMode {
    Receive = 1,
    Send = 2,
    Both = 3,
}

impl AddPathMode {
    pub fn can_receive(self) -> bool {
        matches!(self, Self::Receive | Self::Both)
    }

    pub fn can_send(self) -> bool {
        matches!(self, Self::Send | Self::Both)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct AddPathFamily {
    pub family: Family,
    pub mode: AddPathMode,
}

/// Long-lived graceful restart, per family (RFC 9494 §3).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LongLivedFamily {
    pub family: Family,
    pub forwarding: bool,
    /// Seconds, 24 bits.
    pub stale_time: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    Multiprotocol(Family),
    RouteRefresh,
    ExtendedNextHop(Vec<ExtendedNextHop>),
    ExtendedMessage,
    GracefulRestart(GracefulRestart),
    FourOctetAs(u32),
    AddPath(Vec<AddPathFamily>),
    EnhancedRouteRefresh,
    LongLivedGracefulRestart(Vec<LongLivedFamily>),
    /// Hostname and domain (draft-walton-bgp-hostname-capability).
    Fqdn {
        hostname: String,
        domain: String,
    },
    Unknown {
        code: u8,
        value: Bytes,
    },
}

const GR_RESTARTING: u16 = 0x8000;
const GR_NOTIFICATION: u16 = 0x4000;
const GR_TIME_MASK: u16 = 0x0fff;
const FAMILY_FORWARDING: u8 = 0x80;

fn family3(c: &[u8]) -> Family {
    Family::new(Afi(u16::from_be_bytes([c[0], c[1]])), Safi(c[2]))
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol(_) => code::MULTIPROTOCOL,
            Capability::RouteRefresh => code::ROUTE_REFRESH,
            Capability::ExtendedNextHop(_) => code::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => code::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => code::FOUR_OCTET_AS,
            Capability::AddPath(_) => code::ADD_PATH,
            Capability::EnhancedRouteRefresh => code::ENHANCED_ROUTE_REFRESH,
            Capability::LongLivedGracefulRestart(_) => code::LONG_LIVED_GRACEFUL_RESTART,
            Capability::Fqdn { .. } => code::FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decodes one capability value; a malformed known one becomes
    /// `Unknown`.
    pub fn decode(code: u8, value: &[u8]) -> Capability {
        Self::decode_known(code, value).unwrap_or_else(|| Capability::Unknown {
            code,
            value: Bytes::copy_from_slice(value),
        })
    }

    fn decode_known(code: u8, v: &[u8]) -> Option<Capability> {
        Some(match code {
            code::MULTIPROTOCOL => {
                let [a, b, _reserved, s] = v else { return None };
                Capability::Multiprotocol(Family::new(Afi(u16::from_be_bytes([*a, *b])), Safi(*s)))
            }
            code::ROUTE_REFRESH if v.is_empty() => Capability::RouteRefresh,
            code::EXTENDED_MESSAGE if v.is_empty() => Capability::ExtendedMessage,
            code::ENHANCED_ROUTE_REFRESH if v.is_empty() => Capability::EnhancedRouteRefresh,
            code::EXTENDED_NEXT_HOP => {
                let entries = exact_chunks(v, 6)?
                    .map(|c| {
                        let safi = u8::try_from(u16::from_be_bytes([c[2], c[3]])).ok()?;
                        Some(ExtendedNextHop {
                            nlri: Family::new(Afi(u16::from_be_bytes([c[0], c[1]])), Safi(safi)),
                            next_hop_afi: Afi(u16::from_be_bytes([c[4], c[5]])),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                Capability::ExtendedNextHop(entries)
            }
            code::GRACEFUL_RESTART => {
                let (rest, head) = u16_(v).ok()?;
                let families = exact_chunks(rest, 4)?
                    .map(|c| GracefulRestartFamily {
                        family: family3(c),
                        forwarding: c[3] & FAMILY_FORWARDING != 0,
                    })
                    .collect();
                Capability::GracefulRestart(GracefulRestart {
                    restarting: head & GR_RESTARTING != 0,
                    notification: head & GR_NOTIFICATION != 0,
                    restart_time: head & GR_TIME_MASK,
                    families,
                })
            }
            code::FOUR_OCTET_AS => {
                let (rest, asn) = u32_(v).ok()?;
                rest.is_empty().then_some(Capability::FourOctetAs(asn))?
            }
            code::ADD_PATH => {
                let entries = exact_chunks(v, 4)?
                    .map(|c| {
                        let mode = match c[3] {
                            1 => AddPathMode::Receive,
                            2 => AddPathMode::Send,
                            3 => AddPathMode::Both,
                            _ => return None,
                        };
                        Some(AddPathFamily {
                            family: family3(c),
                            mode,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                Capability::AddPath(entries)
            }
            code::LONG_LIVED_GRACEFUL_RESTART => {
                let entries = exact_chunks(v, 7)?
                    .map(|c| {
                        let (_, stale_time) = u24_(&c[4..]).ok()?;
                        Some(LongLivedFamily {
                            family: family3(c),
                            forwarding: c[3] & FAMILY_FORWARDING != 0,
                            stale_time,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                Capability::LongLivedGracefulRestart(entries)
            }
            code::FQDN => {
                let (rest, hlen) = u8_(v).ok()?;
                let (rest, host) = take_bytes(rest, usize::from(hlen)).ok()?;
                let (rest, dlen) = u8_(rest).ok()?;
                let (rest, domain) = take_bytes(rest, usize::from(dlen)).ok()?;
                if !rest.is_empty() {
                    return None;
                }
                Capability::Fqdn {
                    hostname: String::from_utf8(host.to_vec()).ok()?,
                    domain: String::from_utf8(domain.to_vec()).ok()?,
                }
            }
            _ => return None,
        })
    }

    /// Length of the capability value.
    pub fn value_len(&self) -> usize {
        match self {
            Capability::Multiprotocol(_) | Capability::FourOctetAs(_) => 4,
            Capability::RouteRefresh | Capability::ExtendedMessage | Capability::EnhancedRouteRefresh => 0,
            Capability::ExtendedNextHop(e) => 6 * e.len(),
            Capability::GracefulRestart(gr) => 2 + 4 * gr.families.len(),
            Capability::AddPath(e) => 4 * e.len(),
            Capability::LongLivedGracefulRestart(e) => 7 * e.len(),
            Capability::Fqdn { hostname, domain } => 2 + hostname.len().min(255) + domain.len().min(255),
            Capability::Unknown { value, .. } => value.len(),
        }
    }

    /// Writes the value. Strings longer than 255 octets are cut.
    pub fn encode_value(&self, buf: &mut impl BufMut) {
        let put_family3 = |buf: &mut dyn BufMut, f: Family| {
            buf.put_u16(f.afi.0);
            buf.put_u8(f.safi.0);
        };
        match self {
            Capability::Multiprotocol(f) => {
                buf.put_u16(f.afi.0);
                buf.put_u8(0);
                buf.put_u8(f.safi.0);
            }
            Capability::RouteRefresh | Capability::ExtendedMessage | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop(entries) => {
                for e in entries {
                    buf.put_u16(e.nlri.afi.0);
                    buf.put_u16(u16::from(e.nlri.safi.0));
                    buf.put_u16(e.next_hop_afi.0);
                }
            }
            Capability::GracefulRestart(gr) => {
                let mut head = gr.restart_time & GR_TIME_MASK;
                if gr.restarting {
                    head |= GR_RESTARTING;
                }
                if gr.notification {
                    head |= GR_NOTIFICATION;
                }
                buf.put_u16(head);
                for f in &gr.families {
                    put_family3(buf, f.family);
                    buf.put_u8(if f.forwarding { FAMILY_FORWARDING } else { 0 });
                }
            }
            Capability::FourOctetAs(asn) => buf.put_u32(*asn),
            Capability::AddPath(entries) => {
                for e in entries {
                    put_family3(buf, e.family);
                    buf.put_u8(e.mode as u8);
                }
            }
            Capability::LongLivedGracefulRestart(entries) => {
                for e in entries {
                    put_family3(buf, e.family);
                    buf.put_u8(if e.forwarding { FAMILY_FORWARDING } else { 0 });
                    buf.put_uint(u64::from(e.stale_time & 0x00ff_ffff), 3);
                }
            }
            Capability::Fqdn { hostname, domain } => {
                for s in [hostname, domain] {
                    let n = s.len().min(255);
                    buf.put_u8(n as u8);
                    buf.put_slice(&s.as_bytes()[..n]);
                }
            }
            Capability::Unknown { value, .. } => buf.put_slice(value),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Multiprotocol(fam) => write!(f, "multiprotocol {fam}"),
            Capability::RouteRefresh => f.write_str("route-refresh"),
            Capability::ExtendedNextHop(e) => {
                f.write_str("extended-next-hop")?;
                for e in e {
                    write!(f, " {}/afi{}", e.nlri, e.next_hop_afi.0)?;
                }
                Ok(())
            }
            Capability::ExtendedMessage => f.write_str("extended-message"),
            Capability::GracefulRestart(gr) => write!(
                f,
                "graceful-restart time {} R={} N={}",
                gr.restart_time, gr.restarting as u8, gr.notification as u8
            ),
            Capability::FourOctetAs(asn) => write!(f, "4-octet-as {asn}"),
            Capability::AddPath(_) => f.write_str("add-path"),
            Capability::EnhancedRouteRefresh => f.write_str("enhanced-route-refresh"),
            Capability::LongLivedGracefulRestart(_) => f.write_str("long-lived-graceful-restart"),
            Capability::Fqdn { hostname, domain } => write!(f, "fqdn {hostname:?} {domain:?}"),
            Capability::Unknown { code, .. } => write!(f, "capability {code}"),
        }
    }
}
