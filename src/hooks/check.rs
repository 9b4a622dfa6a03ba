//! `virtpod hooks check`: one line per file, the problem named; masking shown. Stricter than
//! podman in one respect, as oci-hooks(5) asks: a hook whose `when` has no condition is reported
//! (podman loads it and never runs it).

use std::fmt::Write;

use super::dirs::{HookSet, Outcome};

/// The report, and whether every file passes.
pub fn report(set: &HookSet) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    for (dir, why, not_found) in &set.unreadable {
        if *not_found {
            let _ = writeln!(
                out,
                "{}: no such directory (podman ignores it)",
                dir.display()
            );
        } else {
            let _ = writeln!(out, "{}: cannot read the directory: {why}", dir.display());
            ok = false;
        }
    }
    let masked = set.masked();
    for file in &set.files {
        let path = file.path();
        let note = masked
            .iter()
            .find(|(m, _)| std::ptr::eq(*m, file))
            .map(|(_, w)| format!(" (masked by {})", w.path().display()))
            .unwrap_or_default();
        match &file.outcome {
            Outcome::Valid(hook) if hook.when.is_empty() => {
                ok = false;
                let _ = writeln!(out, "{}: invalid: `when` has no condition, so the hook never runs (oci-hooks(5) requires at least one){note}", path.display());
            }
            Outcome::Valid(hook) => {
                let stages = hook.stages.clone().unwrap_or_default().join(", ");
                let _ = writeln!(
                    out,
                    "{}: ok: {} at {}{note}",
                    path.display(),
                    hook.hook.path,
                    if stages.is_empty() {
                        "no stage".into()
                    } else {
                        stages
                    }
                );
            }
            Outcome::Invalid(why, not_found) => {
                ok = false;
                let podman = if *not_found {
                    " (podman skips this file without a word)"
                } else {
                    ""
                };
                let _ = writeln!(out, "{}: invalid: {why}{podman}{note}", path.display());
            }
            Outcome::Ignored => {
                let _ = writeln!(
                    out,
                    "{}: ignored: only *.json files are hooks",
                    path.display()
                );
            }
            Outcome::Dangling => {
                let _ = writeln!(
                    out,
                    "{}: ignored: a symlink to nothing (podman skips it)",
                    path.display()
                );
            }
        }
    }
    for (a, b) in set.case_ties() {
        let _ = writeln!(
            out,
            "{a} and {b}: names differ only in case, so podman's order between them is undefined"
        );
    }
    (out, ok)
}
