//! A system tool run to completion while the container is prepared (useradd, ssh-keygen, …):
//! never by PID 1 itself, always from `virtpod prepare`, which may wait for its children.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Runs `program args…` with no input; a failure names the command and what it printed.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
