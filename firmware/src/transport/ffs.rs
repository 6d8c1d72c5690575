//! USB FunctionFS transport for the Pi: a vendor-specific interface with one bulk IN and one
//! bulk OUT endpoint.
//!
//! FunctionFS needs no ioctls for this: descriptors and strings are *written* to `ep0`,
//! events are *read* from `ep0` as 12-byte records, and the endpoints are plain files
//! (`ep1` = bulk IN, `ep2` = bulk OUT, numbered in descriptor order). So this module is
//! ordinary file I/O and the crate stays `forbid(unsafe_code)`; the configfs gadget itself is
//! made by `hardware/pi/vbzkey-gadget.sh`.
//!
//! Framing on USB: each frame travels as two bulk transfers, the 8-byte header (a short
//! packet) and then the payload, so each side can size its read for the payload exactly.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

use vbzkey_protocol::wire::{self, DongleError, FRAME_HEADER_LEN, FrameKind, Response};
use zeroize::Zeroizing;

use super::preauth::{self, REFUSAL_PREFIX, Verdict};
use super::{Connection, Reply, Shared};
use crate::dongle::Platform;
use crate::storage::Storage;

const FUNCTIONFS_DESCRIPTORS_MAGIC_V2: u32 = 3;
const FUNCTIONFS_STRINGS_MAGIC: u32 = 2;
const FUNCTIONFS_HAS_FS_DESC: u32 = 1;
const FUNCTIONFS_HAS_HS_DESC: u32 = 2;
const FUNCTIONFS_HAS_MS_OS_DESC: u32 = 8;
const USB_DT_INTERFACE: u8 = 4;
const USB_DT_ENDPOINT: u8 = 5;
const USB_CLASS_VENDOR_SPEC: u8 = 0xff;
const USB_ENDPOINT_XFER_BULK: u8 = 2;
const USB_DIR_IN: u8 = 0x80;
/// Bulk max packet size: 64 at full speed, 512 at high speed (USB 2.0 §5.8.3).
const FS_MAX_PACKET: u16 = 64;
const HS_MAX_PACKET: u16 = 512;
/// Endpoint I/O is done in chunks of this size (a multiple of both max packet sizes), so the
/// kernel never has to allocate a multi-megabyte request buffer.
const CHUNK: usize = 16 * 1024;
/// The interface name shown by `lsusb -v`.
pub const INTERFACE_NAME: &str = "vbzkey";
/// The Microsoft OS 1.0 compatible ID that makes Windows (8 and later) bind its WinUSB driver
/// to the interface by itself, so libusb works there without Zadig or an INF file.
pub const WINUSB_COMPATIBLE_ID: &[u8; 8] = b"WINUSB\0\0";
/// The device interface GUID Windows registers for the interface (a WinUSB extended property,
/// which libusb uses to find the device). Fixed for this project: a random v4 UUID.
pub const DEVICE_INTERFACE_GUID: &str = "{c72e16c5-09b9-4e07-8357-63ec2d434aa2}";
/// MS OS descriptor version 1.00, and the `wIndex` of its two feature descriptors. Older
/// kernels (Debian 12's 6.1, which the USB VM test boots) accept only the byte-swapped 0x0001
/// that early userspace wrote; newer ones take 1.00 (and 0x0001 with a warning), so [`serve`]
/// tries 1.00 first. Either way the host reads 1.00: the composite layer writes it itself.
const MS_OS_BCD_VERSION: u16 = 0x0100;
const MS_OS_BCD_VERSION_OLD_KERNELS: u16 = 0x0001;
const MS_OS_EXT_COMPAT: u16 = 4;
const MS_OS_EXT_PROP: u16 = 5;
/// `REG_SZ`, the registry type of the interface GUID property.
const REG_SZ: u32 = 1;

/// The Microsoft OS 1.0 feature descriptors in FunctionFS's layout (`struct
/// usb_os_desc_header` followed by its features; include/uapi/linux/usb/functionfs.h): the
/// extended compatible ID `WINUSB` and the extended property `DeviceInterfaceGUID`, both for
/// interface 0. The kernel answers Windows' vendor requests from these once the configfs
/// gadget has `os_desc/use` set (`hardware/pi/vbzkey-gadget.sh`). Property names and values
/// are given as NUL-terminated ASCII: the kernel sends them as UTF-16.
fn ms_os_descriptors(bcd_version: u16) -> Vec<u8> {
    let header = |len: usize, w_index: u16, count: u16| {
        let mut h = vec![0u8]; // interface 0
        h.extend_from_slice(&(len as u32).to_le_bytes());
        h.extend_from_slice(&bcd_version.to_le_bytes());
        h.extend_from_slice(&w_index.to_le_bytes());
        h.extend_from_slice(&count.to_le_bytes()); // bCount + reserved, or wCount
        h
    };
    const HEADER_LEN: usize = 11;
    // Extended compatible ID: first interface 0, reserved 1, compatible and sub-compatible IDs,
    // six reserved bytes.
    let mut compat = vec![0u8, 1];
    compat.extend_from_slice(WINUSB_COMPATIBLE_ID);
    compat.extend_from_slice(&[0; 8 + 6]);
    // Extended property: size, type, name length, name, data length, data.
    let name = b"DeviceInterfaceGUID\0";
    let mut data = DEVICE_INTERFACE_GUID.as_bytes().to_vec();
    data.push(0);
    let mut prop = Vec::new();
    prop.extend_from_slice(&((14 + name.len() + data.len()) as u32).to_le_bytes());
    prop.extend_from_slice(&REG_SZ.to_le_bytes());
    prop.extend_from_slice(&(name.len() as u16).to_le_bytes());
    prop.extend_from_slice(name);
    prop.extend_from_slice(&(data.len() as u32).to_le_bytes());
    prop.extend_from_slice(&data);

    let mut out = header(HEADER_LEN + compat.len(), MS_OS_EXT_COMPAT, 1);
    out.extend_from_slice(&compat);
    out.extend_from_slice(&header(HEADER_LEN + prop.len(), MS_OS_EXT_PROP, 1));
    out.extend_from_slice(&prop);
    out
}

/// The FunctionFS descriptor blob: v2 header, then the full-speed and the high-speed sets,
/// each an interface descriptor and two bulk endpoint descriptors, then the Microsoft OS
/// descriptors.
pub fn descriptors() -> Vec<u8> {
    descriptors_with(MS_OS_BCD_VERSION)
}

fn descriptors_with(ms_os_bcd_version: u16) -> Vec<u8> {
    let interface = [9, USB_DT_INTERFACE, 0, 0, 2, USB_CLASS_VENDOR_SPEC, 0, 0, 1];
    let endpoint = |addr: u8, max: u16| {
        let m = max.to_le_bytes();
        [7, USB_DT_ENDPOINT, addr, USB_ENDPOINT_XFER_BULK, m[0], m[1], 0]
    };
    let mut body = Vec::new();
    for max in [FS_MAX_PACKET, HS_MAX_PACKET] {
        body.extend_from_slice(&interface);
        body.extend_from_slice(&endpoint(1 | USB_DIR_IN, max));
        body.extend_from_slice(&endpoint(2, max));
    }
    body.extend_from_slice(&ms_os_descriptors(ms_os_bcd_version));
    let flags = FUNCTIONFS_HAS_FS_DESC | FUNCTIONFS_HAS_HS_DESC | FUNCTIONFS_HAS_MS_OS_DESC;
    let mut out = Vec::new();
    out.extend_from_slice(&FUNCTIONFS_DESCRIPTORS_MAGIC_V2.to_le_bytes());
    out.extend_from_slice(&((24 + body.len()) as u32).to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&3u32.to_le_bytes()); // full-speed descriptor count
    out.extend_from_slice(&3u32.to_le_bytes()); // high-speed descriptor count
    out.extend_from_slice(&2u32.to_le_bytes()); // MS OS descriptor count
    out.extend_from_slice(&body);
    out
}

/// The FunctionFS strings blob: one string (the interface name) in US English.
pub fn strings() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&0x0409u16.to_le_bytes());
    body.extend_from_slice(INTERFACE_NAME.as_bytes());
    body.push(0);
    let mut out = Vec::new();
    out.extend_from_slice(&FUNCTIONFS_STRINGS_MAGIC.to_le_bytes());
    out.extend_from_slice(&((16 + body.len()) as u32).to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes()); // strings per language
    out.extend_from_slice(&1u32.to_le_bytes()); // languages
    out.extend_from_slice(&body);
    out
}

/// An ep0 event (`struct usb_functionfs_event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The function was bound to a UDC.
    Bind,
    /// The function was unbound.
    Unbind,
    /// The host configured the device: endpoints usable.
    Enable,
    /// The host reset or deconfigured the device: endpoints gone until the next `Enable`.
    Disable,
    /// A control request for the interface; `in_direction` tells how to stall it.
    Setup {
        /// `bmRequestType` has the IN bit.
        in_direction: bool,
    },
    /// Bus suspend.
    Suspend,
    /// Bus resume.
    Resume,
}

/// Size of one `struct usb_functionfs_event`.
pub const EVENT_LEN: usize = 12;

/// Decode one 12-byte event; `None` for an unknown type.
pub fn parse_event(raw: &[u8; EVENT_LEN]) -> Option<Event> {
    Some(match raw[8] {
        0 => Event::Bind,
        1 => Event::Unbind,
        2 => Event::Enable,
        3 => Event::Disable,
        4 => Event::Setup { in_direction: raw[0] & USB_DIR_IN != 0 },
        5 => Event::Suspend,
        6 => Event::Resume,
        _ => return None,
    })
}

/// Where the function lives and how to bind it.
#[derive(Debug, Clone)]
pub struct FfsConfig {
    /// The FunctionFS mount point (e.g. `/dev/ffs-vbzkey`).
    pub dir: PathBuf,
    /// The configfs gadget's `UDC` file and the controller name to write into it once the
    /// descriptors are in place (binding earlier fails with EBUSY).
    pub bind: Option<(PathBuf, String)>,
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> io::Error {
    let msg = format!("{what} {}", path.display());
    move |e| io::Error::new(e.kind(), format!("{msg}: {e}"))
}

/// The UDC to bind to: the configured one, or the only one in /sys/class/udc for "auto".
fn udc_name(name: &str) -> io::Result<String> {
    if name != "auto" {
        return Ok(name.to_string());
    }
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/udc")?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no USB device controller found"))
}

/// Read ep0 events on a thread and pass the interesting ones on. Setup requests are stalled
/// here: the interface defines no control requests.
fn spawn_event_reader(mut ep0: File) -> Receiver<Event> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut raw = [0u8; EVENT_LEN];
        loop {
            match ep0.read(&mut raw) {
                Ok(EVENT_LEN) => {}
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!("ep0: {e}");
                    return;
                }
            }
            match parse_event(&raw) {
                // Reading or writing ep0 in the wrong direction stalls the request.
                Some(Event::Setup { in_direction: true }) => {
                    let _ = ep0.read(&mut [0u8; 0]);
                }
                Some(Event::Setup { in_direction: false }) => {
                    let _ = ep0.write(&[]);
                }
                Some(ev) => {
                    // The host suspends an idle bus often: at info level, each would be a
                    // journal line written to the SD card.
                    if matches!(ev, Event::Suspend | Event::Resume) {
                        tracing::debug!("USB event: {ev:?}");
                    } else {
                        tracing::info!("USB event: {ev:?}");
                    }
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
                None => tracing::debug!("unknown ep0 event type {}", raw[8]),
            }
        }
    });
    rx
}

/// Read exactly `buf.len()` bytes of one payload transfer, in chunks.
fn read_payload(ep: &mut File, buf: &mut [u8]) -> io::Result<()> {
    for piece in buf.chunks_mut(CHUNK) {
        ep.read_exact(piece)?;
    }
    Ok(())
}

/// Read and drop one payload of `len` bytes in chunks, keeping its first
/// `REFUSAL_PREFIX` bytes (a refused request's id): nothing of its announced size is
/// allocated.
fn drain_payload(ep: &mut File, len: usize) -> io::Result<Vec<u8>> {
    let mut chunk = Zeroizing::new(vec![0u8; CHUNK.min(len)]);
    let mut prefix = Vec::with_capacity(REFUSAL_PREFIX);
    let mut got = 0;
    while got < len {
        let want = (len - got).min(CHUNK);
        let room = chunk.get_mut(..want).unwrap_or_default();
        match ep.read(room)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                let keep = n.min(REFUSAL_PREFIX - prefix.len());
                prefix.extend_from_slice(room.get(..keep).unwrap_or_default());
                got += n;
            }
        }
    }
    Ok(prefix)
}

fn write_frame_usb(ep: &mut File, frame: &[u8]) -> io::Result<()> {
    let (header, payload) = frame.split_at(FRAME_HEADER_LEN);
    ep.write_all(header)?;
    for chunk in payload.chunks(CHUNK) {
        ep.write_all(chunk)?;
    }
    Ok(())
}

/// Serve frames on the open endpoints until an I/O error (host gone, reset, disable). A new
/// host connection (after a reset or replug) starts a new [`Connection`], so a session never
/// outlives the link it was made on.
fn serve_endpoints<S: Storage, P: Platform>(
    ep_in: &mut File,
    ep_out: &mut File,
    shared: &Shared<S, P>,
) -> io::Error {
    let mut conn = shared.connect("usb", false);
    let e = serve_usb_frames(ep_in, ep_out, shared, &mut conn);
    shared.disconnect(&conn);
    e
}

fn serve_usb_frames<S: Storage, P: Platform>(
    ep_in: &mut File,
    ep_out: &mut File,
    shared: &Shared<S, P>,
    conn: &mut Connection,
) -> io::Error {
    // A header transfer is a short packet; read it with a full packet's room so a host that
    // sends more is noticed instead of overflowing.
    let mut header = Zeroizing::new([0u8; HS_MAX_PACKET as usize]);
    loop {
        let n = match ep_out.read(&mut header[..]) {
            Ok(n) => n,
            Err(e) => return e,
        };
        let parsed = match header.first_chunk::<FRAME_HEADER_LEN>() {
            Some(h) if n == FRAME_HEADER_LEN => {
                wire::parse_header(h).and_then(|len| wire::frame_kind(h).map(|k| (len, k)))
            }
            _ => Err(wire::WireError::Malformed),
        };
        let reply = match parsed {
            Ok((len, kind)) => {
                // USB has no "close": a host program's session ends when the next program,
                // which could claim the interface only once the first let it go, starts with
                // a plain request or a handshake. That is a new connection (the old session
                // and its admin window end), not a downgrade of the old session: on a socket
                // the same frame closes the connection, and here that would leave the new
                // program waiting for an answer that never comes.
                if kind != FrameKind::Sealed && conn.in_session() {
                    shared.disconnect(conn);
                    *conn = shared.connect("usb", false);
                }
                // What a connection without a session may send is decided from the header
                // (docs/PROTOCOL.md, "Before a session"); a refused payload is still read off
                // the endpoint, in chunks, to stay in step with the host.
                match preauth::verdict(shared.standing(conn), kind, len) {
                    Verdict::Read => {
                        let mut payload = Zeroizing::new(vec![0u8; len]);
                        if let Err(e) = read_payload(ep_out, &mut payload) {
                            return e;
                        }
                        let mut interim: Option<io::Error> = None;
                        let reply = shared.on_frame(conn, kind, &payload, &mut |frame| {
                            if interim.is_none() {
                                interim = write_frame_usb(ep_in, frame).err();
                            }
                        });
                        if let Some(e) = interim {
                            return e;
                        }
                        reply
                    }
                    Verdict::Refuse => match drain_payload(ep_out, len) {
                        Ok(prefix) => Reply::Send(preauth::refusal(&prefix)),
                        Err(e) => return e,
                    },
                    Verdict::Close => match drain_payload(ep_out, len) {
                        Ok(_) => Reply::Close,
                        Err(e) => return e,
                    },
                }
            }
            Err(e) => {
                tracing::warn!("usb: {e} ({n}-byte transfer where a frame header was expected)");
                Reply::Send(wire::encode(0, &Response::Error(DongleError::Malformed)))
            }
        };
        let (answer, close) = match reply {
            Reply::Send(a) => (Some(a), false),
            Reply::SendAndClose(a) => (Some(a), true),
            Reply::Close => (None, true),
        };
        if let Some(a) = answer
            && let Err(e) = write_frame_usb(ep_in, &a)
        {
            return e;
        }
        if close {
            // USB has no "close": drop the session and wait for the host to start again.
            shared.disconnect(conn);
            *conn = shared.connect("usb", false);
        }
    }
}

/// Set up the function and serve for as long as the process runs. Host resets, disables and
/// unbind/rebind cycles close the endpoints and wait for the next `Enable`; the dongle's
/// state (unlocked keys, counters) is kept across them.
pub fn serve<S, P>(cfg: &FfsConfig, shared: Arc<Shared<S, P>>) -> io::Result<()>
where
    S: Storage + Send + 'static,
    P: Platform + Send + 'static,
{
    let ep0_path = cfg.dir.join("ep0");
    let mut ep0 = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&ep0_path)
        .map_err(io_err("open", &ep0_path))?;
    // A refused write leaves FunctionFS waiting for descriptors, so the older form can follow.
    if let Err(e) = ep0.write_all(&descriptors()) {
        if e.kind() != io::ErrorKind::InvalidInput {
            return Err(io_err("write descriptors to", &ep0_path)(e));
        }
        tracing::debug!("MS OS descriptors 1.00 refused; this kernel wants the older form");
        ep0.write_all(&descriptors_with(MS_OS_BCD_VERSION_OLD_KERNELS))
            .map_err(io_err("write descriptors to", &ep0_path))?;
    }
    ep0.write_all(&strings()).map_err(io_err("write strings to", &ep0_path))?;
    let events = spawn_event_reader(ep0);
    if let Some((udc_file, name)) = &cfg.bind {
        let name = udc_name(name)?;
        std::fs::write(udc_file, format!("{name}\n")).map_err(io_err("bind UDC via", udc_file))?;
        tracing::info!("bound to USB device controller {name}");
    }
    let (in_path, out_path) = (cfg.dir.join("ep1"), cfg.dir.join("ep2"));
    loop {
        // Wait for the host to configure us.
        loop {
            match events.recv_timeout(Duration::from_secs(1)) {
                Ok(Event::Enable) => break,
                Ok(_) | Err(RecvTimeoutError::Timeout) => shared.tick(),
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(io::Error::other("the ep0 event reader stopped"));
                }
            }
        }
        let mut ep_in =
            OpenOptions::new().write(true).open(&in_path).map_err(io_err("open", &in_path))?;
        let mut ep_out =
            OpenOptions::new().read(true).open(&out_path).map_err(io_err("open", &out_path))?;
        tracing::info!("USB host connected");
        let e = serve_endpoints(&mut ep_in, &mut ep_out, &shared);
        tracing::info!("USB endpoints closed ({e}); waiting for the host");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixDatagram;

    use vbzkey_client::{FrameIo, Link, SessionKeys, TransportError};
    use vbzkey_hardware::presence::Indicator;
    use vbzkey_protocol::SecretKey;
    use vbzkey_protocol::stream::Frame;
    use vbzkey_protocol::wire::{Request, parse_header};

    use crate::dongle::{Config, Dongle};
    use crate::keystore::{Binding, KdfParams};
    use crate::platform::{OsPlatform, PresenceGate};
    use crate::storage::MemStorage;
    use crate::transport::Clock;

    /// The host's side of two endpoints made of datagram sockets, which keep transfer
    /// boundaries as USB does: one datagram per bulk transfer.
    struct HostEnds {
        to_dongle: UnixDatagram,
        from_dongle: UnixDatagram,
    }

    impl FrameIo for HostEnds {
        fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
            let (header, payload) = frame.split_at(FRAME_HEADER_LEN);
            self.to_dongle.send(header).map_err(TransportError::Io)?;
            self.to_dongle.send(payload).map_err(TransportError::Io)?;
            Ok(())
        }

        fn recv(&mut self) -> Result<Frame, TransportError> {
            let mut head = [0u8; 512];
            let n = self.from_dongle.recv(&mut head).map_err(TransportError::Io)?;
            let h: &[u8; FRAME_HEADER_LEN] =
                head[..n].try_into().map_err(|_| TransportError::HeaderTransfer(n))?;
            let len = parse_header(h).map_err(TransportError::Frame)?;
            let kind = wire::frame_kind(h).map_err(TransportError::Frame)?;
            let mut body = Zeroizing::new(vec![0u8; len]);
            let mut got = 0;
            while got < len {
                got += self.from_dongle.recv(&mut body[got..]).map_err(TransportError::Io)?;
            }
            Ok((kind, body))
        }

        fn describe(&self) -> String {
            "usb-test".into()
        }
    }

    /// A dongle served on a pair of datagram sockets standing in for the two bulk endpoints;
    /// each call of the returned function is a new host program on that one link.
    fn usb_link(serial: &str) -> impl Fn() -> Box<dyn FrameIo> {
        let (dongle_out, host_out) = UnixDatagram::pair().unwrap();
        let (dongle_in, host_in) = UnixDatagram::pair().unwrap();
        host_in.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let cfg = Config { kdf: KdfParams::TEST_ONLY_WEAK, ..Config::default() };
        let binding = Binding { serial: serial.into(), device_secret: None };
        let clock = Clock::default();
        let platform = OsPlatform::new(Indicator::default());
        let dongle =
            Dongle::start(cfg, MemStorage::default(), platform, binding, clock.now()).unwrap();
        let gate = PresenceGate::new(None, Indicator::default(), Duration::from_secs(2));
        let shared = Shared::new(dongle, clock, gate);
        std::thread::spawn(move || {
            let mut ep_in = File::from(OwnedFd::from(dongle_in));
            let mut ep_out = File::from(OwnedFd::from(dongle_out));
            serve_endpoints(&mut ep_in, &mut ep_out, &shared)
        });
        move || -> Box<dyn FrameIo> {
            Box::new(HostEnds {
                to_dongle: host_out.try_clone().unwrap(),
                from_dongle: host_in.try_clone().unwrap(),
            })
        }
    }

    /// Programs come and go on one USB link (an admin command with a host key, then a plain
    /// `info`, then another session): each is served at once, where a new program's first
    /// frame after another's session used to close the "connection" without an answer, so the
    /// program waited 30 s for nothing.
    #[test]
    fn each_program_on_the_usb_link_is_answered_after_another_ones_session() {
        let program = usb_link("USBTEST1");
        let keys = SessionKeys::new(&SecretKey::derive(&[7; 32]), None);
        let hello = |link: &mut Link| matches!(link.call(&Request::Hello), Ok(Response::Hello(_)));

        let mut admin = Link::open(program(), Some(&keys)).expect("a session");
        assert!(hello(&mut admin));
        drop(admin);
        let mut info = Link::open(program(), None).unwrap();
        assert!(hello(&mut info), "a plain program after a session is answered");
        drop(info);
        let mut again = Link::open(program(), Some(&keys)).expect("a session after a session");
        assert!(hello(&mut again));
        drop(again);
        let mut again = Link::open(program(), Some(&keys)).expect("and once more");
        assert!(hello(&mut again));
    }

    /// On USB the dongle cannot see one program end and the next begin. Were an admin window
    /// opened outside a session, an admin command that dies before `EndAdmin` (Ctrl-C at the
    /// button prompt, SIGKILL) would leave it to the next program of any local user, who
    /// could rotate and retire keys knowing no PIN. So a plain `AdminAuth` is refused, and a
    /// window opened in a session is not inherited by the next program, plain or in a
    /// session of its own.
    #[test]
    fn an_admin_window_opened_over_plain_usb_does_not_serve_the_next_program() {
        let program = usb_link("USBTEST2");
        let admin_pin = || wire::Pin::new(b"admin-2468");
        let auth = || Request::AdminAuth { admin_pin: admin_pin(), unlock_secret: None };
        // Outside a session, no admin window opens at all: nothing ties it to one program.
        let mut plain = Link::open(program(), None).unwrap();
        let init = Request::Init { pin: Some(wire::Pin::new(b"135790")), admin_pin: admin_pin() };
        assert!(matches!(plain.call(&init), Ok(Response::PublicKeys(_))));
        assert_eq!(plain.call(&auth()).unwrap(), Response::Error(DongleError::NotAllowed));
        drop(plain);
        // The admin tool (a host key made for the process), interrupted after `AdminAuth`.
        let keys = SessionKeys::ephemeral(vbzkey_client::DevicePin::Ask).unwrap();
        let mut admin = Link::open(program(), Some(&keys)).unwrap();
        assert!(matches!(admin.call(&auth()), Ok(Response::Ok)));
        drop(admin);
        // The next programs of the staff user, knowing nothing: plain, or a session of their own.
        let mut other = Link::open(program(), None).unwrap();
        let rotated = other.call(&Request::Rotate).unwrap();
        assert_eq!(
            rotated,
            Response::Error(DongleError::AdminRequired),
            "the next program on the USB link used the admin window of the one before"
        );
        drop(other);
        let theirs = SessionKeys::ephemeral(vbzkey_client::DevicePin::Ask).unwrap();
        let mut other = Link::open(program(), Some(&theirs)).unwrap();
        assert_eq!(
            other.call(&Request::Rotate).unwrap(),
            Response::Error(DongleError::AdminRequired)
        );
    }

    /// The blob, byte for byte, as laid out by `struct usb_functionfs_descs_head_v2` and the
    /// USB 2.0 descriptor formats (Documentation/usb/functionfs.rst, include/uapi/linux/usb/
    /// functionfs.h, USB 2.0 §9.6.5 and §9.6.6).
    #[test]
    fn descriptor_blob_matches_the_kernel_layout() {
        #[rustfmt::skip]
        let mut want: Vec<u8> = vec![
            3, 0, 0, 0,             // FUNCTIONFS_DESCRIPTORS_MAGIC_V2
            189, 0, 0, 0,           // total length
            11, 0, 0, 0,            // flags: HAS_FS_DESC | HAS_HS_DESC | HAS_MS_OS_DESC
            3, 0, 0, 0,             // fs_count
            3, 0, 0, 0,             // hs_count
            2, 0, 0, 0,             // os_count
            // full speed
            9, 4, 0, 0, 2, 0xff, 0, 0, 1,   // interface 0, alt 0, 2 endpoints, vendor class, iInterface 1
            7, 5, 0x81, 2, 64, 0, 0,        // EP1 IN bulk, 64 bytes
            7, 5, 0x02, 2, 64, 0, 0,        // EP2 OUT bulk, 64 bytes
            // high speed
            9, 4, 0, 0, 2, 0xff, 0, 0, 1,
            7, 5, 0x81, 2, 0, 2, 0,         // 512 bytes
            7, 5, 0x02, 2, 0, 2, 0,
            // MS OS 1.0 extended compatible ID (Microsoft OS 1.0 Descriptors Specification)
            0, 35, 0, 0, 0, 0x00, 0x01, 4, 0, 1, 0,  // interface 0, dwLength, bcdVersion 1.00, wIndex 4, bCount 1
            0, 1, b'W', b'I', b'N', b'U', b'S', b'B', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            // MS OS 1.0 extended property
            0, 84, 0, 0, 0, 0x00, 0x01, 5, 0, 1, 0,  // interface 0, dwLength, bcdVersion 1.00, wIndex 5, wCount 1
            73, 0, 0, 0,            // dwSize = 14 + 20 + 39
            1, 0, 0, 0,             // REG_SZ
            20, 0,                  // name length, NUL included
        ];
        want.extend_from_slice(b"DeviceInterfaceGUID\0");
        want.extend_from_slice(&[39, 0, 0, 0]);
        want.extend_from_slice(b"{c72e16c5-09b9-4e07-8357-63ec2d434aa2}\0");
        assert_eq!(descriptors(), want);
        assert_eq!(want.len(), 189);
        // The form for older kernels: only the two bcdVersion fields differ.
        let old = descriptors_with(MS_OS_BCD_VERSION_OLD_KERNELS);
        let diff: Vec<usize> = (0..want.len()).filter(|&i| want[i] != old[i]).collect();
        assert_eq!(diff, [75, 76, 110, 111]);
        assert_eq!((old[75], old[76], old[110], old[111]), (1, 0, 1, 0));
    }

    #[test]
    fn strings_blob_matches_the_kernel_layout() {
        let mut want = vec![2, 0, 0, 0, 25, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0x09, 0x04];
        want.extend_from_slice(b"vbzkey\0");
        assert_eq!(strings(), want);
    }

    #[test]
    fn events_decode() {
        let ev = |t: u8, req_type: u8| {
            let mut raw = [0u8; EVENT_LEN];
            raw[0] = req_type;
            raw[8] = t;
            parse_event(&raw)
        };
        assert_eq!(ev(2, 0), Some(Event::Enable));
        assert_eq!(ev(3, 0), Some(Event::Disable));
        assert_eq!(ev(0, 0), Some(Event::Bind));
        assert_eq!(ev(1, 0), Some(Event::Unbind));
        assert_eq!(ev(4, 0xc1), Some(Event::Setup { in_direction: true }));
        assert_eq!(ev(4, 0x41), Some(Event::Setup { in_direction: false }));
        assert_eq!(ev(9, 0), None);
    }
}
