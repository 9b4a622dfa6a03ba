//! The systemd side of a grant on a container whose cgroup is a systemd scope (podman's systemd
//! cgroup manager). With `DevicePolicy=strict` on the scope (runc, crun before 1.23) systemd
//! compiles its own device program from the unit's `DeviceAllow=` list, and compiles it anew at
//! every property change (`podman update` makes one): a device allowed only in the kernel would
//! be denied again then. So a grant is also written to the unit, `--runtime` (gone at reboot,
//! as the scope is). Without a strict policy (crun 1.23+ hands systemd its own program) the
//! unit is left alone: `DeviceAllow=` there would turn into a restrictive list.

use std::process::Command;

use anyhow::{bail, Context, Result};

use super::program::{Rule, Type};

/// systemd's name for the device: `/dev/char/MAJOR:MINOR` needs no node on the host.
pub fn device_path(r: Rule) -> String {
    let kind = match r.kind {
        Type::Char => "char",
        Type::Block => "block",
    };
    format!("/dev/{kind}/{}:{}", r.major, r.minor)
}

fn show(unit: &str, property: &str) -> Result<String> {
    let out = Command::new("systemctl")
        .args(["show", "--value", "-p", property, "--", unit])
        .output()
        .context("running systemctl")?;
    if !out.status.success() {
        bail!(
            "systemctl show {unit}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether systemd filters the scope's devices from its own list.
pub fn strict(unit: &str) -> Result<bool> {
    Ok(show(unit, "DevicePolicy")? == "strict")
}

/// The unit's `DeviceAllow=` entries as `systemctl show --value` prints them ("PATH rwm", one a
/// line).
pub fn allowed(unit: &str) -> Result<Vec<String>> {
    Ok(parse_allowed(&show(unit, "DeviceAllow")?))
}

fn parse_allowed(shown: &str) -> Vec<String> {
    shown
        .lines()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

fn set(unit: &str, assignments: &[String]) -> Result<()> {
    let out = Command::new("systemctl")
        .args(["set-property", "--runtime", "--", unit])
        .args(assignments)
        .output()
        .context("running systemctl")?;
    if !out.status.success() {
        bail!(
            "systemctl set-property --runtime {unit} {}: {}",
            assignments.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Adds the devices to the unit's list (systemd appends each assignment); returns those it
/// did not have, for an undo.
pub fn allow(unit: &str, rules: &[Rule]) -> Result<Vec<Rule>> {
    let have = allowed(unit)?;
    let new: Vec<Rule> = rules
        .iter()
        .copied()
        .filter(|r| !have.contains(&format!("{} rwm", device_path(*r))))
        .collect();
    if new.is_empty() {
        return Ok(new);
    }
    let assignments: Vec<String> = new
        .iter()
        .map(|r| format!("DeviceAllow={} rwm", device_path(*r)))
        .collect();
    set(unit, &assignments)?;
    Ok(new)
}

/// Takes the devices out of the unit's list: systemd removes no single entry, so the list is
/// emptied and the rest given again, in one call (one recompile).
pub fn withdraw(unit: &str, rules: &[Rule]) -> Result<()> {
    let have = allowed(unit)?;
    let gone: Vec<String> = rules.iter().map(|r| device_path(*r)).collect();
    let keep = keep_after_withdraw(&have, &gone);
    if keep.len() == have.len() {
        return Ok(());
    }
    let mut assignments = vec!["DeviceAllow=".to_string()];
    assignments.extend(keep.into_iter().map(|e| format!("DeviceAllow={e}")));
    set(unit, &assignments)
}

fn keep_after_withdraw(have: &[String], gone: &[String]) -> Vec<String> {
    have.iter()
        .filter(|e| {
            let path = e.split_whitespace().next().unwrap_or_default();
            !gone.iter().any(|g| g == path)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_withdrawn_device_leaves_the_rest_of_the_units_list_as_it_was() {
        // As systemd 257 prints it.
        let shown = "/dev/char/10:200 rwm\n/dev/char/188:7 rwm\nchar-pts rwm\n/dev/null rw\n";
        let have = parse_allowed(shown);
        assert_eq!(have.len(), 4);
        let r = Rule {
            kind: Type::Char,
            major: 188,
            minor: 7,
        };
        assert_eq!(device_path(r), "/dev/char/188:7");
        assert_eq!(
            keep_after_withdraw(&have, &[device_path(r)]),
            ["/dev/char/10:200 rwm", "char-pts rwm", "/dev/null rw"]
        );
        assert!(parse_allowed("").is_empty());
    }
}
