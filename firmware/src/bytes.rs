//! Reading fields from bytes that came from outside (the SD card, a USB endpoint), in order,
//! failing at the end of the input instead of panicking: the firmware's parsers use this, not
//! indexing (the crate denies `clippy::indexing_slicing`).

/// A cursor over bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    /// The next `n` bytes, or `None` if fewer are left.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    /// The next byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        let [b] = self.array::<1>()?;
        Some(b)
    }

    /// The next four bytes, big-endian.
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// Everything not read yet.
    pub(crate) fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// `bytes` split into its first `len - n` bytes and its last `n`, or `None` if it is shorter.
pub(crate) fn split_tail(bytes: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    bytes.split_at_checked(bytes.len().checked_sub(n)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_in_order_and_the_end_is_an_answer_not_a_panic() {
        let mut r = Reader::new(&[1, 0, 0, 0, 2, 9, 8]);
        assert_eq!((r.u8(), r.u32(), r.array::<1>()), (Some(1), Some(2), Some([9])));
        assert_eq!(r.u32(), None);
        assert_eq!(r.rest(), [8]);
        assert_eq!(split_tail(&[1, 2, 3], 1), Some((&[1, 2][..], &[3][..])));
        assert_eq!(split_tail(&[1], 2), None);
    }
}
