//! What a chosen PIN is worth against a thief who holds the dongle: the serial and the OTP
//! secret are readable from the board, so only the PIN's possibilities times the cost of one
//! Argon2id stand between the thief and the keys (the 8-try counter does not apply offline).
//! The cost is measured here, on this computer, at the dongle's own parameters.

use std::time::Duration;

use vbzkey_protocol::kdf::Argon2idParams;
use vbzkey_protocol::wire::{Limits, Pin};

/// The number of PINs of the same length and character classes (an upper bound: a PIN a
/// person chose is easier to guess than a random one of its form).
pub(crate) fn possibilities(pin: &[u8]) -> f64 {
    let (mut digits, mut lower, mut upper, mut other) = (false, false, false, false);
    for &b in pin {
        match b {
            b'0'..=b'9' => digits = true,
            b'a'..=b'z' => lower = true,
            b'A'..=b'Z' => upper = true,
            _ => other = true,
        }
    }
    let alphabet = [(digits, 10.0), (lower, 26.0), (upper, 26.0), (other, 33.0)]
        .iter()
        .filter(|(used, _)| *used)
        .map(|(_, n)| n)
        .sum::<f64>()
        .max(1.0);
    alphabet.powi(pin.len().min(i32::MAX as usize) as i32)
}

/// A duration in words, to the nearest sensible unit.
pub(crate) fn in_words(secs: f64) -> String {
    const UNITS: [(f64, &str); 5] = [
        (365.25 * 86400.0, "years"),
        (86400.0, "days"),
        (3600.0, "hours"),
        (60.0, "minutes"),
        (1.0, "seconds"),
    ];
    if !secs.is_finite() || secs > 1e12 * UNITS[0].0 {
        return "more than a trillion years".into();
    }
    let (unit, name) = UNITS.iter().find(|(u, _)| secs >= *u).copied().unwrap_or((1.0, "seconds"));
    format!("{:.1} {name}", secs / unit)
}

/// Time one Argon2id at `kdf` on this computer's CPU (thread CPU time).
pub(crate) fn guess_cost(kdf: Argon2idParams) -> Option<Duration> {
    let start = vbzkey_os::cputime::thread_cpu_time();
    kdf.stretch(b"a PIN of no consequence", &[0x5a; 16]).ok()?;
    Some(vbzkey_os::cputime::thread_cpu_time() - start)
}

/// What `init` and `set-pin` print about the new staff PIN, at the dongle's cost (`limits`).
pub(crate) fn report(pin: Option<&Pin>, limits: &Limits) -> String {
    let Some(pin) = pin else {
        return "No staff PIN: whoever holds the dongle can open every record.".into();
    };
    let kdf = Argon2idParams { m_kib: limits.kdf_m_kib, t: limits.kdf_t, p: 1 };
    match guess_cost(kdf) {
        Some(cost) => describe(&pin.0, kdf, cost),
        None => "The dongle reported an Argon2id cost this tool cannot measure.".into(),
    }
}

/// The sentence about a PIN of this form at `kdf`, one guess costing `cost`.
pub(crate) fn describe(pin: &[u8], kdf: Argon2idParams, cost: Duration) -> String {
    let n = possibilities(pin);
    let secs = n * cost.as_secs_f64();
    format!(
        "A thief holding this dongle can read its serial and OTP secret and try PINs offline: \
         every PIN of this form ({n:.0} of them) takes one CPU core like this computer's \
         {} ({:.0} ms per guess at Argon2id {} MiB, {} passes), a thousand cores {}. \
         A longer PIN, with letters, raises it; pairing workstations (split custody) is what \
         makes a stolen dongle alone useless.",
        in_words(secs),
        cost.as_secs_f64() * 1000.0,
        kdf.m_kib / 1024,
        kdf.t,
        in_words(secs / 1000.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn possibilities_follow_length_and_alphabet() {
        assert_eq!(possibilities(b"123456"), 1e6);
        assert_eq!(possibilities(b"abcdef"), 26f64.powi(6));
        assert_eq!(possibilities(b"aB3456"), 62f64.powi(6));
        assert_eq!(
            possibilities("ü1234".as_bytes()),
            43f64.powi(6),
            "non-ASCII bytes count as other"
        );
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(in_words(30.0), "30.0 seconds");
        assert_eq!(in_words(7200.0), "2.0 hours");
        assert_eq!(in_words(3.0 * 86400.0), "3.0 days");
        assert_eq!(in_words(f64::INFINITY), "more than a trillion years");
    }

    #[test]
    fn the_cost_is_measured_and_the_sentence_says_it() {
        let kdf = Argon2idParams::TEST_ONLY_WEAK;
        let cost = guess_cost(kdf).unwrap();
        let s = describe(b"123456", kdf, cost);
        assert!(s.contains("1000000 of them") && s.contains("Argon2id 0 MiB, 1 passes"), "{s}");
    }
}
