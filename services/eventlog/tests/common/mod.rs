//! Helpers shared by the Kafka integration tests: a real tansu broker (Kafka protocol)
//! on a free 127.0.0.1 port, started from the binary `ops/dev/install-tansu` installs,
//! ready when it accepts connections, killed on drop.
//!
//! The binary is looked up in this order: `$TANSU_BIN`, `~/.cargo/bin/tansu` (a
//! durable build, if someone installed one), `ops/dev/.cache/bin/tansu` (the wheel's
//! memory-only build). Without one the test fails saying to run ops/dev/install-tansu.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A tansu broker process; killed (SIGKILL) when dropped.
pub struct TansuBroker {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl TansuBroker {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_on(free_port()?)
    }

    /// Starts a broker on `port` (e.g. the port of one that was killed) and waits until
    /// it accepts connections.
    pub fn start_on(port: u16) -> anyhow::Result<Self> {
        let bin = tansu_bin()?;
        let addr = format!("127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("hotline-tansu-{port}.log"));
        let out =
            std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let err = out.try_clone()?;
        let child = Command::new(&bin)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://{addr}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://{addr}"))
            .arg("--storage-engine")
            .arg("memory://tansu/")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let mut broker = Self {
            child: Some(child),
            port,
            log,
        };
        broker.wait_ready(Duration::from_secs(20))?;
        Ok(broker)
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it with SIGKILL (as a crash would) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_ready(&mut self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                bail!(
                    "tansu exited ({status}) before accepting connections on {}:\n{log}",
                    self.addr()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "tansu did not accept connections on {} within {within:?}",
                    self.addr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The tansu binary to run, or an error saying how to install one.
pub fn tansu_bin() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("TANSU_BIN") {
        return Ok(PathBuf::from(bin));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let durable = PathBuf::from(home).join(".cargo/bin/tansu");
        if durable.is_file() {
            return Ok(durable);
        }
    }
    let installed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ops/dev/.cache/bin/tansu");
    if installed.is_file() {
        return Ok(installed);
    }
    bail!(
        "no tansu binary at {}; run ops/dev/install-tansu (or set TANSU_BIN)",
        installed.display()
    )
}

/// A port nothing listens on now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Polls `check` until it returns `Some`, or fails after `within` with `what`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await? {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
