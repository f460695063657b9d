//! Restart and image-pull back-off: how long to wait before the next attempt.
//! One thing to know: as in the kubelet, the first restart is immediate and the waits after
//! it go `initial`, doubling to `max`; a container that ran `reset_after` starts over.

use std::time::Duration;

use crate::config::BackoffConfig;

/// The wait before this attempt and the back-off to remember for the next one.
///
/// `current` is the remembered back-off (`None` after a reset); `ran_for` how long the
/// failed attempt lasted (zero for a failed pull).
pub fn next_backoff(
    current: Option<Duration>,
    ran_for: Duration,
    cfg: &BackoffConfig,
) -> (Duration, Duration) {
    match current {
        Some(d) if ran_for < cfg.reset_after => (d, (d * 2).min(cfg.max)),
        _ => (Duration::ZERO, cfg.initial.min(cfg.max)),
    }
}

/// The wait before pull attempt number `failures + 1` (`failures` ≥ 1): `initial` doubling.
pub fn pull_backoff(failures: u32, cfg: &BackoffConfig) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    (cfg.initial * 2u32.pow(exp)).min(cfg.max)
}

/// A duration as Go prints it (`10s`, `1m20s`, `5m0s`), the form of kubelet messages.
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 && d.subsec_millis() > 0 {
        return format!("{}ms", d.subsec_millis());
    }
    match (secs / 3600, (secs % 3600) / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BackoffConfig {
        BackoffConfig::default()
    }

    #[test]
    fn restarts_wait_zero_then_ten_seconds_doubling_to_five_minutes() {
        let short = Duration::from_secs(1);
        let mut current = None;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let (wait, next) = next_backoff(current, short, &cfg());
            waits.push(wait.as_secs());
            current = Some(next);
        }
        assert_eq!(waits, vec![0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn a_long_run_resets_the_backoff() {
        let (wait, next) = next_backoff(
            Some(Duration::from_secs(300)),
            Duration::from_secs(600),
            &cfg(),
        );
        assert_eq!(wait, Duration::ZERO);
        assert_eq!(next, Duration::from_secs(10));
    }

    #[test]
    fn pulls_back_off_from_the_first_failure() {
        let waits: Vec<u64> = (1..=7).map(|n| pull_backoff(n, &cfg()).as_secs()).collect();
        assert_eq!(waits, vec![10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m0s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
    }
}
