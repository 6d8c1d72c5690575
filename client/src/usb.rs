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

use crate::connector::Connector;
use crate::error::{LinkError, TransportError};
use crate::link::{FrameIo, Link};
use crate::session::SessionKeys;
use crate::socket::CALL_TIMEOUT;

/// The dongle's VID, from `hardware/pi/usb-id.conf` (as the gadget script's and the udev rule's).
pub const DEFAULT_VID: u16 = vbzkey_protocol::usb_id::VID;
/// See [`DEFAULT_VID`].
pub const DEFAULT_PID: u16 = vbzkey_protocol::usb_id::PID;
const VENDOR_CLASS: u8 = 0xff;
/// Room for the header transfer: a full high-speed packet, so an oversized transfer is
/// noticed rather than overflowing.
const HEADER_READ: usize = 512;
const STRING_TIMEOUT: Duration = Duration::from_secs(1);

struct UsbIo {
    handle: DeviceHandle<Context>,
    iface: u8,
    ep_in: u8,
    ep_out: u8,
    serial: String,
}

impl FrameIo for UsbIo {
    fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        let (header, payload) = frame.split_at(FRAME_HEADER_LEN);
        self.handle.write_bulk(self.ep_out, header, CALL_TIMEOUT)?;
        let sent = self.handle.write_bulk(self.ep_out, payload, CALL_TIMEOUT)?;
        if sent != payload.len() {
            return Err(TransportError::ShortWrite { sent, len: payload.len() });
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<Frame, TransportError> {
        let mut head = [0u8; HEADER_READ];
        let n = self.handle.read_bulk(self.ep_in, &mut head, CALL_TIMEOUT)?;
        let Some(h) = head.get(..n).and_then(|h| <&[u8; FRAME_HEADER_LEN]>::try_from(h).ok())
        else {
            return Err(TransportError::HeaderTransfer(n));
        };
        let len = wire::parse_header(h).map_err(TransportError::Frame)?;
        let kind = wire::frame_kind(h).map_err(TransportError::Frame)?;
        let mut body = Zeroizing::new(vec![0u8; len]);
        let mut got = 0;
        while got < len {
            match self.handle.read_bulk(self.ep_in, &mut body[got..], CALL_TIMEOUT)? {
                0 => return Err(TransportError::EmptyTransfer),
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
        let ctx = Context::new().map_err(LinkError::UsbUnavailable)?;
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
        for device in ctx.devices().map_err(LinkError::UsbUnavailable)?.iter() {
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

/// Why no dongle was chosen among those found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    /// None (with the wanted serial) is there.
    None,
    /// Several are there and none was named.
    Several(Vec<String>),
}

impl Choice {
    fn into_link(self, vid: u16, pid: u16, serial: Option<String>) -> LinkError {
        match self {
            Choice::None => LinkError::NoUsbDongle { vid, pid, serial },
            Choice::Several(serials) => LinkError::SeveralDongles { serials },
        }
    }
}

/// The dongle to open among `found` (serial, device): the one named `wanted`, or the only one.
/// With several and none named, it refuses to guess.
pub(crate) fn choose<T>(
    found: Vec<(String, T)>,
    wanted: Option<&str>,
) -> Result<(String, T), Choice> {
    match wanted {
        Some(w) => found.into_iter().find(|(serial, _)| serial == w).ok_or(Choice::None),
        None if found.len() > 1 => {
            Err(Choice::Several(found.into_iter().map(|(s, _)| s).collect()))
        }
        None => found.into_iter().next().ok_or(Choice::None),
    }
}

impl Connector for UsbConnector {
    fn connect(&self) -> Result<Link, LinkError> {
        let (serial, device) = choose(self.scan()?, self.serial.as_deref())
            .map_err(|e| e.into_link(self.vid, self.pid, self.serial.clone()))?;
        let Some((iface, ep_in, ep_out)) = find_interface(&device) else {
            return Err(LinkError::NoInterface { serial });
        };
        let open_err = |source| LinkError::UsbOpen { serial: serial.clone(), source };
        let handle = device.open().map_err(open_err)?;
        let _ = handle.set_auto_detach_kernel_driver(true);
        handle.claim_interface(iface).map_err(open_err)?;
        // Clear any halt a previous, interrupted exchange left behind.
        let _ = handle.clear_halt(ep_in);
        let _ = handle.clear_halt(ep_out);
        let _ = handle.read_languages(STRING_TIMEOUT);
        tracing::info!(
            "opened dongle {serial} (interface {iface}, IN {ep_in:#04x}, OUT {ep_out:#04x})"
        );
        let io = Box::new(UsbIo { handle, iface, ep_in, ep_out, serial });
        Link::open(io, self.keys.as_deref())
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

#[cfg(test)]
mod choose_tests {
    use super::{Choice, choose};

    #[test]
    fn several_dongles_and_none_named_is_refused_not_guessed() {
        let found = || vec![("A1".to_string(), 1), ("B2".to_string(), 2)];
        assert_eq!(choose(found(), None), Err(Choice::Several(vec!["A1".into(), "B2".into()])));
        assert_eq!(choose(found(), Some("B2")), Ok(("B2".into(), 2)));
        assert_eq!(choose(found(), Some("C3")), Err(Choice::None));
        assert_eq!(choose(vec![("A1".to_string(), 1)], None), Ok(("A1".into(), 1)));
        assert_eq!(choose::<u8>(vec![], None), Err(Choice::None));
    }
}
