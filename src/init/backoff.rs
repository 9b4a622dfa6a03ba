//! When to restart a service that died: exponential backoff, and a burst limit after which the
//! service is given up (s6's and systemd's StartLimitBurst idea).

use std::time::{Duration, Instant};

use super::catalog::RestartPolicy;

/// `history` holds the times of earlier restarts; those older than the burst window are
/// forgotten. Returns the delay before the next start, or `None` to give up.
pub fn next_restart(
    policy: &RestartPolicy,
    history: &mut Vec<Instant>,
    now: Instant,
) -> Option<Duration> {
    history.retain(|t| now.duration_since(*t) < policy.burst_window);
    if history.len() >= policy.burst {
        return None;
    }
    let factor = 2u32.saturating_pow(history.len() as u32);
    let delay = policy
        .initial_delay
        .saturating_mul(factor)
        .min(policy.max_delay);
    history.push(now);
    Some(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_gives_up_within_the_window() {
        let p = RestartPolicy::default();
        let mut h = Vec::new();
        let t0 = Instant::now();
        let delays: Vec<_> = (0..5)
            .map(|i| next_restart(&p, &mut h, t0 + Duration::from_secs(i)).unwrap())
            .collect();
        assert_eq!(
            delays.iter().map(|d| d.as_millis()).collect::<Vec<_>>(),
            vec![500, 1000, 2000, 4000, 8000]
        );
        assert_eq!(next_restart(&p, &mut h, t0 + Duration::from_secs(6)), None);
    }

    #[test]
    fn old_failures_are_forgotten_and_delay_is_capped() {
        let p = RestartPolicy {
            max_delay: Duration::from_secs(1),
            ..RestartPolicy::default()
        };
        let mut h = Vec::new();
        let t0 = Instant::now();
        for i in 0..4 {
            assert!(
                next_restart(&p, &mut h, t0 + Duration::from_secs(i)).unwrap()
                    <= Duration::from_secs(1)
            );
        }
        let later = t0 + Duration::from_secs(120);
        assert_eq!(
            next_restart(&p, &mut h, later),
            Some(Duration::from_millis(500))
        );
    }
}
