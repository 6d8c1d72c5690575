//! `Share::from_text`: recovery share lines as people type them back in.
//!
//! Checked: any text gives a share or an error, never a panic; a parsed share prints back
//! exactly as read (trimmed); heap use stays within a few times the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vbzkey_fuzz::alloc_meter::{assert_bounded, peak_during};
use vbzkey_fuzz::count_allocations;
use vbzkey_protocol::share::{MAX_SHARE_DATA, MAX_SHARE_TEXT, Share};

count_allocations!();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (result, peak) = peak_during(|| Share::from_text(text).map(|s| (s.to_text(), s)));
    if let Ok((printed, share)) = result {
        assert_eq!(printed.as_str(), text.trim(), "one printed form per share");
        assert!(printed.len() <= MAX_SHARE_TEXT);
        assert!((1..=MAX_SHARE_DATA).contains(&share.data.len()));
        assert!(share.threshold >= 2 && share.index >= 1 && share.index <= share.count);
    }
    assert_bounded("share", data.len().min(MAX_SHARE_TEXT), peak, 8, 4 * 1024);
});
