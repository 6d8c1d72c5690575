//! The platform of a real board (or of the emulated dongle): the OS RNG, the LED and the
//! button from `vbzkey-hardware`.

use std::time::Duration;

use embedded_hal::digital::{InputPin, OutputPin};
use vbzkey_hardware::presence::{Presence, Status};

use crate::dongle::{Platform, RngFailed};

/// How long the user has to press the button for a large batch.
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(15);

/// The OS RNG plus the board's LED and button.
pub struct OsPlatform<L, B> {
    presence: Presence<L, B>,
}

impl<L: OutputPin, B: InputPin> OsPlatform<L, B> {
    /// A platform with these presence devices.
    pub fn new(presence: Presence<L, B>) -> Self {
        OsPlatform { presence }
    }
}

impl<L: OutputPin, B: InputPin> Platform for OsPlatform<L, B> {
    fn fill_random(&mut self, buf: &mut [u8]) -> Result<(), RngFailed> {
        getrandom::fill(buf).map_err(|_| RngFailed)
    }

    fn confirm(&mut self) -> bool {
        self.presence.wait_for_press(CONFIRM_TIMEOUT)
    }

    fn show(&mut self, unlocked: bool) {
        self.presence.show(if unlocked { Status::Unlocked } else { Status::Locked });
    }
}
