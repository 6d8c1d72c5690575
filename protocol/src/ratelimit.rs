//! A token bucket on the number of records opened: bounds how fast a compromised workstation
//! can pull plaintext out of an unlocked key, whichever method holds it (the dongle, or the
//! bridge for the passphrase and key-file methods). Time is passed in, so it stays `no_std`.

/// Tokens are kept in thousandths so the refill is exact with integer arithmetic.
const MILLI: u64 = 1000;

/// `capacity` tokens, refilled at `per_minute` tokens per minute; time is passed in.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity_milli: u64,
    per_minute: u64,
    tokens_milli: u64,
    last_ms: u64,
}

impl TokenBucket {
    /// A full bucket at time `now_ms`.
    pub fn new(capacity: u32, per_minute: u32, now_ms: u64) -> Self {
        let capacity_milli = u64::from(capacity) * MILLI;
        TokenBucket {
            capacity_milli,
            per_minute: u64::from(per_minute),
            tokens_milli: capacity_milli,
            last_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: u64) {
        // A clock that goes backwards (it should not: it is monotonic) adds nothing.
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        // per_minute tokens per 60 000 ms = per_minute milli-tokens per 60 ms.
        let add = elapsed.saturating_mul(self.per_minute) / 60;
        self.tokens_milli = (self.tokens_milli.saturating_add(add)).min(self.capacity_milli);
    }

    /// Take `n` tokens, or none at all and say how long until there would be enough.
    pub fn take(&mut self, n: u32, now_ms: u64) -> Result<(), u32> {
        self.refill(now_ms);
        let need = u64::from(n) * MILLI;
        if need > self.capacity_milli {
            // Can never be satisfied; the caller caps batches below the burst size.
            return Err(u32::MAX);
        }
        if self.tokens_milli >= need {
            self.tokens_milli -= need;
            return Ok(());
        }
        let missing = need - self.tokens_milli;
        let wait_ms =
            if self.per_minute == 0 { u64::MAX } else { (missing * 60).div_ceil(self.per_minute) };
        Err(wait_ms.min(u64::from(u32::MAX)) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_at_the_configured_rate() {
        let mut b = TokenBucket::new(100, 600, 0);
        assert_eq!(b.take(100, 0), Ok(()));
        // 600/min = 10/s: one token per 100 ms.
        assert_eq!(b.take(1, 0), Err(100));
        assert_eq!(b.take(1, 99), Err(1));
        assert_eq!(b.take(1, 100), Ok(()));
        assert_eq!(b.take(10, 1100), Ok(()));
        assert_eq!(b.take(1, 1100), Err(100));
        // Never more than the capacity, however long it rests.
        assert_eq!(b.take(100, 10_000_000), Ok(()));
        assert!(b.take(1, 10_000_000).is_err());
    }

    #[test]
    fn oversized_requests_and_time_going_backwards() {
        let mut b = TokenBucket::new(10, 60, 1000);
        assert_eq!(b.take(11, 1000), Err(u32::MAX));
        assert_eq!(b.take(10, 500), Ok(()));
        assert!(b.take(1, 0).is_err());
    }
}
