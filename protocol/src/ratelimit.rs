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

    /// A bucket holding `tokens` (at most `capacity`) at time `now_ms`: the dongle restarts
    /// with the level its audit log says it had, so a restart grants no fresh burst.
    pub fn with_tokens(capacity: u32, per_minute: u32, tokens: u32, now_ms: u64) -> Self {
        let mut b = TokenBucket::new(capacity, per_minute, now_ms);
        b.tokens_milli = (u64::from(tokens) * MILLI).min(b.capacity_milli);
        b
    }

    /// Take up to `n` tokens, as many as there are: for replaying use that already happened.
    pub fn drain(&mut self, n: u32, now_ms: u64) {
        self.refill(now_ms);
        self.tokens_milli = self.tokens_milli.saturating_sub(u64::from(n) * MILLI);
    }

    /// Whole tokens held at `now_ms`.
    pub fn level(&mut self, now_ms: u64) -> u32 {
        self.refill(now_ms);
        u32::try_from(self.tokens_milli / MILLI).unwrap_or(u32::MAX)
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

    #[test]
    fn a_replayed_bucket_restarts_at_its_level() {
        let mut b = TokenBucket::new(300, 600, 0);
        b.drain(250, 1_000);
        b.drain(100, 2_000); // only 60 were left (+10 refilled): it empties
        assert_eq!(b.level(2_000), 0);
        assert_eq!(b.level(3_000), 10, "ten a second");
        let mut restarted = TokenBucket::with_tokens(300, 600, b.level(3_000), 50);
        assert_eq!(restarted.take(11, 50), Err(100));
        assert_eq!(restarted.take(10, 50), Ok(()));
        assert_eq!(TokenBucket::with_tokens(5, 60, 99, 0).level(0), 5);
    }
}
