#!/usr/bin/env python3
"""Whole-process time of one `virtpod hook precreate` call (a benchmark: it prints, it asserts
nothing): the median of many calls on a real podman config, with no device annotation and with
kvm + tun + ttys, beside `cat` of the same config as the floor (fork, exec, copy stdin).

Run as root after tests/prepare: python3 benches/hook.py [--calls N] [--bin PATH]
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


def run_timed(argv, path):
    with open(path, "rb") as stdin:
        t0 = time.perf_counter()
        subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t0


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
    ap.add_argument("--bin", default=HOOK, help="the virtpod binary to time")
    args = ap.parse_args()
    calls = args.calls
    tmp = tempfile.mkdtemp()
    config = real_config(tmp)
    plain = configs(tmp, "plain", config, calls)
    config.setdefault("annotations", {}).update({
        "io.virtpod.device.kvm": "true", "io.virtpod.device.tun": "true",
        "io.virtpod.device.ttys": "true"})
    three = configs(tmp, "three", config, calls)
    # The hook's defaults are /var/log and /run; this machine's /run is on the same disk as /tmp.
    hook = [args.bin, "hook", "--log", os.path.join(tmp, "hook.log"),
            "--state-dir", os.path.join(tmp, "state"), "precreate"]
    print(f"virtpod hook precreate, whole process, {calls} calls each "
          f"(config {os.path.getsize(plain[0])} bytes, a new container id per call)")
    # Each container's record is a new file under the state dir; on this machine /run is on
    # the root ext4, where creating a file costs ~0.5 ms; on most hosts /run is a tmpfs.
    shm = tempfile.mkdtemp(dir="/dev/shm")
    hook_shm = [args.bin, "hook", "--log", os.path.join(tmp, "hook.log"),
                "--state-dir", shm, "precreate"]
    cases = [
        ("cat (floor)", ["cat"], plain),
        ("hook, no annotation", hook, plain),
        ("hook, kvm+tun+ttys", hook, three),
        ("  same, state on tmpfs", hook_shm, three),
    ]
    # Round-robin, so a busy moment of the machine weighs on every case alike.
    times = [[] for _ in cases]
    for i in range(calls):
        for (_, argv, paths), t in zip(cases, times):
            t.append(run_timed(argv, paths[i]))
    for (label, _, _), t in zip(cases, times):
        print(f"  {label:<24} median {statistics.median(t) * 1000:6.2f} ms"
              f"   min {min(t) * 1000:6.2f} ms")
    shutil.rmtree(tmp)
    shutil.rmtree(shm)

if __name__ == "__main__":
    main()
