use std::process::ExitCode;

use super::DeviceArgs;

/// Devices for a running container, kept across its restarts: the classes and selections of the
/// hook's annotations (io.virtpod.device.<class>). Rootful; cgroup v1 or v2.
#[derive(clap::Subcommand)]
pub enum Device {
    /// Make the devices in the container, allow them in its device filter, and record them so
    /// that the precreate hook gives them again at every start.
    Add {
        #[command(flatten)]
        args: Args,
        /// Only record them, for the container's next start (a stopped container: nothing is
        /// made or allowed now).
        #[arg(long)]
        record_only: bool,
    },
    /// Take devices added at run time out again (node, cgroup rule and record). Devices its
    /// annotations give stay.
    Remove(Args),
    /// What the container has: from its annotations, and added at run time, with the nodes
    /// present now.
    List {
        /// The container's name or id.
        container: String,
        /// The record and the container's devices now side by side, as JSON, with where they
        /// differ.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        devices: DeviceArgs,
    },
    /// USB hotplug: give the container each USB device plugged into the host while it runs, and
    /// take out each one unplugged, until it stops. The poststart hook starts this for a
    /// container with io.virtpod.device.usb=hotplug.
    Watch {
        /// The container's name or id (or --pid and --id, as the hook gives them).
        #[arg(required_unless_present = "pid")]
        container: Option<String>,
        /// The container's process on the host (with --id; no podman is asked).
        #[arg(long, requires = "id", conflicts_with = "container")]
        pid: Option<i32>,
        /// The container's full id (with --pid).
        #[arg(long, requires = "pid")]
        id: Option<String>,
        /// Read events from this file as it grows (KEY=VALUE lines, a blank line after each, as
        /// `udevadm monitor --property` prints them) instead of the kernel's.
        #[arg(long, value_name = "FILE")]
        events: Option<std::path::PathBuf>,
        /// Write each line to this log file, in the hook's format (time, level, container),
        /// instead of stdout: how the poststart hook starts it.
        #[arg(long, value_name = "FILE")]
        log: Option<std::path::PathBuf>,
        #[command(flatten)]
        devices: DeviceArgs,
    },
}

#[derive(clap::Args)]
pub struct Args {
    /// The container's name or id.
    container: String,
    /// CLASS or CLASS=SELECTION, as the annotations take them: ttyUSB=ttyUSB7, usb=1d6b:0002,
    /// audio.
    #[arg(required = true)]
    devices: Vec<String>,
    #[command(flatten)]
    host: DeviceArgs,
}

impl Device {
    /// The log file `watch --log` writes to: main leaves logging to it.
    pub fn log_file(&self) -> Option<&std::path::Path> {
        match self {
            Device::Watch { log, .. } => log.as_deref(),
            _ => None,
        }
    }

    pub fn exec(self) -> ExitCode {
        let (verb, result) = match self {
            Device::Add { args, record_only } => (
                "device add",
                run(
                    args,
                    if record_only {
                        virtpod::device::declare
                    } else {
                        virtpod::device::add
                    },
                ),
            ),
            Device::Remove(a) => ("device remove", run(a, virtpod::device::remove)),
            Device::Watch {
                container,
                pid,
                id,
                events,
                log,
                devices,
            } => return watch(container, pid.zip(id), events, log, devices),
            Device::List {
                container,
                json,
                devices,
            } => (
                "device list",
                virtpod::device::container::inspect(&container).and_then(|c| {
                    let host = devices.host_paths(Default::default());
                    if json {
                        virtpod::device::list_json(&host, &c)
                            .map(|v| vec![serde_json::to_string_pretty(&v).unwrap_or_default()])
                    } else {
                        virtpod::device::list(&host, &c)
                    }
                }),
            ),
        };
        match result {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => super::fail(verb, e),
        }
    }
}

type Op = fn(
    &virtpod::hook::HostPaths,
    &virtpod::device::Container,
    Vec<virtpod::hook::request::Request>,
) -> anyhow::Result<Vec<String>>;

fn run(a: Args, op: Op) -> anyhow::Result<Vec<String>> {
    let requests = virtpod::device::parse(&a.devices)?;
    let c = virtpod::device::container::inspect(&a.container)?;
    op(&a.host.host_paths(Default::default()), &c, requests)
}

fn watch(
    container: Option<String>,
    by_pid: Option<(i32, String)>,
    events: Option<std::path::PathBuf>,
    log: Option<std::path::PathBuf>,
    devices: DeviceArgs,
) -> ExitCode {
    let c = match (container, by_pid) {
        (_, Some((pid, id))) => Ok(virtpod::device::Container {
            name: id.chars().take(12).collect(),
            id,
            pid,
            annotations: Default::default(),
            devices: Default::default(),
        }),
        (Some(name), None) => virtpod::device::container::inspect(&name),
        (None, None) => unreachable!("clap requires one"),
    };
    let source = match &events {
        Some(path) => virtpod::device::watch::Source::file(path),
        None => virtpod::device::watch::Source::kernel(),
    };
    if let Some(path) = &log {
        if let Err(e) =
            virtpod::hook::log::init_file_only(tracing::level_filters::LevelFilter::INFO, path)
        {
            return super::fail(
                "device watch",
                anyhow::anyhow!("opening {}: {e}", path.display()),
            );
        }
    }
    let short: String = c
        .as_ref()
        .map(|c| c.id.chars().take(12).collect())
        .unwrap_or_default();
    let _span = log
        .is_some()
        .then(|| tracing::info_span!("hook", container = %short, stage = "watch").entered());
    let say = |line: &str| {
        if log.is_some() {
            tracing::info!("{line}");
            return;
        }
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let result = c.and_then(|c| {
        source.and_then(|s| {
            virtpod::device::watch(&devices.host_paths(Default::default()), &c, s, say)
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Started by the hook, nobody reads stderr: the log says why the watch ended.
            if log.is_some() {
                tracing::error!("the watch ends: {e:#}");
            }
            super::fail("device watch", e)
        }
    }
}
