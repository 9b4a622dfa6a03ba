//! When to restart a service that died. s6 never gives up on a service, and neither does init:
//! libvirt's daemons are what the guests need. The delay doubles with each start that failed
//! before the service became ready (a daemon that cannot start is not hammered) and is capped;
//! a service that became ready and died later is back after the initial delay.

use std::time::Duration;

use super::catalog::RestartPolicy;

/// The delay before the next start, after `failed_starts` consecutive starts (counting this one)
/// that ended before the service was ready.
pub fn delay(policy: &RestartPolicy, failed_starts: u32) -> Duration {
    let factor = 2u32.saturating_pow(failed_starts.saturating_sub(1));
    policy
        .initial_delay
        .saturating_mul(factor)
        .min(policy.max_delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_is_capped_never_gives_up() {
        let p = RestartPolicy::default();
        let delays: Vec<u128> = (0..10).map(|n| delay(&p, n).as_millis()).collect();
        assert_eq!(
            delays,
            vec![500, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(delay(&p, u32::MAX), Duration::from_secs(30));
    }
}
