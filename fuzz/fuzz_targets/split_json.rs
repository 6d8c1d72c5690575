//! The clear-field split (`split::split`) on arbitrary customer JSON, as the CLI's
//! `seal-customer` and the store's checkout hand it over.
//!
//! Checked: JSON that parses gives a split or a coded error, never a panic; the split is
//! deterministic; every sealed value's context is `table/id/field` with the input's id; no
//! clear field derived from a sealed value holds all of it (a card's or account's clear part
//! is its last four characters only; a street number is never the whole address).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbzkey_fuzz::alloc_meter::{assert_bounded, peak_during};
use vbzkey_fuzz::count_allocations;
use vbzkey_protocol::split::{self, CustomerInput};

count_allocations!();

fuzz_target!(|data: &[u8]| {
    let ((), peak) = peak_during(|| {
        let Ok(input) = serde_json::from_slice::<CustomerInput>(data) else { return };
        let result = split::split(&input);
        let Ok(out) = result else {
            assert!(!result.unwrap_err().code().is_empty());
            return;
        };
        let again = split::split(&input).expect("deterministic");
        assert_eq!(again.clear, out.clear);
        // The clear fields derived from a sealed value (not those the customer typed twice,
        // like a postal code also written as an address line) never hold the whole value.
        let c = &out.clear;
        let derived = [&c.card_last4, &c.bank_last4, &c.street_number, &c.phone_area_code];
        for f in &out.sealed {
            assert_eq!(f.context, split::context(f.table, &input.id, f.field));
            for d in derived.iter().copied().flatten() {
                assert!(!d.contains(f.value.as_str()), "{} is in clear: {d}", f.field);
            }
        }
        for last4 in [&out.clear.card_last4, &out.clear.bank_last4].into_iter().flatten() {
            assert!(last4.chars().count() <= 4);
        }
    });
    assert_bounded("split", data.len(), peak, 32, 64 * 1024);
});
