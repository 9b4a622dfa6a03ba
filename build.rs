//! Link the virtpod executable as position-dependent (non-PIE) on Linux/glibc.
//!
//! podman runs `virtpod hook` as a new process for every container it creates, so start-up is
//! most of its cost. As a PIE the dynamic loader must apply ~14,000 relative relocations and
//! copy every page of .data.rel.ro (the vtables and format strings of clap, serde and tracing)
//! before main; linked at a fixed address it applies none, which saves ~0.4 ms per call here
//! (`python3 benches/hook.py`). The cost is ASLR of the executable image itself; the hook's
//! input comes from whoever may start the container, who already holds the same privileges.
//! Only the final link changes: the code stays position-independent, and proc-macros and
//! build scripts are untouched (a plain `-no-pie` in RUSTFLAGS would break their links).
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
