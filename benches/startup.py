#!/usr/bin/env python3
"""Startup and memory figures for the appliance (a benchmark: it prints, it asserts nothing).

- podman start -> first successful host `virsh version` through the socket, warm (the same
  container started again), for virtpod init as PID 1, for libvirtd itself as PID 1 under
  podman --init (catatonit), the floor to compare with (no config, no supervision, no
  readiness), and for the systemd variant; with the ratios to the floor. Two floors:
  - no /dev/kvm: libvirt does no KVM work at all (it skips ~45 ms of loading its CPU maps and
    its cached probe of each qemu), so this floor does less than any KVM appliance; virtpod
    init is also measured without /dev/kvm, to compare with it doing the same work;
  - /dev/kvm usable by qemu's group and libvirtd on one CPU, as init gives them to its
    libvirtd (the one CPU until libvirt first answers): the same work. Without the one CPU,
    libvirt finds its cached probe of qemu stale at about every other start and probes again
    (1.5-2 s here; src/init/cpus.rs says why), and without the group at every start;
- resident memory of PID 1 (RSS, PSS, private dirty) with a guest running, for virtpod init
  and for systemd in the systemd variant.

Run as root after tests/prepare: python3 benches/startup.py [--runs N]
"""
import argparse, os, statistics, subprocess, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(REPO, "tests/containers.conf"))
IMAGE = "localhost/virtpod:debian"


def podman(*args, check=True):
    return subprocess.run(["podman", *args], env=ENV, check=check, capture_output=True, text=True)


def virsh_ok(sockdir):
    uri = f"qemu+unix:///system?socket={sockdir}/libvirt-sock"
    return subprocess.run(["virsh", "-c", uri, "version"], capture_output=True).returncode == 0


def start_to_virsh(name, sockdir):
    t0 = time.monotonic()
    podman("start", name)
    while not virsh_ok(sockdir):
        time.sleep(0.005)
    return time.monotonic() - t0


def measure(label, runs, extra, kvm=True, cmd=()):
    sockdir = tempfile.mkdtemp()
    slug = "".join(c if c.isalnum() else "-" for c in label)[:40]
    name = f"vp-bench-{os.getpid()}-{slug}"
    device = ["--device", "/dev/kvm"] if kvm else []
    podman("create", "--name", name, "--no-healthcheck", *device,
           "-v", f"{sockdir}:/run/libvirt", *extra, IMAGE, *cmd)
    try:
        times = []
        for _ in range(runs + 1):
            times.append(start_to_virsh(name, sockdir))
            podman("stop", "-t", "30", name)
        cold, warm = times[0], times[1:]
        print(f"{label:<46} cold {cold:6.3f} s   warm median {statistics.median(warm):6.3f} s"
              f"   (min {min(warm):.3f}, max {max(warm):.3f}, n={len(warm)})", flush=True)
        return statistics.median(warm)
    finally:
        podman("rm", "-f", "-v", "-t", "0", name, check=False)


def pid1_rss_after_guest(label, extra):
    sockdir = tempfile.mkdtemp()
    name = f"vp-bench-{os.getpid()}-rss"
    podman("run", "-d", "--name", name, "--no-healthcheck", "--device", "/dev/kvm",
           "-v", f"{sockdir}:/run/libvirt", *extra, IMAGE)
    try:
        while not virsh_ok(sockdir):
            time.sleep(0.05)
        guest = os.path.join(REPO, "target/e2e/guest")
        for f in ("vmlinuz", "initrd.img"):
            podman("cp", os.path.join(guest, f), f"{name}:/var/lib/libvirt/images/{f}")
        xml = open(os.path.join(REPO, "benches/guest.xml")).read()
        with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
            f.write(xml)
            f.flush()
            uri = f"qemu+unix:///system?socket={sockdir}/libvirt-sock"
            subprocess.run(["virsh", "-c", uri, "define", f.name], check=True, capture_output=True)
            subprocess.run(["virsh", "-c", uri, "start", "bench"], check=True, capture_output=True)
        time.sleep(5)
        # RSS counts every page PID 1 maps, shared ones included (libc's, the binary's); PSS
        # splits the shared ones among the processes that map them; private dirty is its own.
        rollup = podman("exec", name, "cat", "/proc/1/smaps_rollup").stdout
        kb = {l.split(":")[0]: int(l.split()[1]) for l in rollup.splitlines()[1:]}
        print(f"{label:<46} RSS {kb['Rss'] / 1024:4.1f} MiB   PSS {kb['Pss'] / 1024:4.1f} MiB"
              f"   private dirty {kb['Private_Dirty'] / 1024:4.1f} MiB", flush=True)
        return kb["Rss"]
    finally:
        podman("rm", "-f", "-v", "-t", "0", name, check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    systemd = ["--systemd=always", "--stop-signal", "SIGRTMIN+3", "--entrypoint", "/sbin/init"]
    floor = ["--init", "--entrypoint", "/usr/sbin/libvirtd"]
    init = measure("virtpod init as PID 1", runs, [])
    # Without /dev/kvm, libvirt skips its KVM work at start (~45 ms here: the host CPU's
    # model and cached qemu probes, per its debug log), so this pair compares init and the
    # floor doing the same, smaller, work.
    init_tcg = measure("virtpod init as PID 1, no /dev/kvm", runs, [], kvm=False)
    base = measure("floor: libvirtd under catatonit, no /dev/kvm", runs, floor, kvm=False)
    # /dev/kvm as init's `virtpod prepare` gives it (group kvm, 0660: --device keeps the host's
    # owner and mode, which qemu's user cannot open) and libvirtd on one CPU (taskset for the
    # whole run; init gives the CPUs back once libvirt answers, after this measure ends).
    same = ["--init", "--entrypoint", "sh"]
    same_cmd = ["-c", "chown root:kvm /dev/kvm && chmod 0660 /dev/kvm && "
                      "exec taskset -c 0 /usr/sbin/libvirtd"]
    kvm = measure("floor: same, /dev/kvm for qemu, on one CPU", runs, same, cmd=same_cmd)
    # As --device gives /dev/kvm, nothing else: libvirt probes qemu again at every start.
    measure("libvirtd under catatonit, /dev/kvm as given", runs, floor)
    sysd = measure("systemd variant (systemd as PID 1)", runs, systemd)
    print("start, warm median / the floor doing the same work:")
    print(f"  with /dev/kvm (floor on one CPU): virtpod init {init / kvm:.2f}x   "
          f"systemd variant {sysd / kvm:.2f}x")
    print(f"  without /dev/kvm:                 virtpod init {init_tcg / base:.2f}x")
    print(f"start, warm median / floor without KVM (so with libvirt's KVM work in the ratio): "
          f"virtpod init {init / base:.2f}x   systemd variant {sysd / base:.2f}x")
    ours = pid1_rss_after_guest("PID 1 (virtpod init), guest running", [])
    theirs = pid1_rss_after_guest("PID 1 (systemd), guest running", systemd)
    print(f"PID 1 RSS, systemd / virtpod init: {theirs / ours:.1f}x")


if __name__ == "__main__":
    main()
