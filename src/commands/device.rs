use std::process::ExitCode;

use super::DeviceArgs;

/// Devices for a running container, kept across its restarts: the classes and selections of the
/// hook's annotations (io.virtpod.device.<class>). Rootful, cgroup v1.
#[derive(clap::Subcommand)]
pub enum Device {
    /// Make the devices in the container, allow them in its device cgroup, and record them so
    /// that the precreate hook gives them again at every start.
    Add(Args),
    /// Take devices added at run time out again (node, cgroup rule and record). Devices its
    /// annotations give stay.
    Remove(Args),
    /// What the container has: from its annotations, and added at run time, with the nodes
    /// present now.
    List {
        /// The container's name or id.
        container: String,
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
    pub fn exec(self) -> ExitCode {
        let (verb, result) = match self {
            Device::Add(a) => ("device add", run(a, virtpod::device::add)),
            Device::Remove(a) => ("device remove", run(a, virtpod::device::remove)),
            Device::List { container, devices } => (
                "device list",
                virtpod::device::container::inspect(&container).and_then(|c| {
                    virtpod::device::list(&devices.host_paths(Default::default()), &c)
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
