//! Whatever podman or a runtime might put on the hook's stdin, and whatever annotations a user
//! might write: the hook answers or refuses, it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use virtpod::hook::{log, request, stage, HostPaths};

fuzz_target!(|data: &[u8]| {
    // Reads the real /dev and /sys (read-only); records go nowhere (/proc cannot hold them).
    let host = HostPaths {
        state: "/proc/virtpod-fuzz".into(),
        // Never a real modprobe: a fuzzed config may ask for a module.
        modprobe: Some("/bin/false".into()),
        ..HostPaths::default()
    };
    // As an OCI config (precreate) and as an OCI state (poststop).
    let _ = stage::precreate(data, &host);
    stage::poststop(data, &host);
    // As annotations: "key=value" lines, device keys included.
    if let Ok(text) = std::str::from_utf8(data) {
        let pairs: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (format!("io.virtpod.device.{k}"), v.to_string()))
            .collect();
        // Any error echoes a clipped annotation: one short line.
        if let Err(e) = request::parse(pairs.iter().map(|(k, v)| (k, v))) {
            assert!(e.to_string().len() < 20 * log::CLIP, "{e}");
        }
        // As logged: no control character (no newline: no second line) survives escaping.
        let shown = log::Escape(text).to_string();
        assert!(!shown.contains(|c: char| c.is_control()), "{shown:?}");
        assert!(log::clip(text).len() <= log::CLIP + 32);
    }
});
