//! Failed authentications, counted per client address.
//!
//! After [`FailureLimiter::MAX_FAILURES`] failures within a window, an address is refused
//! (429) until the window ends, whatever it presents, so tokens cannot be guessed online.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Counts failures per address in fixed windows.
#[derive(Debug)]
pub struct FailureLimiter {
    window: Duration,
    max_failures: u32,
    entries: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        Self::new(Self::MAX_FAILURES, Self::WINDOW)
    }
}

impl FailureLimiter {
    /// Failures allowed per window by default.
    pub const MAX_FAILURES: u32 = 10;
    /// The default window.
    pub const WINDOW: Duration = Duration::from_secs(60);
    /// Addresses remembered at most; older windows are dropped first when full.
    const CAPACITY: usize = 100_000;

    /// A limiter allowing `max_failures` per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            window,
            max_failures,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(wait)` when `client` is locked out.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let entries = self.entries.lock().expect("limiter lock");
        let (start, count) = entries.get(&client)?;
        let elapsed = start.elapsed();
        (*count >= self.max_failures && elapsed < self.window).then(|| self.window - elapsed)
    }

    /// Records one failure from `client`.
    pub fn failed(&self, client: IpAddr) {
        let mut entries = self.entries.lock().expect("limiter lock");
        if entries.len() >= Self::CAPACITY {
            let window = self.window;
            entries.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = entries.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_the_limit_and_only_that_address() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..2 {
            limiter.failed(a);
        }
        assert_eq!(limiter.blocked(a), None);
        limiter.failed(a);
        assert!(limiter.blocked(a).is_some());
        assert_eq!(limiter.blocked(b), None);
    }

    #[test]
    fn windows_end() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(1));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        limiter.failed(a);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(limiter.blocked(a), None);
    }
}
