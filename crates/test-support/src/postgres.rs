//! A private PostgreSQL cluster on a loopback port.
//!
//! Debian's server binaries live in `/usr/lib/postgresql/<version>/bin/`,
//! off `PATH`. `initdb` and `pg_ctl` refuse to run as root, so as root they
//! run as the `postgres` user (`runuser`) and the cluster folder belongs to
//! that user. The cluster trusts local connections and skips fsync: it holds
//! test and development data only.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::process::{
    ensure_port_free, file_len, is_root, log_tail, process_is_running, read_pid_file, run_checked,
};
use crate::start_on_a_free_port;

/// The `bin/` folder of the newest PostgreSQL installed under
/// `/usr/lib/postgresql`, if any.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    service_kit::postgres::newest_installed("initdb")
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
}

/// A private PostgreSQL cluster, stopped (immediately) when dropped.
///
/// Its folder holds `data/` (the cluster), `postgres.log` and the Unix socket.
#[derive(Debug)]
pub struct Postgres {
    bin_dir: PathBuf,
    dir: PathBuf,
    port: u16,
    running: bool,
    // Declared last: the folder is removed only after `Drop` stopped the server.
    _temp: Option<TempDir>,
}

impl Postgres {
    /// Starts a new cluster in a temporary folder on a free port.
    pub fn start() -> anyhow::Result<Postgres> {
        start_on_a_free_port("PostgreSQL", |port| {
            let temp = tempfile::Builder::new()
                .prefix("docket-postgres-")
                .tempdir()
                .context("failed to create a temporary folder for PostgreSQL")?;
            let dir = temp.path().to_path_buf();
            Self::launch(&dir, port, Some(temp))
        })
    }

    /// Starts the cluster kept in `dir` on `port`, creating it if `dir` holds
    /// none yet. Data survives between runs (`cargo xtask up` uses this).
    ///
    /// A server left running in `dir` by an earlier run that was killed is
    /// stopped first, so the cluster comes up on the port asked for.
    pub fn start_in(dir: &Path, port: u16) -> anyhow::Result<Postgres> {
        fs::create_dir_all(dir)
            .with_context(|| format!("failed to create PostgreSQL folder {}", dir.display()))?;
        Self::launch(dir, port, None)
    }

    fn launch(dir: &Path, port: u16, temp: Option<TempDir>) -> anyhow::Result<Postgres> {
        let bin_dir = postgres_bin_dir().context(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin; \
             install the `postgresql` package (`cargo xtask up` and `cargo xtask test` do it)",
        )?;
        // Absolute, because the commands run with the cluster folder as their
        // working directory and the path is handed to the server.
        let dir = dir
            .canonicalize()
            .with_context(|| format!("PostgreSQL folder {} is not usable", dir.display()))?;
        let mut postgres = Postgres {
            bin_dir,
            dir,
            port,
            running: false,
            _temp: temp,
        };
        if is_root() {
            run_checked(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&postgres.dir),
                "chown of the PostgreSQL folder to the `postgres` user",
            )?;
        }
        if !postgres.data_dir().join("PG_VERSION").is_file() {
            postgres.init()?;
        }
        postgres.skip_fsync()?;
        postgres.stop_leftover_server()?;
        postgres.start_again()?;
        Ok(postgres)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's folder (`data/`, the log, the socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// Whether the server process is alive.
    pub fn is_running(&self) -> bool {
        self.running
            && read_pid_file(&self.data_dir().join("postmaster.pid"))
                .is_some_and(process_is_running)
    }

    /// Stops the server with a fast shutdown; the data is kept.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if !self.running {
            return Ok(());
        }
        self.pg_ctl_stop("fast")?;
        self.running = false;
        Ok(())
    }

    /// Kills the server with SIGKILL, as a primary lost with its machine:
    /// no checkpoint, no goodbye to clients or standbys.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        let pid = read_pid_file(&self.data_dir().join("postmaster.pid"))
            .filter(|pid| process_is_running(*pid))
            .context("PostgreSQL is not running")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        self.running = false;
        Ok(())
    }

    /// A streaming standby of this server in a temporary folder on a free
    /// port (`pg_basebackup -R`: it follows this server from the copy on).
    pub fn start_standby(&self) -> anyhow::Result<Postgres> {
        start_on_a_free_port("PostgreSQL standby", |port| {
            let temp = tempfile::Builder::new()
                .prefix("docket-postgres-standby-")
                .tempdir()
                .context("failed to create a temporary folder for a standby")?;
            let dir = temp.path().canonicalize()?;
            if is_root() {
                run_checked(
                    Command::new("chown").args(["postgres:postgres"]).arg(&dir),
                    "chown of the standby's folder to the `postgres` user",
                )?;
            }
            run_checked(
                self.pg_command("pg_basebackup")
                    .arg("-D")
                    .arg(dir.join("data"))
                    .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                    .args([
                        "-U",
                        "postgres",
                        "-X",
                        "stream",
                        "-R",
                        "-c",
                        "fast",
                        "--no-sync",
                    ]),
                "pg_basebackup",
            )?;
            Self::launch(&dir, port, Some(temp))
        })
    }

    /// Makes every commit wait until a standby has it
    /// (`synchronous_standby_names = '*'`, reloaded). Set after
    /// [`Postgres::start_standby`]: a standby copied with it would, once
    /// promoted, wait for a standby of its own that does not exist.
    pub fn require_synchronous_standby(&self) -> anyhow::Result<()> {
        run_checked(
            self.pg_command("psql")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"])
                .args(["-c", "ALTER SYSTEM SET synchronous_standby_names = '*'"])
                .args(["-c", "SELECT pg_reload_conf()"]),
            "setting synchronous_standby_names",
        )?;
        Ok(())
    }

    /// Promotes a standby to primary and waits until it accepts writes.
    pub fn promote(&self) -> anyhow::Result<()> {
        run_checked(
            self.pg_command("pg_ctl")
                .arg("promote")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-w", "-t", "60"]),
            "pg_ctl promote",
        )?;
        Ok(())
    }

    /// Starts the server again on the same folder and port.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if self.running {
            return Ok(());
        }
        ensure_port_free(self.port, "PostgreSQL")?;
        let log = self.log_path();
        let log_start = file_len(&log);
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            shell_quote(&self.dir)
        );
        let started = run_checked(
            self.pg_command("pg_ctl")
                .arg("start")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o", &options]),
            "pg_ctl start",
        );
        if let Err(error) = started {
            bail!(
                "PostgreSQL did not start on port {}: {error:#}\nlast lines of {}:\n{}",
                self.port,
                log.display(),
                log_tail(&log, log_start, 30)
            );
        }
        self.running = true;
        Ok(())
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Turns fsync off in the configuration file rather than on the command
    /// line, where it could not be changed: the bench turns it on with
    /// `ALTER SYSTEM` to measure what a durable commit costs.
    fn skip_fsync(&self) -> anyhow::Result<()> {
        const SETTING: &str = "fsync = off  # docket: test and development data only\n";
        let conf = self.data_dir().join("postgresql.conf");
        let text = fs::read_to_string(&conf)
            .with_context(|| format!("failed to read {}", conf.display()))?;
        if !text.contains(SETTING) {
            fs::write(&conf, text + "\n" + SETTING)
                .with_context(|| format!("failed to write {}", conf.display()))?;
        }
        Ok(())
    }

    fn init(&self) -> anyhow::Result<()> {
        let data = self.data_dir();
        // A half-created folder from an interrupted initdb makes initdb refuse.
        if data.exists() {
            fs::remove_dir_all(&data).with_context(|| {
                format!("failed to remove incomplete cluster {}", data.display())
            })?;
        }
        run_checked(
            self.pg_command("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                .args(["--no-locale", "--no-sync"]),
            "initdb",
        )?;
        Ok(())
    }

    /// Stops a server that an earlier run, since killed, left running in
    /// `dir` (a folder `start_in` used); does nothing if there is none.
    pub fn stop_leftover(dir: &Path) -> anyhow::Result<()> {
        if !dir.join("data/postmaster.pid").is_file() {
            return Ok(());
        }
        let bin_dir = postgres_bin_dir().context("PostgreSQL server binaries not found")?;
        let leftover = Postgres {
            bin_dir,
            dir: dir.canonicalize()?,
            port: 0,
            running: false,
            _temp: None,
        };
        leftover.stop_leftover_server()
    }

    fn stop_leftover_server(&self) -> anyhow::Result<()> {
        let pid_file = self.data_dir().join("postmaster.pid");
        if read_pid_file(&pid_file).is_some_and(process_is_running) {
            self.pg_ctl_stop("fast")
                .context("failed to stop a PostgreSQL server left running in the folder")?;
        }
        Ok(())
    }

    fn pg_ctl_stop(&self, mode: &str) -> anyhow::Result<()> {
        run_checked(
            self.pg_command("pg_ctl")
                .arg("stop")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", mode, "-w", "-t", "60"]),
            "pg_ctl stop",
        )?;
        Ok(())
    }

    /// A server tool, run as `postgres` when we are root.
    fn pg_command(&self, tool: &str) -> Command {
        let program = self.bin_dir.join(tool);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        // The `postgres` user may not be allowed into the caller's directory.
        command.current_dir(&self.dir);
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            // Nobody waits for a clean shutdown of throwaway data.
            let _ = self.pg_ctl_stop("immediate");
        }
    }
}

/// Quotes a path for the shell that `pg_ctl` starts the server through.
fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}
