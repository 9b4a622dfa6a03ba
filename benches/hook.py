#!/usr/bin/env python3
"""Whole-process time of one `virtpod hook precreate` call (a benchmark: it prints, it asserts
nothing): the median of many calls on a real podman config, with no device annotation and with
kvm + tun + ttys, beside `cat` of the same config as the floor (fork, exec, copy stdin); then
crafted configs, four lists of 4096 and of 100,000 names in both vocabularies (refused: the hook
must say so well within podman's hook timeout, whatever the input).

Run as root after tests/prepare: python3 benches/hook.py [--calls N] [--bin [LABEL=]PATH]...
Several --bin compare builds call by call (e.g. before and after a change), each named with its
ELF type: EXEC is position-dependent, DYN a PIE.
"""
import argparse, json, os, shutil, statistics, subprocess, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, CONTAINERS_CONF=os.path.join(REPO, "tests/containers.conf"))
HOOK = os.path.join(REPO, "target/e2e/virtpod-host")


def real_config(tmp):
    """The config podman hands a precreate hook, recorded by a `tee` hook."""
    hooks = os.path.join(tmp, "hooks.d")
    os.mkdir(hooks)
    out = os.path.join(tmp, "config.json")
    with open(os.path.join(hooks, "tee.json"), "w") as f:
        json.dump({"version": "1.0.0", "hook": {"path": "/usr/bin/tee", "args": ["tee", out]},
                   "when": {"always": True}, "stages": ["precreate"]}, f)
    subprocess.run(["podman", "run", "--rm", "--no-healthcheck", "--hooks-dir", hooks,
                    "--entrypoint", "true", "localhost/virtpod:debian"],
                   env=ENV, check=True, capture_output=True)
    with open(out) as f:
        config = json.load(f)
    # The container is gone and its root unmounted: give the hook the image's /etc/group.
    root = os.path.join(tmp, "rootfs")
    os.makedirs(os.path.join(root, "etc"))
    group = subprocess.run(["podman", "run", "--rm", "--no-healthcheck", "--entrypoint", "cat",
                            "localhost/virtpod:debian", "/etc/group"],
                           env=ENV, check=True, capture_output=True, text=True).stdout
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write(group)
    config["root"]["path"] = root
    return config


def run_timed(argv, path, check=True, stderr=subprocess.DEVNULL):
    with open(path, "rb") as stdin:
        t0 = time.perf_counter()
        subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=stderr, check=check)
        return time.perf_counter() - t0


def elf_type(path):
    """EXEC or DYN, from the ELF header's e_type (readelf -h's Type)."""
    with open(path, "rb") as f:
        head = f.read(18)
    return {2: "EXEC", 3: "DYN"}.get(int.from_bytes(head[16:18], "little"), "?")


def crafted(tmp, config, n):
    """n selections of absent nodes in each of four lists, both vocabularies, one config."""
    config = json.loads(json.dumps(config))
    config.setdefault("annotations", {}).update({
        "io.virtpod.device.ttyUSB": " ".join(f"ttyUSB{i}" for i in range(n)),
        "org.containers.qm.device.ttyUSB": ",".join(f"ttyUSB{n - i}" for i in range(n)),
        "io.virtpod.device.ttyACM": " ".join(f"ttyACM{i}" for i in range(n)),
        "org.containers.qm.device.ttyACM": ",".join(f"ttyACM{n - i}" for i in range(n)),
    })
    path = os.path.join(tmp, f"crafted-{n}.json")
    with open(path, "w") as f:
        json.dump(config, f)
    return path


def configs(tmp, name, config, calls):
    """One file per call, each with its own container id, as podman gives each container: the
    hook records what every container was given, and a new record costs more than a rewrite."""
    text = json.dumps(config)
    old = config["linux"]["cgroupsPath"].rsplit("-", 1)[1]
    paths = []
    for i in range(calls):
        path = os.path.join(tmp, f"{name}-{i}.json")
        with open(path, "w") as f:
            f.write(text.replace(old, f"{i:064x}"))
        paths.append(path)
    return paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--crafted-calls", type=int, default=20,
                    help="calls with the crafted config (each a few MB of JSON)")
    ap.add_argument("--bin", action="append", metavar="[LABEL=]PATH",
                    help=f"a virtpod binary to time (repeatable; default {HOOK})")
    args = ap.parse_args()
    bins = []
    for b in args.bin or [HOOK]:
        label, _, path = b.rpartition("=")
        bins.append((label or os.path.basename(path), path))
    calls = args.calls
    tmp = tempfile.mkdtemp()
    config = real_config(tmp)
    plain = configs(tmp, "plain", config, calls)
    # The most names a list may hold (refused: the nodes are absent), and far more.
    bigs = [(4096, crafted(tmp, config, 4096)), (100_000, crafted(tmp, config, 100_000))]
    config.setdefault("annotations", {}).update({
        "io.virtpod.device.kvm": "true", "io.virtpod.device.tun": "true",
        "io.virtpod.device.ttys": "true"})
    three = configs(tmp, "three", config, calls)
    print(f"virtpod hook precreate, whole process, {calls} calls each "
          f"(config {os.path.getsize(plain[0])} bytes, a new container id per call)")
    # Each container's record is a new file under the state dir; on this machine /run is on
    # the root ext4, where creating a file costs ~0.06 ms (~0.005 ms on a tmpfs); on most
    # hosts /run is a tmpfs.
    shm = tempfile.mkdtemp(dir="/dev/shm")
    cases = [("cat (floor)", ["cat"], plain, True)]
    crafted_cases = []
    for k, (label, path) in enumerate(bins):
        # The hook's defaults are /var/log and /run; this machine's /run is on the same disk
        # as /tmp. Each build has state dirs of its own: in a shared one, the first build to
        # run would create every record and the others would only rewrite them.
        hook = [path, "hook", "--log", os.path.join(tmp, "hook.log"),
                "--state-dir", os.path.join(tmp, f"state-{k}"), "precreate"]
        hook_shm = hook[:-3] + ["--state-dir", os.path.join(shm, str(k)), "precreate"]
        name = f"{label} ({elf_type(path)})" if len(bins) > 1 else "hook"
        if len(bins) == 1:
            print(f"{path}: {elf_type(path)}")
        cases += [
            (f"{name}, no annotation", hook, plain, True),
            (f"{name}, kvm+tun+ttys", hook, three, True),
            ("  same, state on tmpfs", hook_shm, three, True),
        ]
        for n, big in bigs:
            crafted_cases.append((f"{name}, 4 x {n} selections", hook, [big] * calls, False))
    width = max(len(c[0]) for c in cases + crafted_cases)
    # Round-robin, so a busy moment of the machine weighs on every case alike.
    times = [[] for _ in cases]
    for i in range(calls):
        for (_, argv, paths, check), t in zip(cases, times):
            t.append(run_timed(argv, paths[i], check))
    crafted_times = [[] for _ in crafted_cases]
    # Refusals go to stderr; a file keeps them off this terminal (on /dev/null, the hook would
    # write them to ours).
    with open(os.path.join(tmp, "stderr"), "w") as stderr:
        for i in range(min(calls, args.crafted_calls)):
            for (_, argv, paths, check), t in zip(crafted_cases, crafted_times):
                t.append(run_timed(argv, paths[i], check, stderr))
    for (label, *_), t in zip(cases, times):
        print(f"  {label:<{width}} median {statistics.median(t) * 1000:6.2f} ms"
              f"   min {min(t) * 1000:6.2f} ms")
    sizes = ", ".join(f"{os.path.getsize(big)}" for _, big in bigs)
    print(f"crafted configs ({sizes} bytes), refused; {len(crafted_times[0])} calls each")
    for (label, *_), t in zip(crafted_cases, crafted_times):
        print(f"  {label:<{width}} median {statistics.median(t) * 1000:8.2f} ms"
              f"   max {max(t) * 1000:8.2f} ms")
    shutil.rmtree(tmp)
    shutil.rmtree(shm)


if __name__ == "__main__":
    main()
