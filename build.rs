//! Link settings for the `virtpod` binary, which runs once per container as podman's hook and
//! as PID 1, so what the dynamic loader does before `main` is a good part of its cost. Both
//! settings apply to that binary alone (`virtpod-libvirt` and the tests link as cargo does)
//! and only for glibc targets linked dynamically.
//!
//! - The unwinder is linked in from gcc's `libgcc_eh.a` instead of loading `libgcc_s.so.1`:
//!   rustc asks for `-lgcc_s`, and a linker script of that name in a directory searched first
//!   answers with the archive. One library fewer to map and relocate, and no run of its
//!   constructor, which asks the CPU for its features with `cpuid`, an exit to the hypervisor
//!   in a VM: ~0.12 ms of a ~0.5 ms hook call (`python3 benches/hook.py`, before and after).
//! - Relative relocations are packed (DT_RELR, glibc ≥ 2.36, GNU ld ≥ 2.38): 11,200 of them
//!   shrink from 273 KB of tables to 3 KB, which the loader no longer reads through.
//!
//! Where gcc has no `libgcc_eh.a` (`cc -print-file-name` answers with a bare name), the
//! binary loads libgcc_s as before and cargo says so in a warning.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let dynamic_glibc = var("CARGO_CFG_TARGET_OS") == "linux"
        && var("CARGO_CFG_TARGET_ENV") == "gnu"
        && !var("CARGO_CFG_TARGET_FEATURE")
            .split(',')
            .any(|f| f == "crt-static");
    if !dynamic_glibc {
        return;
    }
    println!("cargo:rustc-link-arg-bin=virtpod=-Wl,-z,pack-relative-relocs");
    match static_unwinder() {
        Some(archive) => {
            let dir = PathBuf::from(var("OUT_DIR")).join("static-unwinder");
            std::fs::create_dir_all(&dir).expect("creating a directory under OUT_DIR");
            // GNU ld applies every -L to every -l wherever they stand on the command line.
            std::fs::write(
                dir.join("libgcc_s.so"),
                format!("INPUT({})\n", archive.display()),
            )
            .expect("writing a linker script under OUT_DIR");
            println!("cargo:rustc-link-arg-bin=virtpod=-L{}", dir.display());
        }
        None => println!(
            "cargo:warning=no libgcc_eh.a from `cc -print-file-name`: \
             virtpod will load libgcc_s.so.1 (~0.1 ms more per hook call)"
        ),
    }
}

/// gcc's static unwinder, as the C compiler that links us finds it.
fn static_unwinder() -> Option<PathBuf> {
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // An unknown file is echoed back as its bare name.
    (path.is_absolute() && path.is_file()).then_some(path)
}
