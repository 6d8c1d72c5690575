//! Runs inside the USB test VM (`tests/usb-vm/run.sh`): the firmware serves FunctionFS on the
//! gadget side of `dummy_hcd`; this program, on the host side of the same kernel, checks the
//! real USB path and prints one machine-readable line, `VBZKEY-USB-RESULT {json}`.
//!
//! 1. the project's client (`vbzkey-client`: rusb, libusb) finds the dongle by VID:PID: Hello;
//!    the Microsoft OS descriptors Windows reads to bind WinUSB, and the bus power asked for;
//! 2. a malformed frame sent with raw libusb gets an error answer, and the link still works;
//! 3. the real bridge binary over HTTP: status, a wrong PIN, the PIN, a batch of records
//!    sealed outside the VM by the CLI;
//! 4. "unplug": the UDC is unbound (the bridge reports the dongle absent) and rebound (the
//!    bridge recovers without a restart and opens the batch again).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusb::UsbContext;
use serde_json::{Value, json};
use vbzkey_client::usb::{DEFAULT_PID, DEFAULT_VID, find_interface};
use vbzkey_client::{Client, ConnectOptions, DongleAddr};
use vbzkey_e2e::http;
use vbzkey_protocol::wire::{self, DongleError, Response};

const ORIGIN: &str = "http://127.0.0.1:8080";
const PORT: u16 = 7878;

struct Args {
    bridge: PathBuf,
    records: PathBuf,
    udc_file: PathBuf,
    udc: String,
    pin: String,
    serial: String,
    /// The lines `vbzkey-admin pair` printed for the bridge (host key, device key, serial).
    bridge_keys: PathBuf,
}

fn args() -> Args {
    let mut a = std::env::args().skip(1);
    let mut get = |name: &str| -> String {
        match (a.next(), a.next()) {
            (Some(k), Some(v)) if k == name => v,
            _ => panic!(
                "usage: usb-vm-probe --bridge B --records R --udc-file F --udc U --pin P --serial S \
                 --bridge-keys K"
            ),
        }
    };
    Args {
        bridge: get("--bridge").into(),
        records: get("--records").into(),
        udc_file: get("--udc-file").into(),
        udc: get("--udc"),
        pin: get("--pin"),
        serial: get("--serial"),
        bridge_keys: get("--bridge-keys").into(),
    }
}

fn wait_for<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> Result<T, String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn dongle_device() -> Result<rusb::Device<rusb::Context>, String> {
    let ctx = rusb::Context::new().map_err(|e| e.to_string())?;
    let devices = ctx.devices().map_err(|e| e.to_string())?;
    devices
        .iter()
        .find(|d| {
            d.device_descriptor()
                .is_ok_and(|x| x.vendor_id() == DEFAULT_VID && x.product_id() == DEFAULT_PID)
        })
        .ok_or_else(|| "no dongle".to_string())
}

/// What Windows reads before it picks a driver (Microsoft OS 1.0 Descriptors Specification):
/// string descriptor 0xEE ("MSFT100" and a vendor code, language 0), then with that vendor
/// code the extended compatible ID (device, wIndex 4) and the extended properties (interface
/// 0, wIndex 5). True when they name WinUSB and the interface GUID; the bus power too.
fn windows_descriptors(out: &mut serde_json::Map<String, Value>) -> Result<(), String> {
    let device = dongle_device()?;
    let config = device.active_config_descriptor().map_err(|e| e.to_string())?;
    out.insert("max_power_ma".into(), json!(config.max_power()));
    let h = device.open().map_err(|e| e.to_string())?;
    let t = Duration::from_secs(5);
    let mut buf = [0u8; 255];
    let n = h.read_control(0x80, 6, 0x03ee, 0, &mut buf, t).map_err(|e| format!("0xEE: {e}"))?;
    let sign: Vec<u8> = "MSFT100".encode_utf16().flat_map(u16::to_le_bytes).collect();
    if n < 18 || buf[1] != 3 || buf[2..16] != sign[..] {
        return Err(format!("string 0xEE is not an MS OS string: {:02x?}", &buf[..n]));
    }
    let vendor_code = buf[16];
    let n = h.read_control(0xc0, vendor_code, 0, 4, &mut buf, t).map_err(|e| e.to_string())?;
    // 16-byte header (length, bcdVersion 1.00, wIndex 4, count 1), then per function:
    // first interface, 1, compatible ID (8), sub-compatible ID (8), 6 reserved.
    let compat =
        n == 40 && buf[4..8] == [0, 1, 4, 0] && buf[8] == 1 && &buf[18..26] == b"WINUSB\0\0";
    out.insert("ms_os_compat_id_winusb".into(), json!(compat));
    let n = h.read_control(0xc1, vendor_code, 0, 5, &mut buf, t).map_err(|e| e.to_string())?;
    // 10-byte header (length, bcdVersion, wIndex 5, count), then size, type, name, value.
    let utf16 = |t: &str| -> Vec<u8> { t.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let has = |b: &[u8], t: &str| b.windows(2 * t.len()).any(|w| w == utf16(t));
    let prop = n > 10
        && buf[6..8] == [5, 0]
        && has(&buf[..n], "DeviceInterfaceGUID\0")
        && has(&buf[..n], "{c72e16c5-09b9-4e07-8357-63ec2d434aa2}\0");
    out.insert("ms_os_interface_guid".into(), json!(prop));
    Ok(())
}

/// A frame that is not a frame, over raw libusb: the dongle answers Malformed and the
/// interface keeps working.
fn malformed_frame() -> Result<bool, String> {
    let device = dongle_device()?;
    let (iface, ep_in, ep_out) = find_interface(&device).ok_or("no vendor interface")?;
    let h = device.open().map_err(|e| e.to_string())?;
    h.claim_interface(iface).map_err(|e| e.to_string())?;
    let t = Duration::from_secs(10);
    h.write_bulk(ep_out, b"GARBAGE!", t).map_err(|e| e.to_string())?;
    let mut head = [0u8; 512];
    let n = h.read_bulk(ep_in, &mut head, t).map_err(|e| e.to_string())?;
    let len = wire::parse_header(head[..8].try_into().map_err(|_| format!("{n}-byte header"))?)
        .map_err(|e| e.to_string())?;
    let mut body = vec![0u8; len];
    let mut got = 0;
    while got < len {
        got += h.read_bulk(ep_in, &mut body[got..], t).map_err(|e| e.to_string())?;
    }
    let (_, resp): (u32, Response) = wire::decode(&body).map_err(|(_, e)| e.to_string())?;
    let _ = h.release_interface(iface);
    Ok(resp == Response::Error(DongleError::Malformed))
}

/// The bridge process, stopped when dropped (on every path out of `run`).
struct BridgeProcess(Child);

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_bridge(a: &Args) -> Result<BridgeProcess, String> {
    // The bridge is a paired host: its key file and the dongle's pinned key, as `pair` printed.
    let paired = std::fs::read_to_string(&a.bridge_keys)
        .map_err(|e| format!("the pairing lines {}: {e}", a.bridge_keys.display()))?;
    let config = format!(
        "port = {PORT}\nallowed_origins = [\"{ORIGIN}\"]\n[method]\nkind = \"dongle\"\ntransport = \"usb\"\n{paired}"
    );
    std::fs::write("/tmp/bridge.toml", config).map_err(|e| format!("write config: {e}"))?;
    let child = Command::new(&a.bridge)
        .args(["--config", "/tmp/bridge.toml"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("start the bridge: {e}"))?;
    let bridge = BridgeProcess(child);
    let _ = wait_for("the bridge", 30, || std::net::TcpStream::connect(("127.0.0.1", PORT)).ok());
    Ok(bridge)
}

fn post(path: &str, body: &Value) -> (u16, Value) {
    let host = format!("127.0.0.1:{PORT}");
    let r = http(
        PORT,
        "POST",
        path,
        &[("Host", &host), ("Origin", ORIGIN), ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
}

fn status() -> Value {
    let host = format!("127.0.0.1:{PORT}");
    serde_json::from_slice(
        &http(PORT, "GET", "/v1/status", &[("Host", &host), ("Sec-Fetch-Site", "none")], b"").body,
    )
    .unwrap_or(Value::Null)
}

fn unseal_ok(records: &[Value]) -> usize {
    let items: Vec<Value> =
        records.iter().map(|r| json!({ "record": r["record"], "context": r["context"] })).collect();
    let (code, body) = post("/v1/unseal", &json!({ "items": items }));
    if code != 200 {
        return 0;
    }
    body["results"]
        .as_array()
        .map_or(0, |res| res.iter().zip(records).filter(|(x, r)| x["value"] == r["value"]).count())
}

fn run(a: &Args, out: &mut serde_json::Map<String, Value>) -> Result<(), String> {
    let records: Vec<Value> =
        serde_json::from_slice(&std::fs::read(&a.records).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    out.insert("records".into(), json!(records.len()));

    // 1. Hello through the project's client, over USB.
    let client = Client::for_addr(&DongleAddr::USB, ConnectOptions::default());
    let hello = wait_for("the dongle to enumerate", 30, || client.hello().ok())?;
    out.insert("link".into(), json!(client.describe()));
    out.insert("hello".into(), json!(hello.serial == a.serial));
    drop(client);
    windows_descriptors(out)?;

    // 2. A malformed frame on raw libusb.
    out.insert("malformed_frame_refused".into(), json!(malformed_frame()?));

    // 3. The real bridge over HTTP.
    let _bridge = start_bridge(a)?;
    let st = status();
    out.insert(
        "bridge_status_locked".into(),
        json!(st["state"] == "locked" && st["serial"] == a.serial.as_str()),
    );
    let (code, body) = post("/v1/unlock", &json!({ "pin": "000000" }));
    out.insert("wrong_pin_refused".into(), json!(code == 401 && body["tries_left"] == 7));
    let (code, _) = post("/v1/unlock", &json!({ "pin": a.pin }));
    out.insert("unlocked".into(), json!(code == 200));
    out.insert("unsealed".into(), json!(unseal_ok(&records)));

    // 4. Unplug (unbind the UDC) and replug (bind it again).
    std::fs::write(&a.udc_file, "\n").map_err(|e| format!("unbind: {e}"))?;
    let absent = wait_for("the bridge to notice the unplug", 30, || {
        (status()["state"] == "absent").then_some(())
    });
    out.insert("unplug_seen_as_absent".into(), json!(absent.is_ok()));
    std::fs::write(&a.udc_file, format!("{}\n", a.udc)).map_err(|e| format!("rebind: {e}"))?;
    let back = wait_for("the bridge to see the dongle again", 30, || {
        let s = status()["state"].clone();
        (s == "locked" || s == "unlocked").then_some(s)
    });
    out.insert("replug_seen".into(), json!(back.is_ok()));
    if back.as_ref().is_ok_and(|s| s == "locked") {
        post("/v1/unlock", &json!({ "pin": a.pin }));
    }
    out.insert("unsealed_after_replug".into(), json!(unseal_ok(&records)));
    Ok(())
}

fn main() {
    let a = args();
    let mut out = serde_json::Map::new();
    if let Err(e) = run(&a, &mut out) {
        out.insert("error".into(), json!(e));
    }
    let n = out.get("records").and_then(Value::as_u64).unwrap_or(0);
    let ok = n > 0
        && [
            "hello",
            "ms_os_compat_id_winusb",
            "ms_os_interface_guid",
            "malformed_frame_refused",
            "bridge_status_locked",
            "wrong_pin_refused",
            "unlocked",
            "unplug_seen_as_absent",
            "replug_seen",
        ]
        .iter()
        .all(|k| out.get(*k) == Some(&json!(true)))
        && out.get("max_power_ma") == Some(&json!(500))
        && out.get("unsealed").and_then(Value::as_u64) == Some(n)
        && out.get("unsealed_after_replug").and_then(Value::as_u64) == Some(n);
    out.insert("ok".into(), json!(ok));
    println!("VBZKEY-USB-RESULT {}", Value::Object(out));
}
