//! Small parsing helpers shared by the decoders. Parsers use nom with the
//! unit error type: each caller maps a failure to the RFC error it means, so
//! no error value is ever built on the happy path.

use nom::Parser;

pub(crate) type PResult<'a, T> = nom::IResult<&'a [u8], T, ()>;

#[inline]
pub(crate) fn take_bytes(input: &[u8], n: usize) -> PResult<'_, &[u8]> {
    nom::bytes::complete::take(n).parse(input)
}

#[inline]
pub(crate) fn u8_(input: &[u8]) -> PResult<'_, u8> {
    nom::number::complete::be_u8(input)
}

#[inline]
pub(crate) fn u16_(input: &[u8]) -> PResult<'_, u16> {
    nom::number::complete::be_u16(input)
}

#[inline]
pub(crate) fn u24_(input: &[u8]) -> PResult<'_, u32> {
    nom::number::complete::be_u24(input)
}

#[inline]
pub(crate) fn u32_(input: &[u8]) -> PResult<'_, u32> {
    nom::number::complete::be_u32(input)
}

#[inline]
pub(crate) fn ipv4(input: &[u8]) -> PResult<'_, std::net::Ipv4Addr> {
    let (input, v) = u32_(input)?;
    Ok((input, std::net::Ipv4Addr::from(v)))
}

#[inline]
pub(crate) fn ipv6(input: &[u8]) -> PResult<'_, std::net::Ipv6Addr> {
    let (input, v) = nom::number::complete::be_u128(input)?;
    Ok((input, std::net::Ipv6Addr::from(v)))
}

/// Splits `input` into `len`-octet chunks, failing if it is not a multiple.
pub(crate) fn exact_chunks(input: &[u8], len: usize) -> Option<std::slice::ChunksExact<'_, u8>> {
    input.len().is_multiple_of(len).then(|| input.chunks_exact(len))
}
