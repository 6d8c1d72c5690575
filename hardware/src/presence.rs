//! The status LED and the confirm button, over any embedded-hal 1.0 pins.

use std::time::{Duration, Instant};

use embedded_hal::digital::{InputPin, OutputPin};

/// What the LED shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Locked or idle: off.
    Locked,
    /// Unlocked: on.
    Unlocked,
}

/// How often the button is sampled while waiting, and how fast the LED blinks meanwhile.
const POLL: Duration = Duration::from_millis(50);
const BLINK_EVERY: u32 = 4;

/// The LED and the optional button of a dongle.
pub struct Presence<L, B> {
    led: Option<L>,
    button: Option<B>,
}

impl<L: OutputPin, B: InputPin> Presence<L, B> {
    /// A board with the given LED and button (either may be absent).
    pub fn new(led: Option<L>, button: Option<B>) -> Self {
        Presence { led, button }
    }

    /// Whether the board has a button to confirm with.
    pub fn has_button(&self) -> bool {
        self.button.is_some()
    }

    /// Show a status. LED errors are ignored: a broken LED must not stop the key.
    pub fn show(&mut self, status: Status) {
        if let Some(led) = &mut self.led {
            let _ = match status {
                Status::Locked => led.set_low(),
                Status::Unlocked => led.set_high(),
            };
        }
    }

    /// Blink the LED and wait up to `timeout` for a press of the button. Without a button,
    /// nothing can be confirmed: returns false. A button that cannot be read counts as not
    /// pressed (fail closed).
    pub fn wait_for_press(&mut self, timeout: Duration) -> bool {
        let Some(button) = &mut self.button else { return false };
        let start = Instant::now();
        let mut tick = 0u32;
        let pressed = loop {
            if button.is_high().unwrap_or(false) {
                break true;
            }
            if start.elapsed() >= timeout {
                break false;
            }
            if let Some(led) = &mut self.led {
                let _ = if (tick / BLINK_EVERY).is_multiple_of(2) {
                    led.set_high()
                } else {
                    led.set_low()
                };
            }
            tick += 1;
            std::thread::sleep(POLL);
        };
        if let Some(led) = &mut self.led {
            let _ = led.set_low();
        }
        pressed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakePin;

    #[test]
    fn press_is_seen_and_led_follows_status() {
        let led = FakePin::default();
        let button = FakePin::default();
        let mut p = Presence::new(Some(led.clone()), Some(button.clone()));
        p.show(Status::Unlocked);
        assert!(led.level());
        p.show(Status::Locked);
        assert!(!led.level());
        assert!(!p.wait_for_press(Duration::from_millis(120)), "no press: times out");
        button.set_level(true);
        assert!(p.wait_for_press(Duration::from_secs(5)));
    }

    #[test]
    fn no_button_never_confirms() {
        let mut p: Presence<FakePin, FakePin> = Presence::new(None, None);
        assert!(!p.has_button());
        assert!(!p.wait_for_press(Duration::from_millis(10)));
    }
}
