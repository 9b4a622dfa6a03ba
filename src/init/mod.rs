//! `virtpod init`, PID 1 of the appliance container, and `virtpod health`.
//!
//! Data at the centre (`args`, `settings`, `catalog`, `backoff`, `state`), processes at the
//! edges (`reaper` owns wait(2), `spawn` forks and execs every child, `supervisor` drives them,
//! `prepare` touches the container's files before any daemon starts, `owners` re-owns
//! state volumes that come from an image with other account numbers, `accounts` names the host's
//! users for libvirt, `helpers` is the libvirt work init runs as child processes).

pub mod accounts;
pub mod activation;
pub mod args;
pub mod backoff;
pub mod catalog;
pub mod cockpit;
pub mod cpus;
pub mod health;
pub mod helpers;
pub mod listening;
pub mod notify;
pub mod owners;
pub mod polkit;
pub mod prepare;
pub mod reaper;
pub mod run;
pub mod sasl;
pub mod settings;
pub mod spawn;
pub mod ssh;
pub mod state;
pub mod supervisor;
pub mod tool;
pub mod trim;
