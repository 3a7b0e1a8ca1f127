//! When to restart a failed plugin, and when to give up on it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tessera_model::manifest::RestartPolicy;

use crate::HostConfig;

/// The restart policy of one plugin: the manifest's `[restart]`, else the host's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// First restart delay.
    pub initial_backoff: Duration,
    /// Longest restart delay.
    pub max_backoff: Duration,
    /// Failures within `failure_window` that quarantine the plugin.
    pub quarantine_after: usize,
    /// Window over which failures are counted.
    pub failure_window: Duration,
}

impl Policy {
    /// Resolves the manifest's policy over the host's defaults.
    pub fn resolve(host: &HostConfig, manifest: &RestartPolicy) -> Self {
        let initial_backoff = manifest.initial_backoff_ms.map_or(host.initial_backoff, Duration::from_millis);
        Self {
            initial_backoff,
            max_backoff: manifest.max_backoff_ms.map_or(host.max_backoff, Duration::from_millis).max(initial_backoff),
            quarantine_after: manifest.quarantine_after.map_or(host.quarantine_after, |n| n as usize).max(1),
            failure_window: manifest.failure_window_s.map_or(host.failure_window, Duration::from_secs),
        }
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Restart after this delay.
    Restart(Duration),
    /// Give up: this many failures happened within the window.
    Quarantine(usize),
}

/// Recent failures of one plugin and the current backoff.
#[derive(Debug)]
pub struct Failures {
    policy: Policy,
    recent: VecDeque<Instant>,
    backoff: Duration,
}

impl Failures {
    /// No failures yet.
    pub fn new(policy: Policy) -> Self {
        Self { policy, recent: VecDeque::new(), backoff: policy.initial_backoff }
    }

    /// Records a failure at `now` of a run that began at `started`, and decides what follows.
    pub fn record(&mut self, started: Instant, now: Instant) -> Verdict {
        // A run that stayed healthy for a whole window earns a fresh start.
        if now.duration_since(started) > self.policy.failure_window {
            self.backoff = self.policy.initial_backoff;
        }
        self.recent.push_back(now);
        while self.recent.front().is_some_and(|t| now.duration_since(*t) > self.policy.failure_window) {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.policy.quarantine_after {
            return Verdict::Quarantine(self.recent.len());
        }
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(self.policy.max_backoff);
        Verdict::Restart(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            quarantine_after: 4,
            failure_window: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_then_quarantines() {
        let mut failures = Failures::new(policy());
        let t = Instant::now();
        let verdicts: Vec<Verdict> = (0..4).map(|i| failures.record(t, t + Duration::from_secs(i))).collect();
        assert_eq!(
            verdicts,
            vec![
                Verdict::Restart(Duration::from_millis(100)),
                Verdict::Restart(Duration::from_millis(200)),
                Verdict::Restart(Duration::from_millis(350)),
                Verdict::Quarantine(4),
            ]
        );
    }

    #[test]
    fn failures_outside_the_window_are_forgotten_and_long_runs_reset_the_backoff() {
        let mut failures = Failures::new(policy());
        let t = Instant::now();
        failures.record(t, t);
        failures.record(t, t + Duration::from_secs(1));
        failures.record(t, t + Duration::from_secs(2));
        let later = t + Duration::from_secs(200);
        assert_eq!(
            failures.record(later - Duration::from_secs(100), later),
            Verdict::Restart(Duration::from_millis(100))
        );
    }

    #[test]
    fn the_manifest_overrides_the_host_defaults() {
        let host = HostConfig::new(Vec::new(), "/tmp".into(), tessera_codec::Topics::new("t."));
        let manifest = RestartPolicy { initial_backoff_ms: Some(50), quarantine_after: Some(2), ..Default::default() };
        let p = Policy::resolve(&host, &manifest);
        assert_eq!(p.initial_backoff, Duration::from_millis(50));
        assert_eq!(p.quarantine_after, 2);
        assert_eq!(p.max_backoff, host.max_backoff);
    }
}
