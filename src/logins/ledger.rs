//! The record of failed console logins, per (user, client address), and the lockout it
//! decides. Pure: the caller gives the time and stores the ledger (gate.rs).

use serde::{Deserialize, Serialize};

/// The numbers of the lockout (docs/clients.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failed logins in a row from one address, for one user, before the first lockout.
    pub tries: u32,
    /// The first lockout, in seconds; each failure after a lockout doubles it.
    pub first_lock: u64,
    /// The longest lockout, in seconds.
    pub max_lock: u64,
    /// Seconds without a failure (counted from the end of a lockout) after which the failures
    /// are forgotten.
    pub forget_after: u64,
    /// At most this many (user, address) pairs are remembered: a spray of made-up user names
    /// cannot grow the file without bound. The oldest are forgotten first.
    pub max_entries: usize,
}

pub const POLICY: Policy = Policy {
    tries: 5,
    first_lock: 60,
    max_lock: 900,
    forget_after: 900,
    max_entries: 4096,
};

/// User names and addresses are cut to this many characters before they are kept or printed.
const MAX_FIELD: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    user: String,
    addr: String,
    /// Failed logins in a row (password checked and wrong).
    failures: u32,
    /// When the last one was, in seconds since the epoch.
    last: u64,
    /// Refused without a look at the password until then (0: not locked).
    locked_until: u64,
    /// Tries refused during the current lockout.
    refused: u32,
}

/// What `check` says about a login about to be tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password.
    Open,
    /// Refuse without checking it. `first` is true for the first try refused in this lockout
    /// (the one worth a log line; the count of the rest is in the next `Failed`).
    Locked {
        remaining: u64,
        failures: u32,
        first: bool,
    },
}

/// What a failed login did to the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// Failed logins in a row, this one included.
    pub failures: u32,
    /// The lockout this failure started, in seconds.
    pub locked_for: Option<u64>,
    /// Tries refused during the lockout before this failure.
    pub refused_before: u32,
}

fn field(s: &str) -> String {
    s.chars().take(MAX_FIELD).collect()
}

impl Policy {
    /// The lockout after `failures` failures in a row: none below `tries`, then `first_lock`
    /// doubling with each failure, at most `max_lock`.
    pub fn lock_for(&self, failures: u32) -> Option<u64> {
        let over = failures.checked_sub(self.tries)?;
        let doubled = self.first_lock.saturating_mul(1u64 << over.min(32));
        Some(doubled.min(self.max_lock))
    }
}

impl Ledger {
    fn find(&mut self, user: &str, addr: &str) -> Option<&mut Entry> {
        let (user, addr) = (field(user), field(addr));
        self.entries
            .iter_mut()
            .find(|e| e.user == user && e.addr == addr)
    }

    /// Forget pairs whose failures are older than `forget_after` (counted from the end of their
    /// lockout), then the oldest beyond `max_entries`.
    fn prune(&mut self, policy: &Policy, now: u64) {
        self.entries.retain(|e| {
            now < e
                .last
                .max(e.locked_until)
                .saturating_add(policy.forget_after)
        });
        if self.entries.len() > policy.max_entries {
            self.entries.sort_by_key(|e| std::cmp::Reverse(e.last));
            self.entries.truncate(policy.max_entries);
        }
    }

    /// Before the password is checked: is this user locked out from this address?
    pub fn check(&mut self, policy: &Policy, user: &str, addr: &str, now: u64) -> Verdict {
        self.prune(policy, now);
        match self.find(user, addr) {
            Some(e) if now < e.locked_until => {
                e.refused += 1;
                Verdict::Locked {
                    remaining: e.locked_until - now,
                    failures: e.failures,
                    first: e.refused == 1,
                }
            }
            _ => Verdict::Open,
        }
    }

    /// The password was checked and was wrong (or the user does not exist).
    pub fn failed(&mut self, policy: &Policy, user: &str, addr: &str, now: u64) -> Failed {
        self.prune(policy, now);
        if self.find(user, addr).is_none() {
            self.entries.push(Entry {
                user: field(user),
                addr: field(addr),
                failures: 0,
                last: now,
                locked_until: 0,
                refused: 0,
            });
        }
        let e = self.find(user, addr).expect("just added");
        e.failures = e.failures.saturating_add(1);
        e.last = now;
        let refused_before = std::mem::take(&mut e.refused);
        let locked_for = policy.lock_for(e.failures);
        if let Some(secs) = locked_for {
            e.locked_until = now.saturating_add(secs);
        }
        let failures = e.failures;
        self.prune(policy, now);
        Failed {
            failures,
            locked_for,
            refused_before,
        }
    }

    /// The password was right: the pair's failures are forgotten. Returns how many there were.
    pub fn passed(&mut self, user: &str, addr: &str) -> u32 {
        let (u, a) = (field(user), field(addr));
        let before = self
            .entries
            .iter()
            .find(|e| e.user == u && e.addr == a)
            .map_or(0, |e| e.failures);
        self.entries.retain(|e| !(e.user == u && e.addr == a));
        before
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = POLICY;

    #[test]
    fn five_failures_lock_the_pair_out_for_a_minute_then_each_failure_doubles_it() {
        let mut l = Ledger::default();
        let t = 1_000_000;
        for n in 1..5 {
            assert_eq!(l.check(&P, "admin", "10.0.0.9", t), Verdict::Open);
            let f = l.failed(&P, "admin", "10.0.0.9", t);
            assert_eq!((f.failures, f.locked_for), (n, None));
        }
        let f = l.failed(&P, "admin", "10.0.0.9", t + 1);
        assert_eq!((f.failures, f.locked_for), (5, Some(60)));
        assert_eq!(
            l.check(&P, "admin", "10.0.0.9", t + 2),
            Verdict::Locked {
                remaining: 59,
                failures: 5,
                first: true
            }
        );
        assert!(matches!(
            l.check(&P, "admin", "10.0.0.9", t + 3),
            Verdict::Locked { first: false, .. }
        ));
        // The lockout ends; the next failure locks for twice as long, and says how many tries
        // were refused meanwhile.
        assert_eq!(l.check(&P, "admin", "10.0.0.9", t + 61), Verdict::Open);
        let f = l.failed(&P, "admin", "10.0.0.9", t + 61);
        assert_eq!(
            f,
            Failed {
                failures: 6,
                locked_for: Some(120),
                refused_before: 2
            }
        );
        assert_eq!(P.lock_for(7), Some(240));
        assert_eq!(P.lock_for(9), Some(900), "at most 15 minutes");
        assert_eq!(P.lock_for(200), Some(900));
    }

    #[test]
    fn a_lockout_is_per_user_and_address_so_the_right_user_elsewhere_still_gets_in() {
        let mut l = Ledger::default();
        for _ in 0..5 {
            l.failed(&P, "admin", "203.0.113.7", 100);
        }
        assert!(matches!(
            l.check(&P, "admin", "203.0.113.7", 101),
            Verdict::Locked { .. }
        ));
        assert_eq!(l.check(&P, "admin", "192.0.2.2", 101), Verdict::Open);
        assert_eq!(l.check(&P, "other", "203.0.113.7", 101), Verdict::Open);
    }

    #[test]
    fn the_right_password_forgets_the_failures() {
        let mut l = Ledger::default();
        for _ in 0..4 {
            l.failed(&P, "admin", "a", 100);
        }
        assert_eq!(l.passed("admin", "a"), 4);
        assert!(l.is_empty());
        let f = l.failed(&P, "admin", "a", 101);
        assert_eq!(f.failures, 1);
    }

    #[test]
    fn failures_are_forgotten_a_quarter_hour_after_the_last_one_or_the_lockout() {
        let mut l = Ledger::default();
        for _ in 0..4 {
            l.failed(&P, "admin", "a", 100);
        }
        assert_eq!(l.failed(&P, "admin", "a", 100 + 899).failures, 5);
        // Locked until 999 + 60; forgotten 900 s after that.
        assert!(matches!(
            l.check(&P, "admin", "a", 1058),
            Verdict::Locked { .. }
        ));
        assert_eq!(l.check(&P, "admin", "a", 1059), Verdict::Open);
        assert_eq!(l.len(), 1);
        assert_eq!(l.check(&P, "admin", "a", 1059 + 900), Verdict::Open);
        assert!(l.is_empty());
    }

    #[test]
    fn a_spray_of_made_up_names_keeps_the_ledger_bounded_and_long_fields_are_cut() {
        let small = Policy {
            max_entries: 3,
            ..P
        };
        let mut l = Ledger::default();
        for n in 0..10u64 {
            l.failed(&small, &format!("user{n}"), "a", 100 + n);
        }
        assert_eq!(l.len(), 3);
        assert_eq!(l.check(&small, "user9", "a", 200), Verdict::Open);
        assert_eq!(l.failed(&small, "user9", "a", 200).failures, 2, "kept");
        let long = "x".repeat(100_000);
        l.failed(&small, &long, "a", 300);
        let json = serde_json::to_string(&l).unwrap();
        assert!(json.len() < 1000, "{}", json.len());
        assert_eq!(l.failed(&small, &long, "a", 300).failures, 2);
    }
}
