//! `virtpod doctor` on this host: all well with the appliance running, and each fault named with
//! a fix that works — checked against what podman itself does.

use std::fs;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output};

use crate::harness::*;

fn doctor(conf: &Path, args: &[&str]) -> Output {
    Command::new(host_bin())
        .arg("doctor")
        .args(args)
        .env("CONTAINERS_CONF", conf)
        .output()
        .expect("running virtpod doctor")
}

fn tests_conf() -> std::path::PathBuf {
    repo().join("tests/containers.conf")
}

#[test]
fn doctor_passes_with_the_appliance_running_and_the_hook_installed() {
    require_prepared();
    let vols = Volumes::new("doctor");
    let app = Appliance::start(&vols, Opts::default());
    app.wait_ready();
    let tmp = tempfile::tempdir().unwrap();
    let hooks = tmp.path().join("hooks.d");
    let out = Command::new(host_bin())
        .arg("install")
        .arg("--no-host-conf")
        .arg("--hooks-dir")
        .arg(&hooks)
        .arg("--prefix")
        .arg(tmp.path().join("prefix"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));

    let sock = vols.socket().display().to_string();
    let hooks_arg = hooks.display().to_string();
    let out = doctor(
        &tests_conf(),
        &["--socket", &sock, "--hooks-dir", &hooks_arg],
    );
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    for line in [
        "ok    podman: podman ".to_string(),
        "ok    runtime: runc".to_string(),
        "ok    ulimits: default_ulimits".to_string(),
        "ok    kvm: /dev/kvm".to_string(),
        format!("ok    hooks: virtpod hook at precreate ({hooks_arg}/virtpod-devices.json) and poststop ({hooks_arg}/virtpod-devices-poststop.json)"),
        format!("ok    socket: {sock} accepts connections: virsh -c 'qemu+unix:///system?socket={sock}'"),
    ] {
        assert!(report.contains(&line), "missing {line:?} in:\n{report}");
    }
    assert!(!report.contains("fix:"), "{report}");
}

#[test]
fn doctor_names_a_stale_socket_and_a_broken_hook_file() {
    require_prepared();
    let tmp = tempfile::tempdir().unwrap();
    // A socket file nobody listens on, as a stopped appliance leaves it.
    let stale = tmp.path().join("libvirt-sock");
    drop(UnixListener::bind(&stale).unwrap());
    let hooks = tmp.path().join("hooks.d");
    fs::create_dir(&hooks).unwrap();
    fs::write(hooks.join("bad.json"), "{ not json").unwrap();

    let out = doctor(
        &tests_conf(),
        &[
            "--socket",
            stale.to_str().unwrap(),
            "--hooks-dir",
            hooks.to_str().unwrap(),
        ],
    );
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    let stale_line = format!(
        "FAIL  socket: {} exists but nothing listens",
        stale.display()
    );
    assert!(report.contains(&stale_line), "{report}");
    assert!(
        report.contains("fix: start the appliance again (./appliance-up)"),
        "{report}"
    );
    let bad = format!(
        "FAIL  hooks: podman refuses to create any container while a hook file is invalid: {}",
        hooks.join("bad.json").display()
    );
    assert!(report.contains(&bad), "{report}");
    // podman agrees: with that directory it creates nothing.
    let ran = podman(&[
        "--hooks-dir",
        hooks.to_str().unwrap(),
        "run",
        "--rm",
        "--network",
        "none",
        BASE_IMAGE,
        "true",
    ]);
    assert!(
        !ran.status.success() && text(&ran).contains("bad.json"),
        "podman ran despite {bad}: {}",
        text(&ran)
    );

    let gone = tmp.path().join("nothing-here");
    let out = doctor(&tests_conf(), &["--socket", gone.to_str().unwrap()]);
    assert!(
        text(&out).contains(&format!("FAIL  socket: no socket at {}", gone.display())),
        "{}",
        text(&out)
    );
}

/// The ulimits verdict must match what podman does with the same containers.conf, and the fix it
/// prints must make podman work.
#[test]
fn doctor_ulimits_verdict_matches_podman_and_its_fix_works() {
    require_prepared();
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("containers.conf");
    let engine =
        "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n";
    fs::write(&conf, engine).unwrap();
    let run = |conf: &Path| {
        Command::new("podman")
            .env("CONTAINERS_CONF", conf)
            .args(["run", "--rm", "--network", "none", BASE_IMAGE, "true"])
            .output()
            .unwrap()
    };

    let ran = run(&conf);
    let out = doctor(&conf, &[]);
    let report = text(&out);
    let verdict = report
        .lines()
        .skip_while(|l| !l.contains("ulimits:"))
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    if ran.status.success() {
        assert!(
            verdict.starts_with("ok    ulimits:"),
            "podman ran, but:\n{report}"
        );
        return;
    }
    // podman failed on a limit (on the build machines root lacks CAP_SYS_RESOURCE and the hard
    // nofile limit is 20000): the doctor must say so and name the error podman printed.
    assert!(
        text(&ran).contains("error setting rlimit"),
        "{}",
        text(&ran)
    );
    assert!(
        verdict.starts_with("FAIL  ulimits:"),
        "podman failed ({}), but:\n{report}",
        text(&ran)
    );
    let fix = verdict
        .split("default_ulimits = ")
        .nth(1)
        .and_then(|s| s.split(" (values").next())
        .unwrap_or_else(|| panic!("no default_ulimits in the fix:\n{verdict}"));
    fs::write(
        &conf,
        format!("[containers]\ndefault_ulimits = {fix}\n{engine}"),
    )
    .unwrap();
    let ran = run(&conf);
    assert!(
        ran.status.success(),
        "the doctor's fix {fix} did not make podman run: {}",
        text(&ran)
    );
    let report = text(&doctor(&conf, &[]));
    assert!(report.contains("ok    ulimits:"), "{report}");
}
