#!/usr/bin/env python3
"""Stop figures for the appliance (a benchmark: it prints, it asserts nothing).

What a user waits for at `podman stop` with guests running, beside what the guests themselves
take to power off by ACPI (measured in the same container, with host `virsh shutdown`, polling
`virsh domstate`), and `podman stop` with no guest. Each stop also shows init's share: from
its `stopping` line to its `stopped code=` line in `podman logs -t` (conmon's timestamps); the
rest is podman's (signalling, then unmounting and cleaning up after init exits):
- one guest: stop - its own power-off (the target: <= 0.2 s);
- four guests: stop beside the slowest guest's power-off and the sum of all four (shut down in
  parallel, the stop is near the slowest, not the sum).

Run as root after tests/prepare: python3 benches/stop.py [--runs N] [--image IMAGE]
"""
import argparse, datetime, os, statistics, subprocess, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(REPO, "tests/containers.conf"))
GUEST = os.path.join(REPO, "target/e2e/guest")
BOOTED = "VIRTPOD-GUEST-BOOTED"


def podman(*args, check=True):
    return subprocess.run(["podman", *args], env=ENV, check=check, capture_output=True, text=True)


class Appliance:
    def __init__(self, image, tag):
        self.sock = tempfile.mkdtemp()
        self.logs = tempfile.mkdtemp()
        self.name = f"vp-bench-stop-{os.getpid()}-{tag}"
        self.uri = f"qemu+unix:///system?socket={self.sock}/libvirt-sock"
        # The guests are started by the bench alone, never again by init after a stop.
        podman("run", "-d", "--name", self.name, "--no-healthcheck", "--device", "/dev/kvm",
               "-e", "VIRTPOD_ON_BOOT=ignore",
               "-v", f"{self.sock}:/run/libvirt", "-v", f"{self.logs}:/var/log/libvirt", image)
        self.wait_virsh()
        for f in ("vmlinuz", "initrd.img"):
            podman("cp", os.path.join(GUEST, f), f"{self.name}:/var/lib/libvirt/images/{f}")

    def virsh(self, *args, check=True):
        return subprocess.run(["virsh", "-c", self.uri, *args], check=check, capture_output=True,
                              text=True)

    def wait_virsh(self):
        deadline = time.monotonic() + 120
        while self.virsh("version", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: libvirt did not answer in 120 s")
            time.sleep(0.02)

    def define(self, guest):
        """benches/guest.xml under the guest's name, with its console in a file (the boot
        marker is read from it)."""
        serial = (f"<serial type='file'><source path='/var/log/libvirt/qemu/{guest}-serial.log'"
                  " append='on'/><target port='0'/></serial>")
        with open(os.path.join(REPO, "benches/guest.xml")) as f:
            xml = f.read().replace("<name>bench</name>", f"<name>{guest}</name>")
        xml = xml.replace("<devices>", f"<devices>{serial}")
        with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
            f.write(xml)
            f.flush()
            self.virsh("define", f.name)

    def boots(self, guest):
        path = os.path.join(self.logs, f"qemu/{guest}-serial.log")
        try:
            with open(path, errors="replace") as f:
                return f.read().count(BOOTED)
        except FileNotFoundError:
            return 0

    def start_booted(self, guests):
        before = {g: self.boots(g) for g in guests}
        for g in guests:
            self.virsh("start", g)
        deadline = time.monotonic() + 180
        while any(self.boots(g) <= before[g] for g in guests):
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: guests did not boot in 180 s")
            time.sleep(0.05)

    def own_poweroff(self, guest):
        """Seconds from `virsh shutdown` to `shut off`, as host virsh sees it."""
        self.start_booted([guest])
        t0 = time.monotonic()
        self.virsh("shutdown", guest)
        while self.virsh("domstate", guest).stdout.strip() != "shut off":
            time.sleep(0.01)
        return time.monotonic() - t0

    def stop(self):
        """(podman stop's wall time, init's share of it)."""
        t0 = time.monotonic()
        podman("stop", "-t", "120", self.name)
        wall = time.monotonic() - t0
        began = ended = None
        logs = podman("logs", "-t", self.name)
        # init logs on stderr, which podman logs gives back on its own stderr.
        for line in logs.stderr.splitlines():
            stamp, _, rest = line.partition(" ")
            if rest.startswith(" INFO stopping signal="):
                began = stamp
            elif rest.startswith(" INFO stopped code="):
                ended = stamp
        return wall, seconds(ended) - seconds(began)

    def start(self):
        podman("start", self.name)
        self.wait_virsh()

    def remove(self):
        podman("rm", "-f", "-v", "-t", "0", self.name, check=False)


def seconds(stamp):
    """conmon's RFC 3339 nanosecond timestamp, as seconds."""
    day, _, frac = stamp.rstrip("Z").partition(".")
    t = datetime.datetime.fromisoformat(day).replace(tzinfo=datetime.timezone.utc).timestamp()
    return t + float("0." + frac)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--image", default="localhost/virtpod:debian")
    args = ap.parse_args()
    app = Appliance(args.image, "stop")
    try:
        guests = [f"g{i}" for i in range(4)]
        for g in guests:
            app.define(g)
        bare, one, one_own, four, four_own = [], [], [], [], []
        for _ in range(args.runs):
            bare.append(app.stop())
            app.start()
            one_own.append(app.own_poweroff("g0"))
            app.start_booted(["g0"])
            one.append(app.stop())
            app.start()
            own = [app.own_poweroff(g) for g in guests]
            four_own.append(own)
            app.start_booted(guests)
            four.append(app.stop())
            app.start()
        med = statistics.median
        wall = lambda stops: med([w for w, _ in stops])
        share = lambda stops: med([i for _, i in stops])
        print(f"podman stop, {args.image}, median of {args.runs} (each stop with -t 120)")
        print(f"  no guest     {wall(bare):6.3f} s, init {share(bare):6.3f} s"
              f"   (the rest is podman's own)")
        own1 = med(one_own)
        print(f"  one guest    {wall(one):6.3f} s, init {share(one):6.3f} s"
              f"   its own ACPI power-off {own1:6.3f} s   init - power-off {share(one) - own1:+.3f} s")
        slowest = med([max(o) for o in four_own])
        total = med([sum(o) for o in four_own])
        print(f"  four guests  {wall(four):6.3f} s, init {share(four):6.3f} s"
              f"   slowest own power-off {slowest:6.3f} s, sum of four {total:6.3f} s"
              f"   init / slowest {share(four) / slowest:.2f}")
    finally:
        app.remove()


if __name__ == "__main__":
    main()
