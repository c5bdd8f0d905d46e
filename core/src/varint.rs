//! Bounded variable-length integers: unsigned LEB128, canonical, with a per-field maximum.
//!
//! Every length or id inside a frame is a varint with a hard upper bound, checked while
//! decoding, so a peer can never make the decoder read past its bound or accept two encodings
//! of one value (non-minimal encodings are refused: the wire form of a frame is unique).

use alloc::vec::Vec;

/// Longest encoding of a `u64` (10 groups of 7 bits).
pub(crate) const MAX_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The input ended inside the varint.
    Truncated,
    /// The value exceeds the field's maximum (or does not fit in 64 bits).
    TooLarge,
    /// A longer encoding than needed: a trailing zero group.
    NotMinimal,
}

/// Appends `value` to `out`.
pub(crate) fn encode(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value & 0x7F) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Bytes [`encode`] writes for `value`.
pub(crate) fn encoded_len(value: u64) -> usize {
    let bits = 64usize
        .saturating_sub(value.leading_zeros() as usize)
        .max(1);
    bits.div_ceil(7)
}

/// Reads a varint from the front of `input`, advancing it, and checks it against `max`.
pub(crate) fn decode(input: &mut &[u8], max: u64) -> Result<u64, VarintError> {
    let mut value: u64 = 0;
    for (index, &byte) in input.iter().enumerate().take(MAX_LEN) {
        let group = u64::from(byte & 0x7F);
        let shift = index.saturating_mul(7);
        // The tenth group may only hold the top bit of a u64.
        if shift == 63 && group > 1 {
            return Err(VarintError::TooLarge);
        }
        value |= group << shift;
        if byte & 0x80 == 0 {
            if byte == 0 && index > 0 {
                return Err(VarintError::NotMinimal);
            }
            if value > max {
                return Err(VarintError::TooLarge);
            }
            *input = input.get(index.saturating_add(1)..).unwrap_or_default();
            return Ok(value);
        }
        // Stop early once the value can only exceed the bound.
        if value > max {
            return Err(VarintError::TooLarge);
        }
    }
    if input.len() >= MAX_LEN {
        Err(VarintError::TooLarge)
    } else {
        Err(VarintError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_at_every_boundary() {
        for value in [
            0u64,
            1,
            127,
            128,
            16383,
            16384,
            65535,
            u32::MAX as u64,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            encode(value, &mut out);
            assert_eq!(out.len(), encoded_len(value), "{value}");
            let mut input: &[u8] = &out;
            assert_eq!(decode(&mut input, u64::MAX), Ok(value));
            assert!(input.is_empty());
        }
    }

    #[test]
    fn bounds_truncation_and_non_minimal_forms_are_errors() {
        let mut input: &[u8] = &[0x80, 0x02];
        assert_eq!(decode(&mut input, 255), Err(VarintError::TooLarge));
        let mut input: &[u8] = &[0x80];
        assert_eq!(decode(&mut input, 255), Err(VarintError::Truncated));
        let mut input: &[u8] = &[];
        assert_eq!(decode(&mut input, 255), Err(VarintError::Truncated));
        let mut input: &[u8] = &[0x81, 0x00];
        assert_eq!(decode(&mut input, 255), Err(VarintError::NotMinimal));
        let mut input: &[u8] = &[0xFF; 11];
        assert_eq!(decode(&mut input, u64::MAX), Err(VarintError::TooLarge));
        let mut input: &[u8] = &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02];
        assert_eq!(decode(&mut input, u64::MAX), Err(VarintError::TooLarge));
        // A failed decode leaves the input where it was.
        assert_eq!(input.len(), 10);
    }
}
