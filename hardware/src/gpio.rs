//! A GPIO line of the Linux GPIO character device (`/dev/gpiochipN`) as an embedded-hal 1.0
//! pin, through `gpiocdev` (maintained; the sysfs GPIO interface and rppal are not).

use std::path::Path;

use embedded_hal::digital::{ErrorKind, ErrorType, InputPin, OutputPin};
use gpiocdev::Request;
use gpiocdev::line::{Bias, Value};

use crate::HwError;

/// One requested line.
pub struct CdevPin {
    req: Request,
    line: u32,
}

/// A pin I/O error (embedded-hal's error type for this pin).
#[derive(Debug, thiserror::Error)]
#[error("GPIO line I/O failed: {0}")]
pub struct PinError(#[source] gpiocdev::Error);

impl embedded_hal::digital::Error for PinError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Other
    }
}

impl CdevPin {
    fn request(
        chip: &Path,
        line: u32,
        configure: impl FnOnce(&mut gpiocdev::request::Builder),
    ) -> Result<Self, HwError> {
        let mut b = Request::builder();
        b.on_chip(chip).with_consumer("vbzkey").with_line(line);
        configure(&mut b);
        b.request().map(|req| CdevPin { req, line }).map_err(|source| HwError::Gpio {
            chip: chip.display().to_string(),
            line,
            source,
        })
    }

    /// An output line (the status LED), initially off.
    pub fn output(chip: &Path, line: u32) -> Result<Self, HwError> {
        Self::request(chip, line, |b| {
            b.as_output(Value::Inactive);
        })
    }

    /// An active-low input with the pull-up enabled: a push button between the pin and ground
    /// reads "high" (pressed) when pushed.
    pub fn button(chip: &Path, line: u32) -> Result<Self, HwError> {
        Self::request(chip, line, |b| {
            b.as_input().as_active_low().with_bias(Bias::PullUp);
        })
    }
}

impl ErrorType for CdevPin {
    type Error = PinError;
}

impl OutputPin for CdevPin {
    fn set_low(&mut self) -> Result<(), PinError> {
        self.req.set_value(self.line, Value::Inactive).map_err(PinError)
    }

    fn set_high(&mut self) -> Result<(), PinError> {
        self.req.set_value(self.line, Value::Active).map_err(PinError)
    }
}

impl InputPin for CdevPin {
    fn is_high(&mut self) -> Result<bool, PinError> {
        Ok(self.req.value(self.line).map_err(PinError)? == Value::Active)
    }

    fn is_low(&mut self) -> Result<bool, PinError> {
        self.is_high().map(|h| !h)
    }
}
