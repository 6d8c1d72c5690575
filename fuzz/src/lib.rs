//! Shared pieces of the fuzz targets: a counting allocator that measures the peak heap use of
//! one input, and the fixed keys the targets seal and open with.

pub mod alloc_meter;

use vbzkey_protocol::SecretKey;

/// The test kit's recipient key (`protocol/tests/vectors/records-v1.json`): seed records from
/// the kit open with it.
pub fn kit_key() -> SecretKey {
    SecretKey::derive(b"vbzkey test kit recipient key v1")
}

/// The kit's context for its first record.
pub const KIT_CONTEXT: &[u8] = b"cust_cards/1001/card_number";

/// The OS RNG, as the protocol's `session::Fill`.
pub fn os_fill(b: &mut [u8]) -> bool {
    getrandom::fill(b).is_ok()
}
