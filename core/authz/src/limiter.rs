//! Failures counted per key in fixed windows: failed authentications, and citizens'
//! ratings per client.
//!
//! A key is what the failures belong to: the presented token's id when the credential is a
//! well-formed Guildhall token (so one caller's bad or stale token never locks out others
//! behind the same address), or the client otherwise, with IPv6 clients grouped by their
//! /64 (one subscriber's allocation) so a single host cannot escape by changing addresses.
//!
//! **Memory is bounded without a global scan.** The keys are spread over [`SHARDS`] maps, each
//! behind its own lock and holding at most its share of [`FailureLimiter::CAPACITY`]. When a
//! shard is full, its expired windows are dropped, and if none had expired the oldest window in
//! that shard goes: work bounded by one shard's size, under that shard's lock only.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many independently locked maps the keys are spread over.
const SHARDS: usize = 64;

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureKey {
    /// A well-formed Guildhall token, by its id.
    Token(String),
    /// A client address (IPv4, or an IPv6 /64).
    Client(ClientKey),
    /// An authenticated principal, by its subject.
    Subject(String),
}

/// A client as the limiter groups it: an IPv4 address, or the /64 an IPv6 address is in.
/// IPv4-mapped IPv6 addresses count as their IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// One IPv4 address.
    V4(u32),
    /// The first 64 bits of an IPv6 address.
    V6(u64),
}

impl ClientKey {
    /// The group `ip` belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(u32::from(v4)),
            IpAddr::V6(v6) => Self::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

impl From<IpAddr> for FailureKey {
    fn from(ip: IpAddr) -> Self {
        FailureKey::Client(ClientKey::of(ip))
    }
}

/// Counts failures per key in fixed windows.
#[derive(Debug)]
pub struct FailureLimiter {
    window: Duration,
    max_failures: u32,
    per_shard: usize,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<FailureKey, (Instant, u32)>>>,
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
    /// Keys remembered at most, over all shards.
    pub const CAPACITY: usize = 100_000;

    /// A limiter allowing `max_failures` per `window`.
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self::with_capacity(max_failures, window, Self::CAPACITY)
    }

    /// A limiter remembering at most about `capacity` keys.
    pub fn with_capacity(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            window,
            max_failures,
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard(&self, key: &FailureKey) -> &Mutex<HashMap<FailureKey, (Instant, u32)>> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        &self.shards[index]
    }

    /// `Some(wait)` when `key` has used up its failures in this window.
    pub fn blocked(&self, key: &FailureKey) -> Option<Duration> {
        let shard = self.shard(key).lock().expect("limiter lock");
        let (start, count) = shard.get(key)?;
        let elapsed = start.elapsed();
        (*count >= self.max_failures && elapsed < self.window).then(|| self.window - elapsed)
    }

    /// Records one failure against `key`.
    pub fn failed(&self, key: FailureKey) {
        let mut shard = self.shard(&key).lock().expect("limiter lock");
        self.record(&mut shard, key);
    }

    /// Counts one use against `key` unless it has used up this window: `Err(wait)` then.
    /// The check and the count are one step, so concurrent uses cannot both slip under
    /// the limit.
    pub fn take(&self, key: FailureKey) -> Result<(), Duration> {
        let mut shard = self.shard(&key).lock().expect("limiter lock");
        if let Some((start, count)) = shard.get(&key) {
            let elapsed = start.elapsed();
            if *count >= self.max_failures && elapsed < self.window {
                return Err(self.window - elapsed);
            }
        }
        self.record(&mut shard, key);
        Ok(())
    }

    fn record(&self, shard: &mut HashMap<FailureKey, (Instant, u32)>, key: FailureKey) {
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            let window = self.window;
            shard.retain(|_, (start, _)| start.elapsed() < window);
            if shard.len() >= self.per_shard
                && let Some(oldest) = shard
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(k, _)| k.clone())
            {
                shard.remove(&oldest);
            }
        }
        let entry = shard.entry(key).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("limiter lock").len())
            .sum()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> FailureKey {
        s.parse::<IpAddr>().unwrap().into()
    }

    #[test]
    fn locks_out_after_the_limit_and_only_that_key() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        for _ in 0..2 {
            limiter.failed(ip("192.0.2.1"));
        }
        assert_eq!(limiter.blocked(&ip("192.0.2.1")), None);
        limiter.failed(ip("192.0.2.1"));
        assert!(limiter.blocked(&ip("192.0.2.1")).is_some());
        assert_eq!(limiter.blocked(&ip("192.0.2.2")), None);
        assert_eq!(limiter.blocked(&FailureKey::Token("abc".into())), None);
    }

    #[test]
    fn take_checks_and_counts_in_one_step() {
        let limiter = std::sync::Arc::new(FailureLimiter::new(10, Duration::from_secs(60)));
        let granted = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (limiter, granted) = (limiter.clone(), granted.clone());
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        if limiter.take(ip("192.0.2.7")).is_ok() {
                            granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(granted.load(std::sync::atomic::Ordering::SeqCst), 10);
        assert!(limiter.take(ip("192.0.2.7")).unwrap_err() > Duration::from_secs(50));
        assert!(limiter.take(ip("192.0.2.8")).is_ok());
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60));
        limiter.failed(ip("2001:db8:1:2::1"));
        limiter.failed(ip("2001:db8:1:2:ffff::9"));
        assert!(limiter.blocked(&ip("2001:db8:1:2::77")).is_some());
        assert_eq!(limiter.blocked(&ip("2001:db8:1:3::1")), None);
        // An IPv4-mapped address is its IPv4 address, and never an IPv6 /64.
        limiter.failed(ip("::ffff:192.0.2.9"));
        limiter.failed(ip("192.0.2.9"));
        assert!(limiter.blocked(&ip("192.0.2.9")).is_some());
        assert_ne!(
            ClientKey::of("0.0.0.1".parse().unwrap()),
            ClientKey::of("::1".parse().unwrap())
        );
    }

    #[test]
    fn windows_end() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(1));
        limiter.failed(ip("192.0.2.1"));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(limiter.blocked(&ip("192.0.2.1")), None);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_new_keys() {
        let limiter = FailureLimiter::with_capacity(10, Duration::from_secs(60), 640);
        for i in 0..100_000u32 {
            limiter.failed(FailureKey::Token(i.to_string()));
        }
        assert!(limiter.len() <= 640, "{} keys remembered", limiter.len());
        assert!(
            limiter.len() >= 600,
            "shards were emptied: {}",
            limiter.len()
        );
    }
}
