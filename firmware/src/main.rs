//! `vbzkey-firmware`: the dongle program. `serve` runs the self-test, then serves the wire
//! protocol on one transport; `self-test` runs the known-answer tests and a seal/open loop.
#![forbid(unsafe_code)]

mod otp_cmd;

use std::hint::black_box;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use vbzkey_firmware::dongle::{Config, Dongle};
use vbzkey_firmware::keystore::{self, Binding, KdfParams};
use vbzkey_firmware::platform::{OsPlatform, PresenceGate};
use vbzkey_firmware::selftest;
use vbzkey_firmware::storage::DirStorage;
use vbzkey_firmware::transport::{self, Clock, Shared, ffs, socket};
use vbzkey_hardware::gpio::CdevPin;
use vbzkey_hardware::identity::{DeviceIdentity, FixedIdentity, PiIdentity};
use vbzkey_hardware::presence::{ButtonInput, FifoInput, Indicator, PresenceInput};
use vbzkey_os::exit::{self, Exit};
use vbzkey_protocol::endpoint::Endpoint;
use vbzkey_protocol::{SecretKey, record};

/// Exit code when the self-test fails (EX_SOFTWARE), from the table all vbzkey tools share.
const EXIT_SELF_TEST: u8 = Exit::SelfTest.code();
/// Exit code for configuration and start-up errors (EX_CONFIG).
const EXIT_CONFIG: u8 = Exit::Config.code();
/// This tool's name in its error lines.
const TOOL: &str = "vbzkey-firmware";

#[derive(Parser)]
#[command(
    name = "vbzkey-firmware",
    version,
    about = "The vbzkey dongle firmware.",
    after_help = Exit::help()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the wire protocol on one transport.
    #[command(after_help = "Examples:\n  \
        vbzkey-firmware serve --state-dir /var/lib/vbzkey --transport ffs:/dev/ffs-vbzkey \\\n    \
        --udc auto --gadget /sys/kernel/config/usb_gadget/vbzkey\n  \
        vbzkey-firmware serve --state-dir /tmp/dongle --transport unix:/tmp/dongle.sock \\\n    \
        --identity dangerous-fixed:EMULATED0001")]
    Serve(Box<ServeArgs>),
    /// Run the known-answer tests and a seal/open loop, then exit.
    #[command(after_help = "Example:\n  vbzkey-firmware self-test --loops 200 --kdf-timing")]
    SelfTest {
        /// Seal/open round trips to run after the known-answer tests.
        #[arg(long, default_value_t = 200)]
        loops: u32,
        /// Also time one Argon2id derivation at the Pi Zero parameters.
        #[arg(long)]
        kdf_timing: bool,
        /// Print the results as one JSON object (times in nanoseconds).
        #[arg(long)]
        json: bool,
    },
    /// The OTP device secret: status, program (once), lock, and the boot-time save.
    #[command(subcommand)]
    Otp(otp_cmd::OtpCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Directory for the key store, PIN counter and audit log (created 0700).
    #[arg(long)]
    state_dir: PathBuf,
    /// `ffs:MOUNTPOINT`, `unix:PATH` or `tcp:HOST:PORT` (the LAN key server).
    #[arg(long)]
    transport: String,
    /// With ffs: bind this USB device controller (`auto`: the only one) once ready.
    #[arg(long)]
    udc: Option<String>,
    /// With --udc: the configfs gadget directory.
    #[arg(long, default_value = "/sys/kernel/config/usb_gadget/vbzkey")]
    gadget: PathBuf,
    /// `pi` (serial from the device tree, OTP from --otp-dump) or `dangerous-fixed:SERIAL`
    /// for an emulated dongle, whose key store is then protected by its PIN (and by the
    /// --otp-dump file, if given, standing in for the board's fuses).
    #[arg(long, default_value = "pi")]
    identity: String,
    /// File holding OTP rows 36-43 as `vcgencmd otp_dump` prints them (written at boot by
    /// `vbzkey-firmware otp save` in vbzkey-otp.service).
    #[arg(long)]
    otp_dump: Option<PathBuf>,
    /// Status LED as CHIP:LINE, e.g. /dev/gpiochip0:17.
    #[arg(long)]
    led: Option<String>,
    /// Confirm button (to ground, pull-up) as CHIP:LINE: the physical presence that backup,
    /// clone, pairing, PIN resets and factory reset need.
    #[arg(long)]
    button: Option<String>,
    /// An emulated dongle's button: a FIFO (made with mkfifo) to which a line is written for
    /// each press. Whoever can write it can press: keep it as private as --state-dir.
    #[arg(long, conflicts_with = "button")]
    presence_fifo: Option<PathBuf>,
    /// Seconds the dongle waits for a press before refusing the request.
    #[arg(long, default_value_t = vbzkey_protocol::wire::PRESENCE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(2..=120))]
    presence_timeout_secs: u64,
    /// Wrong staff PINs before the staff lock-out.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=32))]
    max_pin_tries: u8,
    /// Wrong admin PINs before the admin lock-out.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=32))]
    max_admin_tries: u8,
    /// Seconds without key use before the staff unlock ends.
    #[arg(long, default_value_t = 900)]
    idle_lock_secs: u64,
    /// Seconds without an admin request before an admin window closes.
    #[arg(long, default_value_t = 300)]
    admin_idle_secs: u64,
    /// Records per minute (token bucket refill).
    #[arg(long, default_value_t = 600)]
    records_per_minute: u32,
    /// Audit lines hosts may cause per minute (and at once): bounds how fast the log grows.
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    log_lines_per_minute: u32,
    /// Batches larger than this need a button press.
    #[arg(long)]
    confirm_batch_over: Option<u16>,
    /// Use the weakest Argon2 cost for new key stores. Only for tests: a stolen card would
    /// fall to PIN guessing at full speed.
    #[arg(long)]
    dangerous_weak_kdf: bool,
    /// Serve even if memory cannot be locked while swap is active (keys and PINs may then be
    /// written to the swap device). For development machines only.
    #[arg(long)]
    dangerous_allow_swap: bool,
}

fn main() -> ExitCode {
    // Colours only for a person at a terminal: escape codes in the journal or a log file are
    // noise that hides the message.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            return exit::command_line(TOOL, &e.render().to_string(), e.use_stderr());
        }
    };
    match cli.command {
        Command::SelfTest { loops, kdf_timing, json } => self_test(loops, kdf_timing, json),
        Command::Otp(cmd) => otp_cmd::run(cmd),
        Command::Serve(args) => match serve(*args) {
            Ok(()) => ExitCode::SUCCESS,
            Err((code, msg)) => {
                exit::error(TOOL, msg);
                ExitCode::from(code)
            }
        },
    }
}

fn self_test(loops: u32, kdf_timing: bool, json: bool) -> ExitCode {
    if let Err(e) = selftest::run() {
        exit::error(TOOL, e);
        return ExitCode::from(EXIT_SELF_TEST);
    }
    let key = SecretKey::derive(b"vbzkey self-test loop key seed..");
    let ctx = b"cust_cards/1/card_number";
    let value = [b'4'; 32];
    // Time the bare DH and the full open in the same run: their ratio is what matters on an
    // emulated CPU, whose absolute speed means nothing.
    let peer = *key.public_key().as_bytes();
    let t = Instant::now();
    for _ in 0..loops {
        black_box(vbzkey_x25519::x25519(black_box(&[7u8; 32]), black_box(&peer)));
    }
    let dh = t.elapsed();
    let mut open = Duration::ZERO;
    for i in 0..loops {
        let rec = match record::seal(key.public_key(), ctx, &value) {
            Ok(r) => r,
            Err(e) => {
                exit::error(TOOL, format_args!("self-test failed: seal in loop {i}: {e}"));
                return ExitCode::from(EXIT_SELF_TEST);
            }
        };
        let t = Instant::now();
        let ok = record::open(&key, ctx, &rec).map(|pt| pt[..] == value[..]);
        open += t.elapsed();
        if ok != Ok(true) {
            exit::error(TOOL, format_args!("self-test failed: open in loop {i}"));
            return ExitCode::from(EXIT_SELF_TEST);
        }
    }
    let ratio = if loops == 0 { 0.0 } else { dh.as_secs_f64() / open.as_secs_f64() };
    let mut kdf_result = None;
    if kdf_timing {
        let kdf = KdfParams::PI_ZERO;
        let (wall, cpu) = (Instant::now(), vbzkey_os::cputime::thread_cpu_time());
        if keystore::stretch(kdf, &[0; 16], black_box(b"123456")).is_err() {
            exit::error(TOOL, "self-test failed: Argon2id at the Pi parameters");
            return ExitCode::from(EXIT_SELF_TEST);
        }
        // CPU time is the cost of one PIN guess on this core, whatever else runs here.
        kdf_result = Some((kdf, vbzkey_os::cputime::thread_cpu_time() - cpu, wall.elapsed()));
    }
    let peak = peak_memory_kib();
    if json {
        let v = serde_json::json!({
            "ok": true,
            "loops": loops,
            "x25519": vbzkey_x25519::BACKEND,
            "open_over_dh": ratio,
            "dh_ns": dh.as_nanos() as u64,
            "open_ns": open.as_nanos() as u64,
            "argon2id": kdf_result.map(|(kdf, cpu, wall)| serde_json::json!({
                "m_mib": kdf.m_kib / 1024,
                "t": kdf.t,
                "cpu_ns": cpu.as_nanos() as u64,
                "wall_ns": wall.as_nanos() as u64,
            })),
            "peak_memory_kib": peak,
        });
        println!("{v}");
        return ExitCode::SUCCESS;
    }
    println!(
        "self-test: ok (X25519, HKDF-SHA256, ChaCha20-Poly1305, record known answers; {loops} seal/open loops)"
    );
    println!("x25519: {}", vbzkey_x25519::BACKEND);
    println!("open rate / bare X25519 rate: {ratio:.3} (dh {:?}, open {:?} for {loops})", dh, open);
    if let Some((kdf, cpu, wall)) = kdf_result {
        println!(
            "argon2id at the Pi Zero parameters ({} MiB, t={}): {cpu:?} CPU, {wall:?} wall (one PIN check)",
            kdf.m_kib / 1024,
            kdf.t,
        );
    }
    if let Some(kb) = peak {
        println!("peak memory (VmHWM): {kb} KiB");
    }
    ExitCode::SUCCESS
}

fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn gpio(
    spec: &Option<String>,
    make: fn(&std::path::Path, u32) -> Result<CdevPin, vbzkey_hardware::HwError>,
) -> Result<Option<CdevPin>, String> {
    let Some(spec) = spec else { return Ok(None) };
    let (chip, line) =
        spec.rsplit_once(':').ok_or_else(|| format!("GPIO {spec:?} must be CHIP:LINE"))?;
    let line: u32 = line.parse().map_err(|_| format!("GPIO line in {spec:?} is not a number"))?;
    make(std::path::Path::new(chip), line).map(Some).map_err(|e| e.to_string())
}

/// Keep keys, PINs and plaintexts out of swap: lock all memory, or refuse to serve while swap
/// is active (unless told otherwise). With no swap, an unlockable process is only warned about.
fn lock_memory(allow_swap: bool) -> Result<(), String> {
    let Err(e) = vbzkey_os::harden::lock_all_memory() else { return Ok(()) };
    match vbzkey_os::harden::swap_active() {
        Ok(false) => {
            tracing::warn!("cannot lock memory ({e}); no swap is active, so secrets stay in RAM");
            Ok(())
        }
        _ if allow_swap => {
            tracing::warn!(
                "cannot lock memory ({e}) and swap may be active: secrets may be swapped out"
            );
            Ok(())
        }
        _ => Err(format!(
            "cannot lock memory ({e}) while swap is active: keys and PINs could be written to disk. \
             Raise the memlock limit (LimitMEMLOCK=infinity in the unit), switch swap off \
             (docs: hardware/pi/INSTALL.md), or pass --dangerous-allow-swap on a development machine"
        )),
    }
}

/// The device secret, or `None` with a loud log line when its file is configured but cannot be
/// read: the firmware still serves, so the host sees the dongle's `DeviceSecretMissing` state
/// (if its key store needs the secret) instead of no dongle at all.
fn device_secret(
    identity: &dyn DeviceIdentity,
    otp_dump: Option<&std::path::Path>,
) -> Option<zeroize::Zeroizing<[u8; 32]>> {
    if let Some(p) = otp_dump.filter(|p| !p.exists()) {
        tracing::error!(
            "no OTP file at {}: the boot unit did not save the rows (systemctl status vbzkey-otp)",
            p.display()
        );
    }
    identity.device_secret().unwrap_or_else(|e| {
        tracing::error!("the OTP device secret cannot be read: {e}");
        None
    })
}

fn serve(args: ServeArgs) -> Result<(), (u8, String)> {
    let cfg_err = |m: String| (EXIT_CONFIG, m);
    selftest::run().map_err(|e| (EXIT_SELF_TEST, format!("{e}; refusing to serve")))?;
    if let Err(e) = vbzkey_os::harden::no_core_dumps() {
        tracing::warn!("could not disable core dumps: {e}");
    }
    lock_memory(args.dangerous_allow_swap).map_err(cfg_err)?;

    let identity: Box<dyn DeviceIdentity> = match args.identity.as_str() {
        "pi" => Box::new(PiIdentity { root: "/".into(), otp_dump: args.otp_dump.clone() }),
        other => match other.strip_prefix("dangerous-fixed:") {
            Some(serial) if !serial.is_empty() => {
                tracing::warn!(
                    "fixed identity {serial:?}: the key store is protected by its PIN alone"
                );
                Box::new(FixedIdentity {
                    serial: serial.to_string(),
                    otp_dump: args.otp_dump.clone(),
                })
            }
            _ => {
                return Err(cfg_err(format!(
                    "--identity must be `pi` or `dangerous-fixed:SERIAL`, not {other:?}"
                )));
            }
        },
    };
    let binding = Binding {
        serial: identity.serial().map_err(|e| cfg_err(e.to_string()))?,
        device_secret: device_secret(identity.as_ref(), args.otp_dump.as_deref()),
    };
    // Hosts read the serial in `Hello` with a bound (`wire::MAX_DEVICE_TEXT`): a longer one
    // would make every answer to `Hello` undecodable.
    if binding.serial.len() > vbzkey_protocol::wire::MAX_DEVICE_TEXT {
        return Err(cfg_err(format!(
            "the serial number is longer than {} bytes",
            vbzkey_protocol::wire::MAX_DEVICE_TEXT
        )));
    }
    if binding.device_secret.is_none() && args.identity == "pi" {
        tracing::warn!("no OTP device secret: a copied SD card is protected by the PIN alone");
    }

    let indicator = Indicator::spawn(gpio(&args.led, CdevPin::output).map_err(cfg_err)?);
    let input: Option<Box<dyn PresenceInput>> = match (&args.button, &args.presence_fifo) {
        (Some(_), _) => gpio(&args.button, CdevPin::button)
            .map_err(cfg_err)?
            .map(|b| Box::new(ButtonInput::new(b)) as Box<dyn PresenceInput>),
        (None, Some(fifo)) => {
            tracing::warn!(
                "presence from the FIFO {}: whoever can write it can press the button",
                fifo.display()
            );
            Some(Box::new(FifoInput::open(fifo).map_err(|e| cfg_err(e.to_string()))?))
        }
        (None, None) => {
            tracing::warn!(
                "no --button: backup, clone, pairing, PIN resets and factory reset are refused"
            );
            None
        }
    };
    if args.confirm_batch_over.is_some() && input.is_none() {
        return Err(cfg_err("--confirm-batch-over needs --button".into()));
    }
    let platform = OsPlatform::new(indicator.clone());
    let storage = DirStorage::open(&args.state_dir).map_err(|e| {
        cfg_err(format!("cannot use state directory {}: {e}", args.state_dir.display()))
    })?;
    // A RAM-backed state directory (an overlay root) resets the wrong-PIN counter at every
    // power cycle: unlimited PIN guesses for whoever unplugs the dongle between tries.
    if let Ok(Some(fs)) = vbzkey_os::durable::volatile_fs(&args.state_dir) {
        let msg = format!(
            "the state directory {} is on {fs}, which forgets it at every power cycle: the \
             wrong-PIN counter would reset and the audit log vanish. Keep it on a read-write \
             partition (INSTALL.md, \"Power loss\")",
            args.state_dir.display()
        );
        if args.identity == "pi" {
            return Err(cfg_err(msg));
        }
        tracing::warn!("{msg}");
    }
    let config = Config {
        max_pin_tries: args.max_pin_tries,
        max_admin_tries: args.max_admin_tries,
        idle_lock_ms: args.idle_lock_secs.saturating_mul(1000),
        admin_idle_ms: args.admin_idle_secs.saturating_mul(1000),
        presence_input: input.is_some(),
        records_per_minute: args.records_per_minute,
        log_lines_per_minute: args.log_lines_per_minute,
        confirm_batch_over: args.confirm_batch_over,
        kdf: if args.dangerous_weak_kdf { KdfParams::TEST_ONLY_WEAK } else { KdfParams::PI_ZERO },
        ..Config::default()
    };
    let clock = Clock::default();
    let dongle = Dongle::start(config, storage, platform, binding, clock.now())
        .map_err(|e| cfg_err(e.to_string()))?;
    let presence =
        PresenceGate::new(input, indicator, Duration::from_secs(args.presence_timeout_secs));
    let shared = Shared::new(dongle, clock, presence);
    let stop = Arc::new(AtomicBool::new(false));
    let _ticker = transport::spawn_ticker(Arc::clone(&shared), Arc::clone(&stop));

    if let Some(dir) = args.transport.strip_prefix("ffs:").filter(|d| !d.is_empty()) {
        let bind = args.udc.map(|udc| (args.gadget.join("UDC"), udc));
        return ffs::serve(&ffs::FfsConfig { dir: dir.into(), bind }, shared)
            .map_err(|e| (Exit::Io.code(), format!("USB: {e}")));
    }
    let bad = |e: &dyn std::fmt::Display| {
        cfg_err(format!(
            "--transport must be ffs:PATH, unix:PATH or tcp:HOST:PORT, not {:?} ({e})",
            args.transport
        ))
    };
    match args.transport.parse::<Endpoint>().map_err(|e| bad(&e))? {
        Endpoint::Unix(path) => {
            socket::serve_unix(&path, shared, stop).map_err(|e| cfg_err(e.to_string()))
        }
        Endpoint::Tcp { host, port } => {
            let addr: SocketAddr = (host.as_str(), port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| bad(&"the host does not resolve"))?;
            socket::serve_tcp(addr, shared, stop).map_err(|e| cfg_err(e.to_string()))
        }
    }
}
