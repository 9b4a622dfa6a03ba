//! `virtpod init`, PID 1 of the appliance container, and `virtpod health`.
//!
//! Data at the centre (`args`, `catalog`, `backoff`, `state`), processes at the edges (`reaper`
//! owns wait(2), `spawn` starts one service, `supervisor` drives them, `prepare` touches the
//! container's files before any daemon starts).

pub mod args;
pub mod backoff;
pub mod catalog;
pub mod health;
pub mod notify;
pub mod prepare;
pub mod reaper;
pub mod run;
pub mod spawn;
pub mod state;
pub mod supervisor;
