//! Transports: thin loops that move frames between a byte channel and the [`Dongle`].
//!
//! [`Dongle`]: crate::dongle::Dongle

pub mod ffs;
pub mod socket;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::dongle::{Dongle, Now, Platform};
use crate::storage::Storage;

/// The real clock: monotonic since start, plus wall-clock seconds for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { start: Instant::now() }
    }
}

impl Clock {
    /// The time now.
    pub fn now(&self) -> Now {
        Now {
            mono_ms: self.start.elapsed().as_millis() as u64,
            unix_secs: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }
}

/// A dongle shared by the connections of a transport (one request at a time).
pub struct Shared<S: Storage, P: Platform> {
    dongle: Mutex<Dongle<S, P>>,
    clock: Clock,
}

impl<S: Storage, P: Platform> Shared<S, P> {
    /// Share `dongle`.
    pub fn new(dongle: Dongle<S, P>, clock: Clock) -> Arc<Self> {
        Arc::new(Shared { dongle: Mutex::new(dongle), clock })
    }

    fn lock(&self) -> MutexGuard<'_, Dongle<S, P>> {
        // A panic while holding the lock cannot leave the dongle half-updated in a way that
        // matters: every state change is written to storage before it is applied.
        self.dongle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Handle one frame payload; returns the full answer frame.
    pub fn handle(&self, payload: &[u8], host: &str) -> Vec<u8> {
        let now = self.clock.now();
        self.lock().handle_frame(payload, now, host)
    }

    /// Let the idle lock run.
    pub fn tick(&self) {
        let now = self.clock.now();
        self.lock().tick(now);
    }
}

/// Call `tick` every second until `stop` is set, so keys are forgotten on time even when no
/// request arrives.
pub fn spawn_ticker<S, P>(
    shared: Arc<Shared<S, P>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()>
where
    S: Storage + Send + 'static,
    P: Platform + Send + 'static,
{
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            shared.tick();
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    })
}
