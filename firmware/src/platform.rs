//! The platform of a real board (or of the emulated dongle): the OS RNG, the LED indicator,
//! and the presence gate the transports wait on for a press of the button.

use std::sync::Mutex;
use std::time::Duration;

use vbzkey_hardware::presence::{Indicator, PresenceInput, wait_for_press};

use crate::dongle::{Platform, RngFailed};

/// The OS RNG plus the board's LED.
pub struct OsPlatform {
    indicator: Indicator,
}

impl OsPlatform {
    /// A platform showing its state on `indicator`.
    pub fn new(indicator: Indicator) -> Self {
        OsPlatform { indicator }
    }
}

impl Platform for OsPlatform {
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed> {
        getrandom::fill(buf).map_err(|_| RngFailed)
    }

    fn show(&mut self, unlocked: bool) {
        self.indicator.show_unlocked(unlocked);
    }
}

/// Where the transports wait for a press: one wait at a time (a press answers exactly one
/// request), never while holding the core's lock, so other hosts and the idle-lock ticker
/// go on meanwhile.
pub struct PresenceGate {
    input: Mutex<Option<Box<dyn PresenceInput>>>,
    indicator: Indicator,
    timeout: Duration,
}

impl PresenceGate {
    /// A gate over `input` (`None`: the board has no button, nothing is ever confirmed).
    pub fn new(
        input: Option<Box<dyn PresenceInput>>,
        indicator: Indicator,
        timeout: Duration,
    ) -> Self {
        PresenceGate { input: Mutex::new(input), indicator, timeout }
    }

    /// How long a wait lasts.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Arm the input, run `asking` (tell the host to press), then wait for the press.
    pub fn wait(&self, asking: impl FnOnce()) -> bool {
        let mut input = self.input.lock().unwrap_or_else(|p| p.into_inner());
        let Some(input) = input.as_mut() else {
            asking();
            return false;
        };
        input.arm();
        asking();
        wait_for_press(input.as_mut(), &self.indicator, self.timeout)
    }
}
