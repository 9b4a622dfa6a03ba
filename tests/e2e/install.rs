//! `virtpod install --root` as an image runs it onto the host: the host-side binary writes every
//! file under a root of the test's own, and what a user then sees is checked with the host's
//! tools: `man`, bash completion, `virtpod hooks check` with the root's /usr/local where the
//! host has it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::harness::*;

/// virtpod's own hooks directory, the default under the prefix.
const HOOKS_DIR: &str = "/usr/local/share/virtpod/oci-hooks.d";

fn install(root: &Path) -> Output {
    place("install", root)
}

/// `virtpod install` or `uninstall`, with the same options.
fn place(command: &str, root: &Path) -> Output {
    Command::new(host_bin())
        .arg(command)
        .arg("--root")
        .arg(root)
        .args(["--prefix", "/usr/local"])
        .output()
        .unwrap_or_else(|e| panic!("running virtpod {command}: {e}"))
}

fn stdout_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn install_under_a_root_gives_the_host_man_pages_completion_and_working_hooks() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = install(root);
    assert!(out.status.success(), "{}", text(&out));
    let lines = stdout_lines(&out);
    let bin_line = format!("wrote {}/usr/local/bin/virtpod (copy of ", root.display());
    assert!(lines[0].starts_with(&bin_line), "{}", text(&out));
    assert!(
        lines.iter().all(|l| l.starts_with("wrote ")),
        "{}",
        text(&out)
    );

    // `man virtpod-hook` finds the hook's page where the prefix's manual is.
    let man = Command::new("man")
        .arg("virtpod-hook")
        .env("MANPATH", root.join("usr/local/share/man"))
        .env("MANWIDTH", "200")
        .env("MANPAGER", "cat")
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run man ({e}): tests/prepare installs man-db, run it first")
        });
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(man.status.success(), "man virtpod-hook: {}", text(&man));
    assert!(page.contains("virtpod-hook - The OCI hook"), "{page}");
    assert!(page.contains("--dev-root"), "{page}");

    // bash completes the subcommands from the installed completion file.
    let completion = root.join("usr/local/share/bash-completion/completions/virtpod");
    let bash = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"; COMP_WORDS=(virtpod ho); COMP_CWORD=1; _virtpod virtpod ho virtpod; echo "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(&completion)
        .output()
        .unwrap();
    assert!(bash.status.success(), "{}", text(&bash));
    let mut words: Vec<String> = String::from_utf8_lossy(&bash.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    words.sort();
    assert_eq!(words, ["hook", "hooks"], "{}", text(&bash));

    // The hooks name the binary as the host will see it, without the root.
    let hooks = root.join(HOOKS_DIR.trim_start_matches('/'));
    for name in [
        "virtpod-devices.json",
        "virtpod-devices-poststop.json",
        "virtpod-usb-hotplug.json",
    ] {
        let def: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(hooks.join(name)).unwrap()).unwrap();
        assert_eq!(
            def["hook"]["path"], "/usr/local/bin/virtpod",
            "{name}: {def}"
        );
    }
    // As the host sees them: the root's /usr/local at /usr/local (in a mount namespace of its
    // own), where `virtpod hooks check` passes and the hooks' binary runs.
    let check = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            r#"mount --bind "$1/usr/local" /usr/local && "$2" hooks check "$3" && /usr/local/bin/virtpod --version"#,
        )
        .arg("sh")
        .arg(root)
        .arg(host_bin())
        .arg(&hooks)
        .output()
        .expect("running unshare (util-linux)");
    let report = text(&check);
    assert!(check.status.success(), "{report}");
    assert!(
        report.contains("virtpod-devices.json: ok: /usr/local/bin/virtpod at precreate"),
        "{report}"
    );
    let version = format!("virtpod {}", env!("CARGO_PKG_VERSION"));
    assert!(report.contains(&version), "{report}");

    // A second run changes nothing and says so, file by file.
    let again = install(root);
    assert!(again.status.success(), "{}", text(&again));
    let again_lines = stdout_lines(&again);
    assert_eq!(again_lines.len(), lines.len(), "{}", text(&again));
    for (first, second) in lines.iter().zip(&again_lines) {
        assert_eq!(
            second,
            &first.replacen("wrote ", "unchanged ", 1),
            "{}",
            text(&again)
        );
    }

    // The drop-in names our directory after podman's default, for podman alone.
    let drop_in =
        fs::read_to_string(root.join("etc/containers/containers.conf.d/50-virtpod-hooks.conf"))
            .unwrap();
    assert!(
        drop_in.contains(&format!(
            "hooks_dir = [\"/usr/share/containers/oci/hooks.d\", \"{HOOKS_DIR}\"]"
        )),
        "{drop_in}"
    );

    // uninstall with the same options takes back every file it wrote, and leaves no file.
    let out = place("uninstall", root);
    assert!(out.status.success(), "{}", text(&out));
    let removed = stdout_lines(&out);
    for line in &lines {
        let path = line
            .strip_prefix("wrote ")
            .and_then(|l| l.split(" (").next())
            .unwrap();
        assert!(
            removed
                .iter()
                .any(|r| r.starts_with(&format!("removed {path}"))),
            "{path} not removed: {}",
            text(&out)
        );
    }
    let mut left = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                left.push(e.path());
            }
        }
    }
    assert!(left.is_empty(), "left behind: {left:#?}");
}

#[test]
fn install_into_a_hooks_dir_it_cannot_write_names_the_file_and_the_fix() {
    // An unprivileged user, as someone forgetting sudo; the binary where they can run it.
    let tmp = tempfile::tempdir().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let bin = tmp.path().join("virtpod");
    fs::copy(host_bin(), &bin).unwrap();
    let hooks = tmp.path().join("hooks.d");
    fs::create_dir(&hooks).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&bin)
        .arg("install")
        .arg("--hooks-dir")
        .arg(&hooks)
        .output()
        .expect("running setpriv (util-linux)");
    let report = text(&out);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains(&format!(
            "installing {}/virtpod-devices.json",
            hooks.display()
        )),
        "{report}"
    );
    assert!(
        report.contains("fix: run as root (sudo), or pass --hooks-dir"),
        "{report}"
    );
}
