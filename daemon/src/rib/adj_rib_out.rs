//! Adj-RIB-Out of one peer (RFC 4271 §3.2): what it was sent, and what it
//! is still owed, coalesced.
//!
//! Changes are kept per prefix, not queued (as rustybgp's `PendingTx`): a
//! peer that reads slowly only ever receives the latest state of each
//! prefix, and a prefix announced and withdrawn again before it was sent
//! costs nothing. Pending changes go out packed into full UPDATEs, one
//! batch in flight at a time; End-of-RIB (RFC 4724) and End-of-Route-
//! Refresh (RFC 7313) follow once nothing is pending. Pure: it encodes and
//! never sends.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bgp_proto::route_refresh::{RefreshSubtype, RouteRefresh};
use bgp_proto::{Attributes, Context, Family, Message, NextHop, Nlri, UpdateBuilder};
use bytes::{Bytes, BytesMut};
use ipnet::IpNet;

use crate::memory::{FastMap, FastSet};

/// Outbound bytes handed to a peer at once; the next batch is built when
/// the peer reports this one written.
const BATCH_BYTES: usize = 256 * 1024;

/// A route as advertised: its attributes (interned) and next hop.
pub type Advertised = (Arc<Attributes>, NextHop);

/// Prefixes that share one attribute set and next hop in a batch.
type Group = (Arc<Attributes>, Vec<Nlri>);

#[derive(Default)]
pub struct AdjRibOut {
    /// Present while a session is up: encodes with its negotiated context.
    builder: Option<UpdateBuilder>,
    advertised: FastMap<IpNet, Advertised>,
    pending: BTreeMap<IpNet, Option<Advertised>>,
    /// The initial table was computed; changes are exported as they come.
    synced: bool,
    in_flight: bool,
    eor_owed: Vec<Family>,
    eorr_owed: Vec<Family>,
    /// Prefixes whose announcement could not be encoded for this session
    /// (e.g. attributes too long without extended messages): not sent, not
    /// recorded as advertised, and withdrawn if an older state was.
    unsendable: FastSet<IpNet>,
}

impl AdjRibOut {
    /// A session came up: nothing has been sent on it.
    pub fn session_up(&mut self, tx: Context) {
        self.builder = Some(UpdateBuilder::new(tx));
        self.advertised.clear();
        self.pending.clear();
        self.in_flight = false;
        self.eorr_owed.clear();
        self.unsendable.clear();
    }

    pub fn session_down(&mut self) {
        self.builder = None;
        self.synced = false;
        self.in_flight = false;
        self.advertised.clear();
        self.pending.clear();
        self.eor_owed.clear();
        self.unsendable.clear();
    }

    /// The initial table is being computed; End-of-RIB for `families`
    /// follows it.
    pub fn start_sync(&mut self, families: Vec<Family>) {
        self.synced = true;
        self.eor_owed = families;
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    /// What the peer should have for `prefix` (`None`: nothing); queued
    /// only when it differs from what the peer has.
    pub fn offer(&mut self, prefix: IpNet, want: Option<Advertised>) {
        let same = match (&want, self.advertised.get(&prefix)) {
            (None, None) => true,
            (Some((a, n)), Some((b, m))) => Arc::ptr_eq(a, b) && n == m,
            _ => false,
        };
        if same {
            self.pending.remove(&prefix);
        } else {
            self.pending.insert(prefix, want);
        }
    }

    /// The batch handed out was written.
    pub fn written(&mut self) {
        self.in_flight = false;
    }

    /// ROUTE-REFRESH for `family`: everything of it is sent again.
    pub fn forget(&mut self, family: Family) {
        self.advertised.retain(|p, _| Family::unicast_of(p) != family);
    }

    /// Enhanced route refresh (RFC 7313): Begin-of-Route-Refresh now,
    /// End-of-Route-Refresh after the routes.
    pub fn begin_refresh(&mut self, family: Family) -> Option<Bytes> {
        let builder = self.builder.as_ref()?;
        let borr = RouteRefresh {
            family,
            subtype: RefreshSubtype::BeginOfRefresh,
        };
        let mut buf = BytesMut::new();
        Message::RouteRefresh(borr)
            .encode(builder.context(), &mut buf)
            .ok()?;
        self.eorr_owed.push(family);
        Some(buf.freeze())
    }

    pub fn advertised(&self) -> impl Iterator<Item = &IpNet> {
        self.advertised.keys()
    }

    /// What the peer was sent and has: each prefix with the attributes and
    /// next hop it was sent with.
    pub fn advertised_routes(&self) -> impl Iterator<Item = (&IpNet, &Advertised)> {
        self.advertised.iter()
    }

    pub fn unsendable_prefixes(&self) -> impl Iterator<Item = &IpNet> {
        self.unsendable.iter()
    }

    pub fn len(&self) -> usize {
        self.advertised.len()
    }

    pub fn is_empty(&self) -> bool {
        self.advertised.is_empty()
    }

    /// Gives back room the tables no longer need.
    pub(super) fn shrink(&mut self) -> bool {
        crate::memory::shrink_map(&mut self.advertised) | crate::memory::shrink_set(&mut self.unsendable)
    }

    /// Prefixes the peer should have but that could not be encoded for it.
    pub fn unsendable(&self) -> usize {
        self.unsendable.len()
    }

    /// The next batch of UPDATEs, unless one is in flight or nothing is
    /// owed. `peer` names the peer in logs.
    pub fn next_batch(&mut self, peer: &str) -> Option<Bytes> {
        if self.in_flight || !self.synced {
            return None;
        }
        let builder = self.builder.as_mut()?;
        let mut buf = BytesMut::new();
        let mut announce: HashMap<(usize, NextHop, Family), Group> = HashMap::new();
        let mut withdraw: HashMap<Family, Vec<Nlri>> = HashMap::new();
        let mut estimate = 0;
        while estimate < BATCH_BYTES {
            let Some((prefix, change)) = self.pending.pop_first() else {
                break;
            };
            let family = Family::unicast_of(&prefix);
            estimate += 1 + usize::from(prefix.prefix_len()).div_ceil(8);
            match change {
                Some((attrs, nh)) => {
                    announce
                        .entry((Arc::as_ptr(&attrs) as usize, nh, family))
                        .or_insert_with(|| (attrs.clone(), Vec::new()))
                        .1
                        .push(Nlri::new(prefix));
                }
                None => {
                    self.unsendable.remove(&prefix);
                    if self.advertised.remove(&prefix).is_some() {
                        withdraw.entry(family).or_default().push(Nlri::new(prefix));
                    }
                }
            }
        }
        // Only what was encoded is recorded as advertised. What cannot be
        // encoded is counted, and an older state of it is withdrawn rather
        // than left with the peer.
        for ((_, nh, family), (attrs, prefixes)) in announce {
            match builder.announce(&mut buf, family, &attrs, nh, &prefixes) {
                Ok(_) => {
                    for n in prefixes {
                        self.unsendable.remove(&n.prefix);
                        self.advertised.insert(n.prefix, (attrs.clone(), nh));
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        peer,
                        prefixes = prefixes.len(),
                        first = %prefixes[0].prefix,
                        "cannot encode an announcement for this session; not sent"
                    );
                    for n in prefixes {
                        self.unsendable.insert(n.prefix);
                        if self.advertised.remove(&n.prefix).is_some() {
                            withdraw.entry(family).or_default().push(n);
                        }
                    }
                }
            }
        }
        for (family, prefixes) in withdraw {
            if let Err(e) = builder.withdraw(&mut buf, family, &prefixes) {
                tracing::error!(error = %e, peer, "cannot encode withdrawals");
            }
        }
        if self.pending.is_empty() {
            for family in std::mem::take(&mut self.eor_owed) {
                let _ = builder.end_of_rib(&mut buf, family);
            }
            for family in std::mem::take(&mut self.eorr_owed) {
                let eorr = RouteRefresh {
                    family,
                    subtype: RefreshSubtype::EndOfRefresh,
                };
                let _ = Message::RouteRefresh(eorr).encode(builder.context(), &mut buf);
            }
        }
        if buf.is_empty() {
            return None;
        }
        self.in_flight = true;
        Some(buf.freeze())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use bgp_proto::{AsPath, Origin, Update, frame_len};

    use super::*;

    fn attrs(med: u32) -> Arc<Attributes> {
        Arc::new(Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::from_sequence([65001])),
            med: Some(med),
            ..Attributes::default()
        })
    }

    fn nh() -> NextHop {
        NextHop::V4(Ipv4Addr::new(10, 0, 0, 1))
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn up() -> AdjRibOut {
        let mut out = AdjRibOut::default();
        out.session_up(Context::ebgp());
        out.start_sync(vec![Family::IPV4_UNICAST]);
        out
    }

    /// Every UPDATE in a batch, decoded.
    fn updates(batch: &[u8]) -> Vec<Update> {
        let ctx = Context::ebgp();
        let mut rest = batch;
        let mut out = Vec::new();
        while let Ok(Some(n)) = frame_len(rest, &ctx) {
            match Message::decode(&rest[..n], &ctx).unwrap() {
                Message::Update(u) => out.push(u),
                other => panic!("unexpected {other:?}"),
            }
            rest = &rest[n..];
        }
        out
    }

    fn announced(u: &[Update]) -> Vec<(IpNet, Option<u32>)> {
        u.iter()
            .flat_map(|u| u.nlri.iter().map(|n| (n.prefix, u.attributes.med)))
            .collect()
    }

    #[test]
    fn only_the_latest_state_of_a_prefix_is_sent() {
        let mut out = up();
        out.offer(net("10.0.0.0/24"), Some((attrs(1), nh())));
        out.offer(net("10.0.0.0/24"), Some((attrs(2), nh())));
        let u = updates(&out.next_batch("p").unwrap());
        assert_eq!(announced(&u), [(net("10.0.0.0/24"), Some(2))]);
        // End-of-RIB follows the initial table.
        assert_eq!(u.last().unwrap().end_of_rib_family(), Some(Family::IPV4_UNICAST));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn an_announcement_withdrawn_before_it_was_sent_costs_nothing() {
        let mut out = up();
        out.offer(net("10.0.0.0/24"), Some((attrs(1), nh())));
        out.offer(net("10.0.0.0/24"), None);
        let u = updates(&out.next_batch("p").unwrap());
        // Only End-of-RIB.
        assert_eq!(u.len(), 1);
        assert!(u[0].end_of_rib_family().is_some());
        out.written();
        // Nothing changed from what the peer has: nothing to send.
        let a = attrs(3);
        out.offer(net("10.1.0.0/24"), Some((a.clone(), nh())));
        out.next_batch("p").unwrap();
        out.written();
        out.offer(net("10.1.0.0/24"), Some((a, nh())));
        assert_eq!(out.next_batch("p"), None);
    }

    #[test]
    fn one_batch_in_flight_and_withdrawals_only_of_what_was_sent() {
        let mut out = up();
        out.offer(net("10.0.0.0/24"), Some((attrs(1), nh())));
        assert!(out.next_batch("p").is_some());
        out.offer(net("10.0.0.0/24"), None);
        out.offer(net("10.9.0.0/24"), None);
        // The first batch is not written yet.
        assert_eq!(out.next_batch("p"), None);
        out.written();
        let u = updates(&out.next_batch("p").unwrap());
        let withdrawn: Vec<IpNet> = u.iter().flat_map(|u| u.withdrawals()).map(|n| n.prefix).collect();
        assert_eq!(withdrawn, [net("10.0.0.0/24")]);
        assert!(out.is_empty());
    }

    #[test]
    fn prefixes_sharing_attributes_share_an_update_and_batches_are_bounded() {
        let mut out = up();
        let a = attrs(7);
        for i in 0..200_000u32 {
            let p = IpNet::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)).into(), 24).unwrap();
            out.offer(p, Some((a.clone(), nh())));
        }
        let first = out.next_batch("p").unwrap();
        assert!(first.len() <= BATCH_BYTES + 4096, "{}", first.len());
        let u = updates(&first);
        // Full UPDATEs: 4096-octet messages of about a thousand prefixes.
        assert!(u.iter().all(|u| u.attributes.med == Some(7)));
        assert!(u.len() * 900 < announced(&u).len() + 900, "{} updates", u.len());
        // No End-of-RIB while anything is pending.
        assert!(u.iter().all(|u| u.end_of_rib_family().is_none()));
        let mut sent = announced(&u).len();
        out.written();
        while let Some(b) = out.next_batch("p") {
            sent += announced(&updates(&b)).len();
            out.written();
        }
        assert_eq!(sent, 200_000);
        assert_eq!(out.len(), 200_000);
    }

    /// Attributes that do not fit a 4096-octet message are not sent, not
    /// recorded as advertised, and counted; an older state of the prefix
    /// is withdrawn; other routes go as usual.
    #[test]
    fn what_cannot_be_encoded_is_not_recorded_as_sent() {
        let mut out = up();
        out.offer(net("10.0.0.0/24"), Some((attrs(1), nh())));
        out.offer(net("10.1.0.0/24"), Some((attrs(1), nh())));
        out.next_batch("p").unwrap();
        out.written();
        let huge = Arc::new(Attributes {
            communities: (0..2000u32).map(bgp_proto::Community).collect(),
            ..(*attrs(1)).clone()
        });
        out.offer(net("10.0.0.0/24"), Some((huge.clone(), nh())));
        out.offer(net("10.2.0.0/24"), Some((huge, nh())));
        out.offer(net("10.3.0.0/24"), Some((attrs(2), nh())));
        let u = updates(&out.next_batch("p").unwrap());
        assert_eq!(announced(&u), [(net("10.3.0.0/24"), Some(2))]);
        let withdrawn: Vec<IpNet> = u.iter().flat_map(|u| u.withdrawals()).map(|n| n.prefix).collect();
        assert_eq!(withdrawn, [net("10.0.0.0/24")]);
        assert_eq!(out.unsendable(), 2);
        let mut sent: Vec<IpNet> = out.advertised().copied().collect();
        sent.sort();
        assert_eq!(sent, [net("10.1.0.0/24"), net("10.3.0.0/24")]);
        // A later state that fits goes, and is no longer counted.
        out.written();
        out.offer(net("10.2.0.0/24"), Some((attrs(3), nh())));
        out.next_batch("p").unwrap();
        assert_eq!(out.unsendable(), 1);
    }

    #[test]
    fn nothing_goes_out_before_sync_or_without_a_session() {
        let mut out = AdjRibOut::default();
        out.session_up(Context::ebgp());
        out.offer(net("10.0.0.0/24"), Some((attrs(1), nh())));
        assert_eq!(out.next_batch("p"), None);
        out.session_down();
        out.start_sync(vec![Family::IPV4_UNICAST]);
        assert_eq!(out.next_batch("p"), None);
    }
}
