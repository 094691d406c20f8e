//! What the sessions of a node are expected to have negotiated, asserted
//! from each side's own view: tern's API, FRR's `show bgp neighbors json`,
//! GoBGP's `gobgp neighbor -j`. Shared by the single-node lab
//! (`tests/cilium_frr.rs`) and the cluster (`tests/cluster.rs`).

use serde_json::{Value, json};

use crate::lab::CILIUM_ASN;

/// tern's `upstream` peer (its API object): the router's 4-octet AS,
/// extended next hop, both unicast families.
#[track_caller]
pub fn tern_upstream_session(peer: &Value, router_asn: u32) {
    let n = &peer["negotiated"];
    assert_eq!(peer["state"], "established", "upstream: {peer:#}");
    assert_eq!(n["peer_asn"], router_asn, "upstream: {peer:#}");
    // All ASNs here are above 65535: the OPENs say AS_TRANS and the real
    // ASNs come from the capability.
    assert_eq!(n["four_octet_as"], true, "upstream: {peer:#}");
    assert_eq!(n["extended_next_hop"], true, "upstream: {peer:#}");
    assert_eq!(
        n["families"],
        json!(["ipv4-unicast", "ipv6-unicast"]),
        "upstream: {peer:#}"
    );
}

/// tern's `cilium` peer: Cilium's 4-octet AS, both families, and graceful
/// restart as Cilium sets it up: 120 s with the N bit (RFC 8538), for both
/// families.
#[track_caller]
pub fn tern_cilium_session(peer: &Value) {
    let n = &peer["negotiated"];
    assert_eq!(peer["state"], "established", "cilium: {peer:#}");
    assert_eq!(n["peer_asn"], CILIUM_ASN, "cilium: {peer:#}");
    assert_eq!(n["four_octet_as"], true, "cilium: {peer:#}");
    assert_eq!(
        n["families"],
        json!(["ipv4-unicast", "ipv6-unicast"]),
        "cilium: {peer:#}"
    );
    let gr = &n["graceful_restart"];
    assert_eq!(gr["notification"], true, "cilium: {peer:#}");
    assert_eq!(gr["restart_time"], 120, "cilium: {peer:#}");
    assert_eq!(
        gr["families"],
        json!(["ipv4-unicast", "ipv6-unicast"]),
        "cilium: {peer:#}"
    );
}

/// FRR's neighbour object for a node (`show bgp neighbors ADDR json`):
/// the node's AS, 4-octet AS and extended next hop advertised and
/// received, both families negotiated.
#[track_caller]
pub fn frr_node_session(neighbor: &Value, node_asn: u32) {
    assert_eq!(neighbor["bgpState"], "Established", "FRR: {neighbor:#}");
    assert_eq!(neighbor["remoteAs"], node_asn, "FRR: {neighbor:#}");
    let caps = &neighbor["neighborCapabilities"];
    assert_eq!(caps["4byteAs"], "advertisedAndReceived", "FRR: {caps:#}");
    assert_eq!(caps["extendedNexthop"], "advertisedAndReceived", "FRR: {caps:#}");
    for afi in ["ipv4Unicast", "ipv6Unicast"] {
        assert_eq!(
            caps["multiprotocolExtensions"][afi]["advertisedAndReceived"], true,
            "FRR {afi}: {caps:#}"
        );
    }
}

/// GoBGP's neighbour object for tern (`gobgp neighbor ::1 -j`): tern's AS,
/// and graceful restart advertised and received for both families.
#[track_caller]
pub fn gobgp_tern_session(neighbor: &Value, tern_asn: u32) {
    assert_eq!(neighbor["state"]["peer_asn"], tern_asn, "GoBGP: {neighbor:#}");
    let families = neighbor["afi_safis"].as_array().cloned().unwrap_or_default();
    assert_eq!(families.len(), 2, "GoBGP: {neighbor:#}");
    for f in &families {
        let st = &f["mp_graceful_restart"]["state"];
        assert!(
            st["advertised"] == true && st["received"] == true,
            "GoBGP: graceful restart not negotiated for {}: {st:#}",
            f["config"]["family"]
        );
    }
}
