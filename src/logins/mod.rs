//! The web console's logins, throttled: cockpit-session checks passwords with PAM, and the
//! appliance's PAM stack for it (cockpit/pam-auth, /etc/pam.d/virtpod-cockpit-auth) runs
//! `virtpod login-gate` before and after the password check. Five wrong passwords in a row for
//! one user from one client address lock that pair out, for a minute and then twice as long
//! with each further failure (at most 15 minutes); a locked-out try is refused before the
//! password is looked at, so guessing on gains nothing. Another address, or the same user
//! elsewhere, is not touched: the right password still works while an attack runs. Every
//! failure, lockout and login is a line in the container's log with the client address.
//!
//! `ledger` is the record and its rules (pure); `gate` keeps it in a file under a lock and
//! words the log lines.

pub mod gate;
pub mod ledger;
