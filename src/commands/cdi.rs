use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};

use super::DeviceArgs;

/// The hook's device classes present on this host as a CDI spec (one device per class),
/// for `podman run --device virtpod.io/device=<class>`.
#[derive(clap::Args)]
pub struct Cdi {
    /// The spec's kind, vendor/class.
    #[arg(long, default_value = virtpod::cdi::DEFAULT_KIND)]
    kind: String,
    /// Write the spec here (e.g. /etc/cdi/virtpod.json) instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    devices: DeviceArgs,
}

impl Cdi {
    pub fn exec(self) -> ExitCode {
        // cdi records nothing: the state directory is not used.
        let host = self.devices.host_paths(PathBuf::new());
        match write(&self.kind, self.output.as_deref(), &host) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => super::fail("cdi", e),
        }
    }
}

fn write(kind: &str, output: Option<&Path>, host: &virtpod::hook::HostPaths) -> anyhow::Result<()> {
    virtpod::cdi::check_kind(kind).map_err(|e| anyhow!(e))?;
    let found = virtpod::cdi::discover(host).map_err(|e| anyhow!(e))?;
    let spec = virtpod::cdi::spec(kind, &found);
    let text = serde_json::to_string_pretty(&spec)? + "\n";
    let (present, absent): (Vec<_>, Vec<_>) =
        found.iter().partition(|(_, f)| virtpod::cdi::is_present(f));
    let names: Vec<&str> = present.iter().map(|(n, _)| *n).collect();
    let absent: Vec<&str> = absent.iter().map(|(n, _)| *n).collect();
    match output {
        None => print!("{text}"),
        Some(path) => {
            // Written beside and renamed: podman never reads half a spec.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &text)
                .and_then(|_| std::fs::rename(&tmp, path))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}: {kind}={{{}}}", path.display(), names.join(","));
        }
    }
    if !absent.is_empty() {
        eprintln!("not on this host: {}", absent.join(", "));
    }
    Ok(())
}
