//! The real key over USB, with libusb (rusb, vendored and linked statically).
//!
//! A dongle is a device with the configured VID:PID whose active configuration has a
//! vendor-specific interface (class 0xff) with one bulk IN and one bulk OUT endpoint. Each
//! frame travels as two bulk transfers, the 8-byte header and then the payload (see
//! `docs/PROTOCOL.md`), so every read can be sized exactly.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusb::{Context, Device, DeviceHandle, Direction, TransferType, UsbContext};
use vbzkey_protocol::stream::Frame;
use vbzkey_protocol::wire::{self, FRAME_HEADER_LEN};
use zeroize::Zeroizing;

use super::socket::CALL_TIMEOUT;
use super::{Connector, FrameIo, FramedLink, Link, LinkError, SessionKeys};

/// The dongle's VID, from `hardware/pi/usb-id.conf` (as the gadget script's and the udev rule's).
pub const DEFAULT_VID: u16 = vbzkey_protocol::usb_id::VID;
/// See [`DEFAULT_VID`].
pub const DEFAULT_PID: u16 = vbzkey_protocol::usb_id::PID;
const VENDOR_CLASS: u8 = 0xff;
/// Room for the header transfer: a full high-speed packet, so an oversized transfer is
/// noticed rather than overflowing.
const HEADER_READ: usize = 512;
const STRING_TIMEOUT: Duration = Duration::from_secs(1);

fn io(e: rusb::Error) -> LinkError {
    match e {
        rusb::Error::NoDevice | rusb::Error::NotFound => LinkError::NotFound(e.to_string()),
        _ => LinkError::Io(e.to_string()),
    }
}

struct UsbIo {
    handle: DeviceHandle<Context>,
    iface: u8,
    ep_in: u8,
    ep_out: u8,
    serial: String,
}

impl FrameIo for UsbIo {
    fn send(&mut self, frame: &[u8]) -> Result<(), LinkError> {
        let (header, payload) = frame.split_at(FRAME_HEADER_LEN);
        self.handle.write_bulk(self.ep_out, header, CALL_TIMEOUT).map_err(io)?;
        let sent = self.handle.write_bulk(self.ep_out, payload, CALL_TIMEOUT).map_err(io)?;
        if sent != payload.len() {
            return Err(LinkError::Io(format!("short write: {sent} of {} bytes", payload.len())));
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<Frame, LinkError> {
        let mut head = [0u8; HEADER_READ];
        let n = self.handle.read_bulk(self.ep_in, &mut head, CALL_TIMEOUT).map_err(io)?;
        if n != FRAME_HEADER_LEN {
            return Err(LinkError::Protocol(format!(
                "a {n}-byte transfer where a frame header was expected"
            )));
        }
        let h: &[u8; FRAME_HEADER_LEN] = head[..FRAME_HEADER_LEN].try_into().expect("8 bytes");
        let len = wire::parse_header(h).map_err(|e| LinkError::Protocol(e.to_string()))?;
        let kind = wire::frame_kind(h).map_err(|e| LinkError::Protocol(e.to_string()))?;
        let mut body = Zeroizing::new(vec![0u8; len]);
        let mut got = 0;
        while got < len {
            match self.handle.read_bulk(self.ep_in, &mut body[got..], CALL_TIMEOUT).map_err(io)? {
                0 => return Err(LinkError::Io("empty transfer inside a frame".into())),
                n => got += n,
            }
        }
        Ok((kind, body))
    }

    fn describe(&self) -> String {
        format!("usb:{}", self.serial)
    }
}

impl Drop for UsbIo {
    fn drop(&mut self) {
        let _ = self.handle.release_interface(self.iface);
    }
}

/// The vendor interface and its bulk endpoints `(interface, IN, OUT)`, from the active
/// configuration.
pub fn find_interface(device: &Device<Context>) -> Option<(u8, u8, u8)> {
    let config = device.active_config_descriptor().ok()?;
    for iface in config.interfaces() {
        for alt in iface.descriptors() {
            if alt.class_code() != VENDOR_CLASS {
                continue;
            }
            let bulk = |dir| {
                alt.endpoint_descriptors()
                    .find(|e| e.transfer_type() == TransferType::Bulk && e.direction() == dir)
                    .map(|e| e.address())
            };
            if let (Some(ep_in), Some(ep_out)) = (bulk(Direction::In), bulk(Direction::Out)) {
                return Some((alt.interface_number(), ep_in, ep_out));
            }
        }
    }
    None
}

/// Finds dongles by VID:PID (and serial, when several are plugged in).
pub struct UsbConnector {
    vid: u16,
    pid: u16,
    serial: Option<String>,
    // Created on first use: libusb cannot start where there is no USB at all, and a bridge
    // configured for another method must not need it.
    context: Mutex<Option<Context>>,
    generation: Arc<AtomicU64>,
    keys: Option<Arc<SessionKeys>>,
}

impl UsbConnector {
    /// Look for `vid:pid`, and if `serial` is set, only that dongle; open sessions with
    /// `keys` when given.
    pub fn new(vid: u16, pid: u16, serial: Option<String>, keys: Option<Arc<SessionKeys>>) -> Self {
        UsbConnector {
            vid,
            pid,
            serial,
            context: Mutex::new(None),
            generation: Arc::new(AtomicU64::new(0)),
            keys,
        }
    }

    fn context(&self) -> Result<Context, LinkError> {
        let mut slot = self.context.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(ctx) = slot.as_ref() {
            return Ok(ctx.clone());
        }
        let ctx = Context::new()
            .map_err(|e| LinkError::NotFound(format!("USB is not available: {e}")))?;
        if rusb::has_hotplug() {
            spawn_hotplug_watch(ctx.clone(), self.vid, self.pid, Arc::clone(&self.generation));
        }
        *slot = Some(ctx.clone());
        Ok(ctx)
    }

    /// Matching devices with their serial numbers, sorted by serial.
    fn scan(&self) -> Result<Vec<(String, Device<Context>)>, LinkError> {
        let ctx = self.context()?;
        let mut found = Vec::new();
        for device in ctx.devices().map_err(io)?.iter() {
            let Ok(desc) = device.device_descriptor() else { continue };
            if desc.vendor_id() != self.vid || desc.product_id() != self.pid {
                continue;
            }
            let serial = device
                .open()
                .ok()
                .and_then(|h| h.read_serial_number_string_ascii(&desc).ok())
                .unwrap_or_else(|| format!("bus{}-addr{}", device.bus_number(), device.address()));
            found.push((serial, device));
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found)
    }
}

impl Connector for UsbConnector {
    fn connect(&self) -> Result<Box<dyn Link>, LinkError> {
        let found = self.scan()?;
        let wanted = match &self.serial {
            Some(s) => found.into_iter().find(|(serial, _)| serial == s),
            None => found.into_iter().next(),
        };
        let (serial, device) = wanted.ok_or_else(|| {
            LinkError::NotFound(format!(
                "no dongle {:04x}:{:04x}{} is plugged in",
                self.vid,
                self.pid,
                self.serial.as_deref().map(|s| format!(" with serial {s}")).unwrap_or_default()
            ))
        })?;
        let (iface, ep_in, ep_out) = find_interface(&device).ok_or_else(|| {
            LinkError::Protocol(format!(
                "dongle {serial} has no vendor interface with bulk endpoints"
            ))
        })?;
        let handle = device.open().map_err(io)?;
        let _ = handle.set_auto_detach_kernel_driver(true);
        handle.claim_interface(iface).map_err(io)?;
        // Clear any halt a previous, interrupted exchange left behind.
        let _ = handle.clear_halt(ep_in);
        let _ = handle.clear_halt(ep_out);
        let _ = handle.read_languages(STRING_TIMEOUT);
        tracing::info!(
            "opened dongle {serial} (interface {iface}, IN {ep_in:#04x}, OUT {ep_out:#04x})"
        );
        let io = Box::new(UsbIo { handle, iface, ep_in, ep_out, serial });
        Ok(Box::new(FramedLink::open(io, self.keys.as_deref())?))
    }

    fn present(&self) -> Vec<String> {
        self.scan().map(|f| f.into_iter().map(|(s, _)| s).collect()).unwrap_or_default()
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}

struct Watch {
    generation: Arc<AtomicU64>,
}

impl rusb::Hotplug<Context> for Watch {
    fn device_arrived(&mut self, _: Device<Context>) {
        tracing::info!("a dongle was plugged in");
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn device_left(&mut self, _: Device<Context>) {
        tracing::info!("a dongle was unplugged");
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// Where libusb supports hot-plug events, bump `generation` on every arrival and removal so
/// the bridge drops a stale link at once; elsewhere links fail and reconnect on demand.
fn spawn_hotplug_watch(ctx: Context, vid: u16, pid: u16, generation: Arc<AtomicU64>) {
    std::thread::spawn(move || {
        let registration = rusb::HotplugBuilder::new()
            .vendor_id(vid)
            .product_id(pid)
            .register(&ctx, Box::new(Watch { generation }));
        let Ok(_registration) = registration else {
            tracing::debug!("hot-plug events unavailable; relying on reconnect-on-demand");
            return;
        };
        loop {
            if ctx.handle_events(Some(Duration::from_secs(1))).is_err() {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    });
}
