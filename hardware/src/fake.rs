//! In-memory pins, for tests and for the emulated dongle (where a "button press" is simulated
//! by the test harness).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use embedded_hal::digital::{ErrorType, InputPin, OutputPin};

/// A pin whose level is shared between clones: the test keeps one clone to drive or observe it.
#[derive(Debug, Clone, Default)]
pub struct FakePin(Arc<AtomicBool>);

impl FakePin {
    /// The current level.
    pub fn level(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Drive the level (a test "pressing" the button).
    pub fn set_level(&self, high: bool) {
        self.0.store(high, Ordering::SeqCst);
    }
}

impl ErrorType for FakePin {
    type Error = Infallible;
}

impl OutputPin for FakePin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.set_level(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Infallible> {
        self.set_level(true);
        Ok(())
    }
}

impl InputPin for FakePin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.level())
    }

    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.level())
    }
}
