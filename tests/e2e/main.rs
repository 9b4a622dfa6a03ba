//! End-to-end tests: real podman, real libvirtd in the appliance container, real virsh on the
//! host, a real Linux guest. `tests/run` prepares what they need (tests/prepare) and runs them.

mod access;
mod cdi;
mod clients;
mod cockpit;
mod device;
mod doctor;
mod faults;
mod front_door;
mod harness;
mod hook;
mod hooks;
mod init;
mod install;
mod modes;
mod network;
mod owners;
mod polkit;
mod quadlet;
mod realhost;
mod realhost_quadlet;
mod socket;
