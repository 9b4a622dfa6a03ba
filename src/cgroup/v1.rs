//! The cgroup v1 devices controller: rules written to the container's `devices.allow` and
//! `devices.deny`, which the kernel keeps until the cgroup goes.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::program::Rule;

/// The v1 devices directory in `/proc/PID/cgroup`'s text; None when no line has the devices
/// controller (cgroup v2).
pub fn devices_dir(proc_cgroup: &str) -> Option<PathBuf> {
    proc_cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        ctrl.split(',')
            .any(|c| c == "devices")
            .then(|| Path::new("/sys/fs/cgroup/devices").join(path.trim_start_matches('/')))
    })
}

/// Writes `c MAJOR:MINOR rwm` for each rule to `file` (devices.allow or devices.deny) of `dir`.
pub fn write(dir: &Path, file: &str, rules: &[Rule]) -> Result<()> {
    let path = dir.join(file);
    for r in rules {
        let line = format!("{r} rwm");
        fs::write(&path, &line)
            .with_context(|| format!("writing {line:?} to {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_devices_line_names_the_directory_and_v2_has_none() {
        let v1 = "12:devices:/libpod_parent/libpod-ab\n11:cpu,cpuacct:/x\n0::/y\n";
        assert_eq!(
            devices_dir(v1),
            Some(PathBuf::from(
                "/sys/fs/cgroup/devices/libpod_parent/libpod-ab"
            ))
        );
        assert_eq!(devices_dir("0::/machine.slice/libpod-ab.scope\n"), None);
    }
}
