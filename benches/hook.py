#!/usr/bin/env python3
"""Whole-process time of one `virtpod hook precreate` call (a benchmark: it prints, it asserts
nothing): the median of many calls on a real podman config, with no device annotation and with
kvm + tun + ttys, beside `cat` of the same config as the floor (fork, exec, copy stdin).

Run as root after tests/prepare: python3 benches/hook.py [--calls N]
"""
import argparse, json, os, statistics, subprocess, tempfile, time

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


def median_ms(argv, stdin_path, calls):
    times = []
    for _ in range(calls):
        with open(stdin_path, "rb") as stdin:
            t0 = time.perf_counter()
            subprocess.run(argv, stdin=stdin, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, min(times) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=500)
    calls = ap.parse_args().calls
    tmp = tempfile.mkdtemp()
    config = real_config(tmp)
    plain = os.path.join(tmp, "plain.json")
    three = os.path.join(tmp, "three.json")
    with open(plain, "w") as f:
        json.dump(config, f)
    config.setdefault("annotations", {}).update({
        "io.virtpod.device.kvm": "true", "io.virtpod.device.tun": "true",
        "io.virtpod.device.ttys": "true"})
    with open(three, "w") as f:
        json.dump(config, f)
    hook = [HOOK, "hook", "--log", os.path.join(tmp, "hook.log"),
            "--state-dir", os.path.join(tmp, "state"), "precreate"]
    print(f"virtpod hook precreate, whole process, {calls} calls each (config {os.path.getsize(plain)} bytes)")
    for label, argv, path in [
        ("cat (floor)", ["cat"], plain),
        ("hook, no annotation", hook, plain),
        ("hook, kvm+tun+ttys", hook, three),
    ]:
        med, low = median_ms(argv, path, calls)
        print(f"  {label:<22} median {med:6.2f} ms   min {low:6.2f} ms")


if __name__ == "__main__":
    main()
