//! `vbzkey-bridge`: the workstation daemon. Reads its TOML configuration, serves the
//! localhost API on 127.0.0.1 and ::1, and forwards to the configured key method.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::TcpListener;
use vbzkey_host_bridge::config::{Config, ConfigError};
use vbzkey_host_bridge::http;
use vbzkey_host_bridge::method::KeyMethod;
use vbzkey_os::exit::{self, Exit};

/// This tool's name in its error lines.
const TOOL: &str = "vbzkey-bridge";

#[derive(Parser)]
#[command(
    name = "vbzkey-bridge",
    version,
    about = "The vbzkey workstation bridge: opens sealed fields for the store's admin page, with the staff member's key.",
    after_help = format!("Example:\n  vbzkey-bridge --config /etc/vbzkey/bridge.toml\n\
                  The configuration names the allowed store origins and the key method; see \
                  docs/OPERATIONS.md. With --port 0 a free port is chosen; the first line on \
                  stdout says which.\n\n{}",
                  vbzkey_os::exit::Exit::help())
)]
struct Cli {
    /// The configuration file (TOML).
    #[arg(long)]
    config: PathBuf,
    /// Override the configured port (0: any free port).
    #[arg(long)]
    port: Option<u16>,
}

/// How often idle locks are checked.
const TICK: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colours(std::io::IsTerminal::is_terminal(&std::io::stderr())))
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
    if let Err(e) = vbzkey_os::harden::no_core_dumps() {
        tracing::warn!("could not disable core dumps: {e}");
    }
    let mut config = match Config::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            exit::error(TOOL, e);
            return Exit::Config.into();
        }
    };
    if let Some(p) = cli.port {
        config.port = p;
    }
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                exit::error(TOOL, format_args!("cannot start: {e}"));
                return Exit::Io.into();
            }
        };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            exit::error(TOOL, &e);
            exit_code(&e).into()
        }
    }
}

/// Colours only for a person at a terminal who has not asked for none (`NO_COLOR` set and not
/// empty, <https://no-color.org>): escape codes in the journal or a log file are noise that
/// hides the message.
fn colours(stderr_is_terminal: bool) -> bool {
    stderr_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A start refused over its configuration (a key file, a host key) exits 78 (EX_CONFIG), like
/// a configuration file that does not parse: systemd does not retry it. Anything else is an
/// I/O failure (1). The codes are the table all vbzkey tools share (docs/CLI.md).
fn exit_code(e: &ServeError) -> Exit {
    match e {
        ServeError::Config(_) => Exit::Config,
        ServeError::Listen { .. } | ServeError::Http(_) => Exit::Io,
    }
}

/// Why the bridge stopped serving.
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Listen { port: u16, source: std::io::Error },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
}

async fn serve(mut config: Config) -> Result<(), ServeError> {
    let port = config.port;
    let listen = |source| ServeError::Listen { port, source };
    let v4 = TcpListener::bind(("127.0.0.1", port)).await.map_err(listen)?;
    config.port = v4.local_addr().map_err(listen)?.port();
    let v6 = match TcpListener::bind(("::1", config.port)).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!("not listening on [::1]:{} ({e}); IPv4 loopback only", config.port);
            None
        }
    };
    let method: Arc<dyn KeyMethod> = Arc::from(config.key_method()?);
    let app = http::router(config.http(), Arc::clone(&method));
    println!(
        "vbzkey-bridge listening on http://127.0.0.1:{} (method {})",
        config.port,
        method.name()
    );
    tracing::info!("allowed origins: {:?}", config.allowed_origins);

    let ticker = {
        let method = Arc::clone(&method);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                let m = Arc::clone(&method);
                let _ = tokio::task::spawn_blocking(move || m.tick()).await;
            }
        })
    };
    let shutdown = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    let serve_v6 = async {
        match v6 {
            Some(l) => axum::serve(l, app.clone()).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = axum::serve(v4, app.clone()) => r.map_err(ServeError::Http)?,
        r = serve_v6 => r.map_err(ServeError::Http)?,
        () = shutdown => tracing::info!("stopping"),
    }
    ticker.abort();
    // Forget any key the bridge holds before exiting.
    let _ = tokio::task::spawn_blocking(move || method.lock()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_refused_over_configuration_exits_78_like_a_bad_file() {
        let config_err = ConfigError::KeyUnusable("/etc/vbzkey/key.json: not a key file".into());
        assert_eq!(exit_code(&ServeError::Config(config_err)).code(), 78);
        let listen = ServeError::Listen { port: 1, source: std::io::ErrorKind::AddrInUse.into() };
        assert_eq!(exit_code(&listen).code(), 1);
    }
}
