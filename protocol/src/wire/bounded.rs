//! Decode-time bounds for the variable-length fields of the wire messages.
//!
//! A frame is at most `MAX_FRAME_PAYLOAD` bytes, but the frame size alone does not bound what
//! decoding it costs: postcard encodes an empty `SealedItem` in 2 bytes and serde makes a
//! 48-byte struct of it, so a 2 MiB frame of empty items used to become about 50 MB of
//! vectors before anything looked at the count. Every sequence, byte field and string in
//! `Request` and `Response` is therefore read through one of these functions
//! (`#[serde(deserialize_with = …)]`): a length above the field's bound is refused as soon as
//! postcard has read it, before one element is decoded or allocated, and the whole message is
//! then `WireError::Malformed`. The bounds are the largest values a valid message can carry
//! (docs/PROTOCOL.md, "Limits"); semantic checks with their own errors (a PIN too short, a
//! label with a control character, an empty batch) stay where they were.
//!
//! The encoding is unchanged: these read exactly what the derived implementations read.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use zeroize::Zeroizing;

/// The most elements a sequence may announce, and room for them: postcard announces the
/// length first, other formats may not, so elements are also counted as they come.
fn admit<E: de::Error>(
    announced: Option<usize>,
    max: usize,
    what: &dyn de::Expected,
) -> Result<usize, E> {
    match announced {
        Some(n) if n > max => Err(E::invalid_length(n, what)),
        Some(n) => Ok(n),
        None => Ok(0),
    }
}

struct SeqVisitor<T, const N: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for SeqVisitor<T, N> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a sequence of at most {N} elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut out = Vec::with_capacity(admit(seq.size_hint(), N, &self)?);
        while let Some(x) = seq.next_element()? {
            if out.len() == N {
                return Err(de::Error::invalid_length(N + 1, &self));
            }
            out.push(x);
        }
        Ok(out)
    }
}

/// A sequence of at most `N` elements (a batch, a list of shares, keys or pairings; bytes).
pub(crate) fn seq<'de, const N: usize, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_seq(SeqVisitor::<T, N>(PhantomData))
}

struct SecretVisitor<const N: usize>;

impl<'de, const N: usize> Visitor<'de> for SecretVisitor<N> {
    type Value = Zeroizing<Vec<u8>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at most {N} bytes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // Built in place, in a buffer sized once: no copy of a secret is left behind by a
        // reallocation, and a half-read one is wiped when an error drops it.
        let mut out = Zeroizing::new(Vec::with_capacity(admit(seq.size_hint(), N, &self)?));
        while let Some(b) = seq.next_element::<u8>()? {
            if out.len() == N {
                return Err(de::Error::invalid_length(N + 1, &self));
            }
            out.push(b);
        }
        Ok(out)
    }
}

/// Secret bytes (a PIN, a plaintext, a share's data), at most `N`, wiped on drop.
pub(crate) fn secret<'de, const N: usize, D: Deserializer<'de>>(
    d: D,
) -> Result<Zeroizing<Vec<u8>>, D::Error> {
    d.deserialize_seq(SecretVisitor::<N>)
}

struct StrVisitor<const N: usize>;

impl<const N: usize> Visitor<'_> for StrVisitor<N> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a string of at most {N} bytes")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<String, E> {
        if s.len() > N {
            return Err(E::invalid_length(s.len(), &self));
        }
        Ok(String::from(s))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<String, E> {
        if s.len() > N {
            return Err(E::invalid_length(s.len(), &self));
        }
        Ok(s)
    }
}

/// A string of at most `N` bytes of UTF-8 (postcard hands over the bytes it already holds, so
/// the check comes before the copy).
pub(crate) fn string<'de, const N: usize, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_string(StrVisitor::<N>)
}

/// `Response::Rewrapped`'s items: at most `MAX_BATCH`, each a record of at most
/// `MAX_RECORD_LEN` bytes or an item error.
pub(crate) fn rewrapped<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Vec<Result<Vec<u8>, super::ItemError>>, D::Error> {
    /// One re-sealed record, bounded.
    #[derive(serde::Deserialize)]
    struct Record(
        #[serde(deserialize_with = "seq::<{ crate::record::MAX_RECORD_LEN }, _, _>")] Vec<u8>,
    );
    let items: Vec<Result<Record, super::ItemError>> = seq::<{ super::MAX_BATCH }, _, _>(d)?;
    Ok(items.into_iter().map(|r| r.map(|Record(bytes)| bytes)).collect())
}

#[cfg(test)]
mod tests;
