//! The one DNS exchange a probe needs (RFC 1035 §4.1): a recursive query
//! for a name's A records, and the header of the answer. Pure.

/// Response codes (RFC 1035 §4.1.1), by name for messages.
const RCODES: [&str; 6] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

/// A query for `name`'s A records with the RD bit, as bytes.
pub fn query(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(format!("invalid query name {name:?}: 1 to 253 characters"));
    }
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    // Flags: RD. One question, nothing else.
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "invalid query name {name:?}: each label is 1 to 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "invalid query name {name:?}: letters, digits, - and _ only"
            ));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    // Root, QTYPE A, QCLASS IN.
    out.extend_from_slice(&[0, 0, 1, 0, 1]);
    Ok(out)
}

/// What an answer to query `id` says.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Not an answer to this query (another id, or not a response).
    Other,
    /// NOERROR, with this many answer records.
    Ok(u16),
    /// Any other response code, by name.
    Error(String),
}

pub fn answer(id: u16, msg: &[u8]) -> Answer {
    if msg.len() < 12 || msg[..2] != id.to_be_bytes() || msg[2] & 0x80 == 0 {
        return Answer::Other;
    }
    let rcode = msg[3] & 0x0f;
    let count = u16::from_be_bytes([msg[6], msg[7]]);
    match rcode {
        0 => Answer::Ok(count),
        r => Answer::Error(
            RCODES
                .get(usize::from(r))
                .map_or_else(|| format!("RCODE {r}"), |s| (*s).to_owned()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_is_a_header_and_one_question() {
        let q = query(0x1234, "kube-dns.kube-system.svc.").unwrap();
        assert_eq!(&q[..12], &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            &q[12..],
            b"\x08kube-dns\x0bkube-system\x03svc\x00\x00\x01\x00\x01"
        );
        assert!(query(1, "").is_err());
        assert!(query(1, "a..b").is_err());
        assert!(query(1, &"x".repeat(64)).is_err());
        assert!(query(1, "bad name").is_err());
    }

    #[test]
    fn answers_are_matched_by_id_and_read_for_their_code() {
        let mut a = query(7, "example").unwrap();
        assert_eq!(answer(7, &a), Answer::Other, "a query is not an answer");
        a[2] |= 0x80;
        a[7] = 2;
        assert_eq!(answer(7, &a), Answer::Ok(2));
        assert_eq!(answer(8, &a), Answer::Other);
        a[3] = 3;
        assert_eq!(answer(7, &a), Answer::Error("NXDOMAIN".into()));
        a[3] = 9;
        assert_eq!(answer(7, &a), Answer::Error("RCODE 9".into()));
        assert_eq!(answer(7, &a[..5]), Answer::Other);
    }
}
