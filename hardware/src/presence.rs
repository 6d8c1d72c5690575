//! Physical presence: the status LED and the confirm button.
//!
//! - [`Indicator`] drives the LED from its own thread: off while locked, on while records can
//!   be opened, blinking while the dongle waits for a press. Whoever changes the state never
//!   blocks on the LED.
//! - [`PresenceInput`] is where a press comes from: the board's button ([`ButtonInput`], any
//!   embedded-hal pin) or, for an emulated dongle, a FIFO that a test or the demo writes a line
//!   to ([`FifoInput`]) — the same role, pressed the way a script presses.
//! - [`wait_for_press`] arms an input, blinks, and polls until a press or the timeout.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use embedded_hal::digital::{InputPin, OutputPin};

/// How often the button is sampled while waiting, and the LED's blink step.
const POLL: Duration = Duration::from_millis(50);
/// The LED toggles every this many poll steps while waiting (a 2.5 Hz blink).
const BLINK_EVERY: u32 = 4;

const UNLOCKED: u8 = 1;
const WAITING: u8 = 2;

/// What the LED shows, shared between the firmware and the LED's thread.
#[derive(Debug, Clone, Default)]
pub struct Indicator(Arc<AtomicU8>);

impl Indicator {
    /// An indicator whose LED (if any) is driven by a thread that runs for the process's life.
    pub fn spawn<L: OutputPin + Send + 'static>(led: Option<L>) -> Self {
        let ind = Indicator::default();
        if let Some(mut led) = led {
            let state = Arc::clone(&ind.0);
            std::thread::spawn(move || {
                let mut tick = 0u32;
                loop {
                    let s = state.load(Ordering::Relaxed);
                    let on = if s & WAITING != 0 {
                        (tick / BLINK_EVERY).is_multiple_of(2)
                    } else {
                        s & UNLOCKED != 0
                    };
                    // A broken LED must not stop the key.
                    let _ = if on { led.set_high() } else { led.set_low() };
                    tick = tick.wrapping_add(1);
                    std::thread::sleep(POLL);
                }
            });
        }
        ind
    }

    fn set(&self, bit: u8, on: bool) {
        if on {
            self.0.fetch_or(bit, Ordering::Relaxed);
        } else {
            self.0.fetch_and(!bit, Ordering::Relaxed);
        }
    }

    /// Show whether records can be opened.
    pub fn show_unlocked(&self, unlocked: bool) {
        self.set(UNLOCKED, unlocked);
    }

    /// Blink (waiting for a press) or stop blinking.
    pub fn show_waiting(&self, waiting: bool) {
        self.set(WAITING, waiting);
    }

    /// Whether the LED is blinking for a press.
    pub fn is_waiting(&self) -> bool {
        self.0.load(Ordering::Relaxed) & WAITING != 0
    }
}

/// A source of presses.
pub trait PresenceInput: Send {
    /// Start listening: only presses after this count.
    fn arm(&mut self);
    /// Whether a press came since `arm`. Never blocks.
    fn pressed(&mut self) -> bool;
}

/// The board's button, read logically (pressed reads high; `gpio::CdevPin::input` inverts a
/// button wired to ground). A press counts only if the button
/// was seen released after `arm`, so a stuck or held button confirms nothing.
pub struct ButtonInput<B> {
    pin: B,
    released_since_arm: bool,
}

impl<B: InputPin> ButtonInput<B> {
    /// The button on `pin`.
    pub fn new(pin: B) -> Self {
        ButtonInput { pin, released_since_arm: false }
    }
}

impl<B: InputPin + Send> PresenceInput for ButtonInput<B> {
    fn arm(&mut self) {
        self.released_since_arm = false;
    }

    fn pressed(&mut self) -> bool {
        // A pin that cannot be read counts as not pressed (fail closed).
        let high = self.pin.is_high().unwrap_or(false);
        if !self.released_since_arm {
            self.released_since_arm = !high;
            return false;
        }
        high
    }
}

/// Why a FIFO presence input could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FifoError {
    /// The path is not a FIFO.
    #[error("{0} is not a FIFO (create it with mkfifo)")]
    NotAFifo(String),
    /// It could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Presses as lines written to a FIFO (`echo press > FIFO`), for an emulated dongle. Whoever
/// may write the FIFO may press the button: it must be as private as the emulated dongle's
/// state directory.
pub struct FifoInput {
    presses: Arc<AtomicU64>,
    armed_at: u64,
}

impl FifoInput {
    /// Listen on the FIFO at `path` (a thread reads it for the process's life).
    pub fn open(path: &Path) -> Result<Self, FifoError> {
        let meta = std::fs::metadata(path)
            .map_err(|source| FifoError::Open { path: path.display().to_string(), source })?;
        if !meta.file_type().is_fifo() {
            return Err(FifoError::NotAFifo(path.display().to_string()));
        }
        // Read and write: the open does not wait for a writer, and reads never see an end of
        // file when one writer closes (the FIFO stays open for the next).
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| FifoError::Open { path: path.display().to_string(), source })?;
        let presses = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&presses);
        std::thread::spawn(move || {
            let mut lines = BufReader::new(file);
            let mut line = Vec::new();
            loop {
                line.clear();
                match lines.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        Ok(FifoInput { presses, armed_at: 0 })
    }
}

impl PresenceInput for FifoInput {
    fn arm(&mut self) {
        self.armed_at = self.presses.load(Ordering::SeqCst);
    }

    fn pressed(&mut self) -> bool {
        self.presses.load(Ordering::SeqCst) > self.armed_at
    }
}

/// Wait up to `timeout` for a press on an input armed by the caller, blinking `indicator`
/// meanwhile.
pub fn wait_for_press(
    input: &mut dyn PresenceInput,
    indicator: &Indicator,
    timeout: Duration,
) -> bool {
    indicator.show_waiting(true);
    let start = Instant::now();
    let pressed = loop {
        if input.pressed() {
            break true;
        }
        if start.elapsed() >= timeout {
            break false;
        }
        std::thread::sleep(POLL);
    };
    indicator.show_waiting(false);
    pressed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakePin;

    #[test]
    fn a_press_needs_a_release_after_arming() {
        let pin = FakePin::default();
        let mut b = ButtonInput::new(pin.clone());
        pin.set_level(true);
        b.arm();
        assert!(
            !b.pressed() && !b.pressed(),
            "a button held down since before arming confirms nothing"
        );
        pin.set_level(false);
        assert!(!b.pressed());
        pin.set_level(true);
        assert!(b.pressed());
        b.arm();
        assert!(!b.pressed(), "re-arming forgets the earlier press");
    }

    #[test]
    fn waiting_blinks_and_times_out_without_a_press() {
        let led = FakePin::default();
        let ind = Indicator::spawn(Some(led.clone()));
        ind.show_unlocked(true);
        let mut input = ButtonInput::new(FakePin::default());
        input.arm();
        let watcher = {
            let ind = ind.clone();
            std::thread::spawn(move || {
                let mut seen = (false, false);
                for _ in 0..40 {
                    if ind.is_waiting() {
                        if led.level() { seen.0 = true } else { seen.1 = true }
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                seen
            })
        };
        assert!(!wait_for_press(&mut input, &ind, Duration::from_millis(400)));
        assert_eq!(watcher.join().unwrap(), (true, true), "the LED blinked while waiting");
        assert!(!ind.is_waiting());
    }

    #[test]
    fn a_fifo_line_is_a_press_but_only_after_arming() {
        let dir = std::env::temp_dir().join(format!("vbzkey-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("presence");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let mut input = FifoInput::open(&fifo).unwrap();
        std::fs::write(&fifo, b"press\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        input.arm();
        assert!(!input.pressed(), "a press before the dongle asked does not count");
        let writer = std::thread::spawn({
            let fifo = fifo.clone();
            move || {
                std::thread::sleep(Duration::from_millis(100));
                std::fs::write(&fifo, b"press\n").unwrap();
            }
        });
        assert!(wait_for_press(&mut input, &Indicator::default(), Duration::from_secs(5)));
        writer.join().unwrap();
        let plain = dir.join("plain");
        std::fs::write(&plain, b"").unwrap();
        assert!(matches!(FifoInput::open(&plain), Err(FifoError::NotAFifo(_))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
