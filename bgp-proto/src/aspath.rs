//! AS_PATH and AS4_PATH (RFC 4271 §4.3, RFC 5065, RFC 6793).
//!
//! Paths are always held with 4-octet AS numbers. Towards a 2-octet peer the
//! encoder writes AS_TRANS in AS_PATH and adds AS4_PATH; from a 2-octet peer
//! the two are merged back (RFC 6793 §4.2.3).

use std::fmt;

use bytes::BufMut;

use crate::wire::{u8_, u16_, u32_};

/// AS_TRANS (RFC 6793 §9): stands in for a 4-octet AS towards old speakers.
pub const AS_TRANS: u32 = 23456;

/// The most AS numbers one segment can hold (its count is one octet).
const MAX_SEGMENT_ASNS: usize = 255;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SegmentKind {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

impl SegmentKind {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Set),
            2 => Some(Self::Sequence),
            3 => Some(Self::ConfedSequence),
            4 => Some(Self::ConfedSet),
            _ => None,
        }
    }

    pub fn is_confed(self) -> bool {
        matches!(self, Self::ConfedSequence | Self::ConfedSet)
    }

    /// How much a segment of this kind with `n` ASes adds to the path
    /// length used in best-path selection (RFC 4271 §9.1.2.2 a, RFC 5065
    /// §5.3): a set counts one, confederation segments nothing.
    fn path_len(self, n: usize) -> usize {
        match self {
            Self::Sequence => n,
            Self::Set => usize::from(n > 0),
            Self::ConfedSequence | Self::ConfedSet => 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsSegment {
    pub kind: SegmentKind,
    pub asns: Vec<u32>,
}

impl AsSegment {
    pub fn sequence(asns: impl Into<Vec<u32>>) -> Self {
        AsSegment {
            kind: SegmentKind::Sequence,
            asns: asns.into(),
        }
    }

    pub fn set(asns: impl Into<Vec<u32>>) -> Self {
        AsSegment {
            kind: SegmentKind::Set,
            asns: asns.into(),
        }
    }
}

/// An AS path as a list of segments, 4-octet AS numbers throughout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

/// Why an AS_PATH or AS4_PATH value is malformed (RFC 7606 §7.2,
/// RFC 6793 §6).
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsPathError {
    #[error("unknown segment type {0}")]
    UnknownSegmentType(u8),
    #[error("segment of zero length")]
    EmptySegment,
    #[error("segment overruns the attribute")]
    Overrun,
}

impl AsPath {
    pub fn new() -> Self {
        AsPath::default()
    }

    /// A path of one AS_SEQUENCE.
    pub fn from_sequence(asns: impl Into<Vec<u32>>) -> Self {
        let asns = asns.into();
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment::sequence(asns)],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.asns.is_empty())
    }

    /// Path length for best-path selection (RFC 4271 §9.1.2.2 a).
    pub fn path_len(&self) -> usize {
        self.segments.iter().map(|s| s.kind.path_len(s.asns.len())).sum()
    }

    /// The AS of the neighbour that sent the route: the first AS of a
    /// leading AS_SEQUENCE (RFC 4271 §9.1.2.2 c).
    pub fn neighbor_asn(&self) -> Option<u32> {
        let first = self.segments.iter().find(|s| !s.kind.is_confed())?;
        (first.kind == SegmentKind::Sequence)
            .then(|| first.asns.first().copied())
            .flatten()
    }

    /// The AS that originated the route: the last AS of a final
    /// AS_SEQUENCE; none if the path ends in a set.
    pub fn origin_asn(&self) -> Option<u32> {
        let last = self.segments.iter().rev().find(|s| !s.kind.is_confed())?;
        (last.kind == SegmentKind::Sequence)
            .then(|| last.asns.last().copied())
            .flatten()
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// All AS numbers, in order, confederation members included.
    pub fn asns(&self) -> impl Iterator<Item = u32> + '_ {
        self.segments.iter().flat_map(|s| s.asns.iter().copied())
    }

    /// Prepends `asn` `count` times, as a speaker does when it sends a route
    /// to an external peer (RFC 4271 §5.1.2).
    pub fn prepend(&mut self, asn: u32, count: usize) {
        if count == 0 {
            return;
        }
        match self.segments.first_mut() {
            Some(first) if first.kind == SegmentKind::Sequence => {
                first.asns.splice(0..0, std::iter::repeat_n(asn, count));
            }
            _ => self.segments.insert(0, AsSegment::sequence(vec![asn; count])),
        }
    }

    /// Decodes an AS_PATH (`asn_len` 2 or 4) or AS4_PATH (`asn_len` 4).
    pub fn decode(mut input: &[u8], asn_len: usize) -> Result<Self, AsPathError> {
        let mut segments = Vec::new();
        while !input.is_empty() {
            let (rest, kind) = u8_(input).map_err(|_| AsPathError::Overrun)?;
            let kind = SegmentKind::from_u8(kind).ok_or(AsPathError::UnknownSegmentType(kind))?;
            let (rest, count) = u8_(rest).map_err(|_| AsPathError::Overrun)?;
            if count == 0 {
                return Err(AsPathError::EmptySegment);
            }
            let len = usize::from(count) * asn_len;
            let body = rest.get(..len).ok_or(AsPathError::Overrun)?;
            input = &rest[len..];
            let asns = if asn_len == 4 {
                body.chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            } else {
                body.chunks_exact(2)
                    .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                    .collect()
            };
            segments.push(AsSegment { kind, asns });
        }
        Ok(AsPath { segments })
    }

    /// Length of the encoded value with `asn_len`-octet AS numbers.
    pub fn encoded_len(&self, asn_len: usize) -> usize {
        self.segments
            .iter()
            .filter(|s| !s.asns.is_empty())
            .map(|s| {
                let chunks = s.asns.len().div_ceil(MAX_SEGMENT_ASNS);
                chunks * 2 + s.asns.len() * asn_len
            })
            .sum()
    }

    /// Encodes the value with 4-octet AS numbers, or 2-octet ones with
    /// AS_TRANS in place of any AS above 65535. Segments longer than 255
    /// ASes are split; empty segments are not written.
    pub fn encode(&self, asn_len: usize, buf: &mut impl BufMut) {
        for seg in &self.segments {
            for chunk in seg.asns.chunks(MAX_SEGMENT_ASNS) {
                buf.put_u8(seg.kind as u8);
                // A chunk holds at most 255 ASes.
                buf.put_u8(chunk.len() as u8);
                for &asn in chunk {
                    if asn_len == 4 {
                        buf.put_u32(asn);
                    } else {
                        buf.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS as u16));
                    }
                }
            }
        }
    }

    /// Whether a 2-octet peer needs AS4_PATH to learn this path
    /// (RFC 6793 §4.2.2): some AS does not fit in two octets.
    pub fn needs_as4_path(&self) -> bool {
        self.asns().any(|asn| asn > u32::from(u16::MAX))
    }

    /// The AS4_PATH to send beside a 2-octet AS_PATH: the path without
    /// confederation segments (RFC 6793 §3).
    pub fn as4_path(&self) -> AsPath {
        AsPath {
            segments: self
                .segments
                .iter()
                .filter(|s| !s.kind.is_confed())
                .cloned()
                .collect(),
        }
    }

    /// Rebuilds the true path from an AS_PATH received from a 2-octet
    /// speaker and its AS4_PATH (RFC 6793 §4.2.3).
    ///
    /// If AS_PATH has fewer ASes than AS4_PATH the AS4_PATH is ignored.
    /// Otherwise the leading ASes of AS_PATH that AS4_PATH lacks (added by
    /// 2-octet speakers on the way) are kept, followed by AS4_PATH.
    pub fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let as4 = as4.as4_path();
        let count = |p: &AsPath| {
            p.segments
                .iter()
                .map(|s| s.kind.path_len(s.asns.len()))
                .sum::<usize>()
        };
        let (n_old, n_new) = (count(self), count(&as4));
        if n_old < n_new {
            return self.clone();
        }
        let mut keep = n_old - n_new;
        let mut segments = Vec::new();
        for seg in &self.segments {
            match seg.kind {
                SegmentKind::Sequence if keep > 0 => {
                    let take = keep.min(seg.asns.len());
                    segments.push(AsSegment::sequence(&seg.asns[..take]));
                    keep -= take;
                }
                SegmentKind::Set if keep > 0 => {
                    segments.push(seg.clone());
                    keep -= 1;
                }
                // Confederation segments never appear in AS4_PATH; those of
                // AS_PATH are kept where they stand.
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet => segments.push(seg.clone()),
                SegmentKind::Sequence | SegmentKind::Set => {}
            }
        }
        // Join the kept sequence with a leading AS4_PATH sequence, so the
        // result reads as one path, as long as it fits one segment.
        let mut rest = as4.segments.into_iter();
        if let Some(first) = rest.next() {
            match segments.last_mut() {
                Some(last)
                    if last.kind == SegmentKind::Sequence
                        && first.kind == SegmentKind::Sequence
                        && last.asns.len() + first.asns.len() <= MAX_SEGMENT_ASNS =>
                {
                    last.asns.extend(first.asns);
                }
                _ => segments.push(first),
            }
        }
        segments.extend(rest);
        AsPath { segments }
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let (open, close) = match seg.kind {
                SegmentKind::Sequence => ("", ""),
                SegmentKind::Set => ("{", "}"),
                SegmentKind::ConfedSequence => ("(", ")"),
                SegmentKind::ConfedSet => ("[", "]"),
            };
            f.write_str(open)?;
            for (i, asn) in seg.asns.iter().enumerate() {
                if i > 0 {
                    f.write_str(
                        if seg.kind == SegmentKind::Sequence || seg.kind == SegmentKind::ConfedSequence {
                            " "
                        } else {
                            ","
                        },
                    )?;
                }
                write!(f, "{asn}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}

/// Reads a 2-octet or 4-octet AS number.
pub(crate) fn asn(input: &[u8], asn_len: usize) -> crate::wire::PResult<'_, u32> {
    if asn_len == 4 {
        u32_(input)
    } else {
        let (rest, v) = u16_(input)?;
        Ok((rest, u32::from(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(p: &AsPath, asn_len: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        p.encode(asn_len, &mut buf);
        assert_eq!(buf.len(), p.encoded_len(asn_len));
        buf
    }

    #[test]
    fn four_octet_round_trip() {
        let p = AsPath {
            segments: vec![AsSegment::sequence([4210101021, 65001]), AsSegment::set([1, 2])],
        };
        let bytes = encode(&p, 4);
        assert_eq!(bytes[..2], [2, 2]);
        assert_eq!(AsPath::decode(&bytes, 4).unwrap(), p);
        assert_eq!(p.to_string(), "4210101021 65001 {1,2}");
    }

    #[test]
    fn two_octet_encoding_uses_as_trans() {
        let p = AsPath::from_sequence([4210101021, 65001]);
        assert_eq!(encode(&p, 2), [2, 2, 0x5b, 0xa0, 0xfd, 0xe9]);
        assert!(p.needs_as4_path());
        assert!(!AsPath::from_sequence([65001]).needs_as4_path());
    }

    #[test]
    fn long_sequences_are_split() {
        let p = AsPath::from_sequence((0..300).collect::<Vec<u32>>());
        let bytes = encode(&p, 4);
        let back = AsPath::decode(&bytes, 4).unwrap();
        assert_eq!(back.segments.len(), 2);
        assert_eq!(back.segments[0].asns.len(), 255);
        assert_eq!(back.path_len(), 300);
    }

    #[test]
    fn malformed_paths() {
        assert_eq!(
            AsPath::decode(&[5, 1, 0, 1], 2),
            Err(AsPathError::UnknownSegmentType(5))
        );
        assert_eq!(AsPath::decode(&[2, 0], 2), Err(AsPathError::EmptySegment));
        assert_eq!(AsPath::decode(&[2, 2, 0, 1], 2), Err(AsPathError::Overrun));
        assert_eq!(AsPath::decode(&[2], 4), Err(AsPathError::Overrun));
    }

    #[test]
    fn best_path_length_rules() {
        let p = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentKind::ConfedSequence,
                    asns: vec![64512, 64513],
                },
                AsSegment::sequence([1, 2, 3]),
                AsSegment::set([4, 5, 6]),
            ],
        };
        assert_eq!(p.path_len(), 4);
        assert_eq!(p.neighbor_asn(), Some(1));
        assert_eq!(p.origin_asn(), None);
        assert_eq!(AsPath::from_sequence([7, 8]).origin_asn(), Some(8));
    }

    #[test]
    fn prepend() {
        let mut p = AsPath::new();
        p.prepend(65000, 1);
        assert_eq!(p, AsPath::from_sequence([65000]));
        p.prepend(65001, 2);
        assert_eq!(p, AsPath::from_sequence([65001, 65001, 65000]));
        let mut p = AsPath {
            segments: vec![AsSegment::set([1, 2])],
        };
        p.prepend(3, 1);
        assert_eq!(p.to_string(), "3 {1,2}");
    }

    #[test]
    fn merge_as4_rfc6793() {
        // A 2-octet speaker (65010) prepended itself to a path whose true
        // form is 4210101021 4200001000.
        let old = AsPath::from_sequence([65010, AS_TRANS, AS_TRANS]);
        let as4 = AsPath::from_sequence([4210101021, 4200001000]);
        assert_eq!(
            old.merge_as4(&as4),
            AsPath::from_sequence([65010, 4210101021, 4200001000])
        );
        // AS4_PATH longer than AS_PATH: ignore it.
        let old = AsPath::from_sequence([AS_TRANS]);
        assert_eq!(old.merge_as4(&as4), old);
        // Confederation segments in AS4_PATH are dropped; sets count one.
        let old = AsPath {
            segments: vec![AsSegment::sequence([1, AS_TRANS]), AsSegment::set([2, 3])],
        };
        let as4 = AsPath {
            segments: vec![
                AsSegment {
                    kind: SegmentKind::ConfedSequence,
                    asns: vec![64512],
                },
                AsSegment::sequence([4200000000]),
                AsSegment::set([2, 3]),
            ],
        };
        let merged = old.merge_as4(&as4);
        assert_eq!(merged.to_string(), "1 4200000000 {2,3}");
    }
}
