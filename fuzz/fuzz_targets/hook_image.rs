//! Whatever an image holds at etc/ and etc/group: the hook reads a bounded regular file or
//! refuses, never follows a link, never waits, and the container still gets its node with the
//! host's gid. The first byte picks what etc/group (or etc) is; the rest is its content, or the
//! target of a symlink, or the size of a sparse file.
#![no_main]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use virtpod::hook::{groups, stage, HostPaths};

struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
    host: HostPaths,
    /// A regular file outside the image, the kind of host file a link would aim at.
    outside: PathBuf,
}

/// One device root with a kvm node (root:root 0600) and one image root, made once.
fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let host = HostPaths {
            dev: dir.path().join("dev"),
            sys: dir.path().join("sys"),
            udev: dir.path().join("udev"),
            // Records go nowhere: /proc cannot hold them.
            state: "/proc/virtpod-fuzz".into(),
            // Never a real modprobe: a fuzzed config may ask for a module.
            modprobe: Some("/bin/false".into()),
            ..HostPaths::default()
        };
        fs::create_dir_all(&host.dev).unwrap();
        mknod(
            &host.dev.join("kvm"),
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(10, 232),
        )
        .expect("the image fuzzer runs as root (mknod of a kvm node)");
        let outside = dir.path().join("host-group");
        fs::write(&outside, "kvm:x:4242:\n").unwrap();
        let root = dir.path().join("rootfs");
        World {
            root,
            host,
            outside,
            _dir: dir,
        }
    })
}

/// A path from fuzz bytes: no NUL, not empty.
fn path_from(bytes: &[u8]) -> PathBuf {
    let text: String = String::from_utf8_lossy(bytes)
        .chars()
        .filter(|&c| c != '\0')
        .collect();
    PathBuf::from(if text.is_empty() { "." } else { &text })
}

/// Builds the image; returns whether etc/group is a plain regular file reachable without links.
fn craft(root: &Path, outside: &Path, shape: u8, rest: &[u8]) -> bool {
    let etc = root.join("etc");
    let group = etc.join("group");
    let dir = || fs::create_dir(&etc).unwrap();
    match shape % 12 {
        0 => {
            dir();
            fs::write(&group, rest).unwrap();
            return rest.len() as u64 <= groups::LIMIT;
        }
        1 => {
            dir();
            let _ = symlink(path_from(rest), &group);
        }
        2 => {
            let _ = symlink(path_from(rest), &etc);
        }
        3 => {
            dir();
            nix::unistd::mkfifo(&group, Mode::from_bits_truncate(0o644)).unwrap();
        }
        4 => {
            dir();
            fs::create_dir(&group).unwrap();
        }
        5 => {
            // Sparse: any size up to 2^40 without writing it.
            dir();
            let mut size = [0u8; 8];
            let n = rest.len().min(5);
            size[..n].copy_from_slice(&rest[..n]);
            fs::File::create(&group)
                .unwrap()
                .set_len(u64::from_le_bytes(size))
                .unwrap();
            return u64::from_le_bytes(size) <= groups::LIMIT;
        }
        6 => {
            dir();
            // /dev/zero's numbers: endless if it were ever read.
            mknod(
                &group,
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o644),
                makedev(1, 5),
            )
            .unwrap();
        }
        7 => {
            dir();
            mknod(
                &group,
                SFlag::S_IFBLK,
                Mode::from_bits_truncate(0o644),
                makedev(7, 0),
            )
            .unwrap();
        }
        8 => fs::write(&etc, rest).unwrap(),
        9 => nix::unistd::mkfifo(&etc, Mode::from_bits_truncate(0o644)).unwrap(),
        10 => {
            // A chain: etc → a → (rest), and etc/group → the host's file.
            let _ = symlink("a", &etc);
            let _ = symlink(path_from(rest), root.join("a"));
            fs::create_dir_all(root.join("b")).unwrap();
            let _ = symlink(outside, root.join("b/group"));
        }
        _ => {
            dir();
            let _ = symlink(outside, &group);
        }
    }
    false
}

fuzz_target!(|data: &[u8]| {
    let Some((&shape, rest)) = data.split_first() else {
        return;
    };
    let w = world();
    let _ = fs::remove_dir_all(&w.root);
    fs::create_dir(&w.root).unwrap();
    let regular = craft(&w.root, &w.outside, shape, rest);

    let read = groups::read(&w.root);
    match (&read, regular) {
        (Ok(g), true) if shape % 12 == 0 => {
            assert_eq!(g, &groups::parse(&String::from_utf8_lossy(rest)))
        }
        (Ok(_), true) => {}
        (Err(e), true) => panic!("a plain group file was refused: {e}"),
        (Ok(g), false) => panic!("read through a link or a special file: {g:?}"),
        (Err(e), false) => assert!(e.contains(&*w.root.display().to_string()), "{e}"),
    }

    // The whole precreate: the node is given, with the image's gid or the host's (0), never
    // the one in the host file a link aims at.
    let config = serde_json::json!({
        "root": {"path": w.root},
        "annotations": {"io.virtpod.device.kvm": "true"},
    });
    let out = stage::precreate(&serde_json::to_vec(&config).unwrap(), &w.host).unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let gid = out["linux"]["devices"][0]["gid"].as_u64().unwrap();
    let expected = read.ok().and_then(|g| g.get("kvm").copied()).unwrap_or(0);
    assert_eq!(gid, u64::from(expected));
});
