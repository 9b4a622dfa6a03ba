//! Faults a running appliance meets, and what a user must see instead of a lost guest or a dead
//! PID 1: daemons killed under running guests, a stop at every moment of the start, a stop
//! while libvirtd is down, a full disk for the guest record, a guest that ignores ACPI among
//! healthy ones, services that cannot exec or crash-loop, and many stop/start cycles.
//! Figures (cycles, zombies, restarts, seconds per stop) are appended to
//! target/e2e/fault-figures.txt, which tests/run prints; no time is asserted.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::init::failing_daemon;

fn figures(line: &str) {
    eprintln!("{line}");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(e2e_dir().join("fault-figures.txt"))
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

fn record(vols: &Volumes) -> String {
    std::fs::read_to_string(vols.host_path("lib", "virtpod/running-guests.json"))
        .unwrap_or_default()
}

/// podman stop with a budget like the front door's; the seconds it took.
fn stop(app: &Appliance, budget: u32) -> f64 {
    let t = Instant::now();
    podman_ok(&["stop", "-t", &budget.to_string(), &app.name]);
    t.elapsed().as_secs_f64()
}

/// Every boot of `guest` so far was answered by its power button: no guest that honours ACPI
/// was killed after it booted.
fn every_boot_powered_off(app: &Appliance, guest: &str) -> (usize, usize) {
    let console = app.console(guest);
    (
        console.matches(GUEST_BOOTED).count(),
        console.matches(GUEST_POWER_BUTTON).count(),
    )
}

fn oldest_pid(app: &Appliance, comm: &str) -> Option<String> {
    let out = app.exec(&format!("pgrep -xo {comm}"));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn daemons_killed_20_times_each_under_a_running_guest() {
    require_prepared();
    let vols = Volumes::new("kill20");
    let app = Appliance::start(&vols, Opts::default());
    app.wait_ready();
    app.boot_guest("g");
    // The guest's own qemu (a restarted libvirtd also runs qemu to probe its capabilities).
    let guest_pid = || {
        app.exec_ok("cat /run/libvirt/qemu/g.pid")
            .trim()
            .to_string()
    };
    let qemu = guest_pid();
    // virtlockd starts at its first client (libvirt's default takes no disk leases): be one.
    // The guest's start was virtlogd's.
    app.exec_ok("virt-admin -c virtlockd:///system server-list");
    let t = Instant::now();
    for daemon in ["virtlogd", "virtlockd", "libvirtd"] {
        for _ in 0..20 {
            let mut pid = None;
            wait_for(
                &format!("{daemon} running"),
                Duration::from_secs(30),
                || {
                    pid = oldest_pid(&app, daemon);
                    pid.is_some()
                },
            );
            let pid = pid.unwrap();
            if daemon != "libvirtd" {
                // Up a second first: virtlogd and virtlockd have no readiness of their own, and
                // one that dies within a second of its start counts as a failed start (s6's
                // rule), which backs off. libvirtd is ready when it says so.
                std::thread::sleep(Duration::from_secs(1));
            }
            app.exec(&format!("kill -9 {pid}"));
            wait_for(
                &format!("{daemon} started again"),
                Duration::from_secs(30),
                || oldest_pid(&app, daemon).is_some_and(|p| p != pid),
            );
        }
    }
    let kill_secs = t.elapsed().as_secs_f64();
    assert_eq!(
        app.state("Status"),
        "running",
        "PID 1 died:\n{}",
        app.logs()
    );
    wait_for("health ok again", Duration::from_secs(60), || {
        app.health().0
    });
    assert_eq!(app.domstate("g"), "running");
    assert_eq!(guest_pid(), qemu, "the guest was restarted");
    assert!(app
        .exec("kill -0 $(cat /run/libvirt/qemu/g.pid)")
        .status
        .success());
    wait_for("no zombies", Duration::from_secs(10), || {
        app.zombies().is_empty()
    });
    let (_, health) = app.health();
    figures(&format!(
        "kill: 60 SIGKILLs (20 each of virtlogd, virtlockd, libvirtd) in {kill_secs:.1} s; guest kept running; zombies 0; {}",
        health.trim()
    ));
    let secs = stop(&app, 90);
    let logs = app.logs();
    assert_eq!(app.state("ExitCode"), "0", "{logs}");
    // The console file went through the first virtlogd, so it no longer shows the guest's
    // words; the guest powering itself off after the ACPI press does.
    assert!(logs.contains("guest shut down guest=\"g\""), "{logs}");
    figures(&format!(
        "kill: stop with a guest after the kills {secs:.1} s"
    ));
}

#[test]
fn a_stop_at_every_moment_of_the_start_keeps_the_recorded_guest() {
    require_prepared();
    let vols = Volumes::new("sweep");
    let app = Appliance::start(&vols, Opts::default());
    app.wait_ready();
    app.boot_guest("g");
    stop(&app, 90);
    assert!(record(&vols).contains("\"g\""), "{}", record(&vols));
    let mut stops = Vec::new();
    for delay_ms in [0u64, 100, 200, 300, 450, 600, 800, 1100, 1600, 2500, 4000] {
        podman_ok(&["start", &app.name]);
        std::thread::sleep(Duration::from_millis(delay_ms));
        stops.push(stop(&app, 90));
        let logs = app.logs();
        assert_eq!(
            app.state("ExitCode"),
            "0",
            "stop {delay_ms} ms after start:\n{logs}"
        );
        let (booted, powered_off) = every_boot_powered_off(&app, "g");
        assert_eq!(
            booted,
            powered_off,
            "stop {delay_ms} ms after start: a booted guest was killed\n{}\n{logs}",
            app.console("g")
        );
        assert!(
            record(&vols).contains("\"g\""),
            "stop {delay_ms} ms after start lost the record: {:?}\n{logs}",
            record(&vols)
        );
    }
    podman_ok(&["start", &app.name]);
    app.wait_ready();
    wait_for("g running again", Duration::from_secs(60), || {
        app.domstate("g") == "running"
    });
    let max = stops.iter().cloned().fold(0.0, f64::max);
    figures(&format!(
        "sweep: {} stops 0–4 s after start, record kept, every boot powered off by ACPI; seconds per stop max {max:.1}",
        stops.len()
    ));
}

#[test]
fn a_stop_with_libvirtd_in_backoff_brings_it_back_and_shuts_the_guest_down() {
    require_prepared();
    let vols = Volumes::new("down");
    let app = Appliance::start(&vols, Opts::default());
    app.wait_ready();
    app.boot_guest("g");
    // libvirtd cannot start (its binary is gone): init backs off, health says why.
    app.exec_ok("mv /usr/sbin/libvirtd /usr/sbin/libvirtd.away && pkill -9 -xo libvirtd");
    wait_for(
        "health to name the failed exec",
        Duration::from_secs(30),
        || {
            let (ok, out) = app.health();
            !ok && out.contains("libvirtd is backoff")
                && out.contains("cannot execute /usr/sbin/libvirtd")
                && out.contains("No such file or directory")
        },
    );
    wait_for("a few failed restarts", Duration::from_secs(30), || {
        app.health().1.contains("restarted 3 times")
    });
    assert_eq!(app.state("Status"), "running", "PID 1 died");
    app.exec_ok("mv /usr/sbin/libvirtd.away /usr/sbin/libvirtd");
    // Now in a backoff of several seconds: the stop must not wait for it nor skip the guests.
    let secs = stop(&app, 90);
    let logs = app.logs();
    assert_eq!(app.state("ExitCode"), "0", "{logs}");
    assert!(app.console("g").contains(GUEST_POWER_BUTTON), "{logs}");
    figures(&format!(
        "down: stop with libvirtd in backoff, guest shut down by ACPI in {secs:.1} s"
    ));

    // And a stop right after a SIGKILL of libvirtd, before init has restarted it.
    podman_ok(&["start", &app.name]);
    app.wait_ready();
    wait_for("g running again", Duration::from_secs(60), || {
        app.domstate("g") == "running"
    });
    app.wait_console("g", GUEST_BOOTED, 2);
    app.exec_ok("pkill -9 -xo libvirtd");
    stop(&app, 90);
    assert_eq!(app.state("ExitCode"), "0", "{}", app.logs());
    app.wait_console("g", GUEST_POWER_BUTTON, 2);
}

#[test]
fn a_full_disk_for_the_record_never_skips_the_guest_shutdown() {
    require_prepared();
    let vols = Volumes::new("full");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &[
                "--mount",
                "type=tmpfs,destination=/var/lib/libvirt/virtpod,tmpfs-size=16k",
            ],
            ..Opts::default()
        },
    );
    app.wait_ready();
    app.boot_guest("g");
    app.exec("dd if=/dev/zero of=/var/lib/libvirt/virtpod/fill bs=4k 2>/dev/null");
    stop(&app, 90);
    let logs = app.logs();
    assert!(app.console("g").contains(GUEST_POWER_BUTTON), "{logs}");
    assert!(
        logs.contains("No space left on device")
            && logs.contains("shutting them down all the same"),
        "{logs}"
    );
    // The exit code says the stop was not clean: the guest will not come back by itself.
    assert_eq!(app.state("ExitCode"), "1", "{logs}");
}

#[test]
fn four_guests_one_ignoring_acpi_the_others_shut_down_within_the_budget() {
    require_prepared();
    let vols = Volumes::new("four");
    let app = Appliance::start(
        &vols,
        Opts {
            podman: &["-e", "VIRTPOD_SHUTDOWN_TIMEOUT=25"],
            ..Opts::default()
        },
    );
    app.wait_ready();
    // The stubborn one first: with guests shut down one at a time it would eat the budget.
    app.define_guest_with("stubborn", "qemu", "virtpod.ignore_acpi");
    for g in ["stubborn", "g1", "g2", "g3"] {
        if g != "stubborn" {
            app.define_guest(g, "qemu");
        }
        app.virsh_ok(&["start", g]);
    }
    for g in ["stubborn", "g1", "g2", "g3"] {
        app.wait_console(g, GUEST_BOOTED, 1);
    }
    let secs = stop(&app, 60);
    let logs = app.logs();
    for g in ["g1", "g2", "g3"] {
        assert!(
            app.console(g).contains(GUEST_POWER_BUTTON),
            "{g} was not shut down by ACPI:\n{logs}"
        );
        assert!(
            !logs.contains(&format!("destroying guest=\"{g}\"")),
            "{g} was destroyed:\n{logs}"
        );
    }
    assert!(!app.console("stubborn").contains(GUEST_POWER_BUTTON));
    assert!(
        logs.contains(
            "no shutdown in time (VIRTPOD_SHUTDOWN_TIMEOUT), destroying guest=\"stubborn\""
        ),
        "{logs}"
    );
    assert_eq!(
        app.state("ExitCode"),
        "1",
        "a forced guest shows in the exit code"
    );
    figures(&format!(
        "four: 3 guests shut down by ACPI, 1 ignoring it destroyed at the 25 s budget; stop took {secs:.1} s"
    ));
}

#[test]
fn services_that_cannot_exec_or_crash_loop_never_kill_pid_1() {
    require_prepared();
    // A service whose program the image lacks (modular libvirt's network daemon; this image
    // is monolithic): a failed start, retried, named by health.
    let vols = Volumes::new("noexec");
    let app = Appliance::start(
        &vols,
        Opts {
            init_args: &["systemd.wants=virtnetworkd"],
            ..Opts::default()
        },
    );
    wait_for(
        "health to name virtnetworkd",
        Duration::from_secs(30),
        || {
            let out = app.health().1;
            out.contains("virtnetworkd is backoff")
                && out.contains(
                    "cannot execute /usr/sbin/virtnetworkd: ENOENT: No such file or directory",
                )
        },
    );
    assert_eq!(app.state("Status"), "running");
    wait_for("no zombies", Duration::from_secs(10), || {
        app.zombies().is_empty()
    });

    // A daemon that crash-loops is never given up: restarts go on with a capped backoff.
    let dir = tempfile::tempdir().unwrap();
    let fake = failing_daemon(dir.path(), "virtlockd: fake crash for the test");
    let mount = format!("{fake}:/usr/sbin/virtlockd:ro");
    let noexec = dir.path().join("not-executable");
    std::fs::write(&noexec, "#!/bin/sh\n").unwrap();
    let noexec_mount = format!("{}:/usr/sbin/virtlogd:ro", noexec.display());
    let vols2 = Volumes::new("crashloop");
    let looping = Appliance::start(
        &vols2,
        Opts {
            podman: &["-v", &mount, "-v", &noexec_mount],
            ..Opts::default()
        },
    );
    // Both start at their first client: be one for each (it waits in the backlog, then gives
    // up); from then on they are restarted without one.
    wait_for("init to listen for both", Duration::from_secs(30), || {
        looping
            .exec("test -S /run/libvirt/virtlockd-sock && test -S /run/libvirt/virtlogd-sock")
            .status
            .success()
    });
    for daemon in ["virtlockd", "virtlogd"] {
        looping.exec(&format!(
            "timeout 2 virt-admin -c {daemon}:///system server-list"
        ));
    }
    let t = Instant::now();
    wait_for(
        "six restarts of each (five used to give up)",
        Duration::from_secs(60),
        || {
            let out = looping.health().1;
            out.contains("virtlockd is backoff (restarted 6 times): exit code 1")
                && out.contains("virtlockd: fake crash for the test")
                && out.contains("virtlogd is backoff (restarted 6 times): cannot execute /usr/sbin/virtlogd: EACCES: Permission denied")
        },
    );
    assert_eq!(looping.state("Status"), "running");
    let zombies = looping.zombies();
    figures(&format!(
        "crash-loop: 6 restarts of a crashing and of a non-executable daemon in {:.1} s, PID 1 alive, zombies {}; health: {}",
        t.elapsed().as_secs_f64(),
        zombies.len(),
        looping.health().1.trim()
    ));
    assert!(zombies.is_empty(), "{zombies:?}");
    stop(&looping, 30);
    assert_eq!(looping.state("ExitCode"), "0", "{}", looping.logs());

    // A flavor the image lacks is a setup error naming the fix, not a panic.
    let bad = podman(&[
        "run",
        "--rm",
        "--no-healthcheck",
        "-e",
        "VIRTPOD_LIBVIRT_MODE=modular",
        image(),
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad)
            .contains("VIRTPOD_LIBVIRT_MODE=modular, but this image has no /usr/sbin/virtqemud"),
        "{}",
        text(&bad)
    );
}

#[test]
fn stop_start_cycles_keep_the_guest() {
    require_prepared();
    let cycles: usize = std::env::var("VIRTPOD_FAULT_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let vols = Volumes::new("cycles");
    let app = Appliance::start(&vols, Opts::default());
    app.wait_ready();
    app.boot_guest("g");
    let mut stops = Vec::new();
    let t = Instant::now();
    for cycle in 1..=cycles {
        stops.push(stop(&app, 90));
        let logs = app.logs();
        assert_eq!(app.state("ExitCode"), "0", "cycle {cycle}:\n{logs}");
        let (booted, powered_off) = every_boot_powered_off(&app, "g");
        assert_eq!(
            booted, powered_off,
            "cycle {cycle}: a booted guest was killed\n{logs}"
        );
        assert!(
            record(&vols).contains("\"g\""),
            "cycle {cycle}: record lost"
        );
        podman_ok(&["start", &app.name]);
        app.wait_console("g", GUEST_BOOTED, cycle + 1);
    }
    wait_for("no zombies", Duration::from_secs(10), || {
        app.zombies().is_empty()
    });
    let restarts = app.logs().matches("restarting after backoff").count();
    stops.sort_by(f64::total_cmp);
    figures(&format!(
        "cycles: {cycles} stop/start cycles with a guest in {:.0} s; every boot powered off by ACPI; record kept; zombies 0; daemon restarts {restarts}; seconds per stop median {:.2} max {:.2}",
        t.elapsed().as_secs_f64(),
        stops[stops.len() / 2],
        stops[stops.len() - 1]
    ));
}
