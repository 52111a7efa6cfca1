//! Throttles failed authentication attempts per key (a client IP, a user
//! name): after `max_failures` failures within `window`, the key is locked
//! out for `lockout`. A success clears the key's failures.
//!
//! The clock is passed in (`now`), so the arithmetic is tested without
//! sleeping. Memory is bounded: at `capacity` keys, expired entries are
//! dropped first, then the oldest key that is not locked out.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
    pub capacity: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Locked out; try again after this long.
    Locked {
        retry_after: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start: Instant,
    locked_until: Option<Instant>,
}

/// Whether an attempt may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Reserved: call [`Throttle::end`] when its outcome is recorded.
    Reserved,
    Locked {
        retry_after: Duration,
    },
    /// Another attempt for the key is being checked.
    Busy,
}

#[derive(Debug)]
pub struct Throttle<K> {
    limits: Limits,
    entries: HashMap<K, Entry>,
    /// SECURITY: keys with an attempt being checked. The lockout is decided
    /// before a password hash runs and counted after it; without this, a
    /// burst of parallel guesses all pass the check before the first
    /// failure is counted. One attempt at a time per key makes the count
    /// exact.
    in_flight: std::collections::HashSet<K>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(limits: Limits) -> Self {
        Throttle {
            limits,
            entries: HashMap::new(),
            in_flight: Default::default(),
        }
    }

    /// Reserves the one attempt `key` may have under way, unless it is
    /// locked out or already has one.
    pub fn begin(&mut self, key: &K, now: Instant) -> Attempt {
        if let Verdict::Locked { retry_after } = self.check(key, now) {
            return Attempt::Locked { retry_after };
        }
        if !self.in_flight.insert(key.clone()) {
            return Attempt::Busy;
        }
        Attempt::Reserved
    }

    /// Ends the attempt [`Throttle::begin`] reserved (after its
    /// `failure` or `success` was recorded, or when it was abandoned).
    pub fn end(&mut self, key: &K) {
        self.in_flight.remove(key);
    }

    /// Whether an attempt by `key` may be checked at all.
    pub fn check(&self, key: &K, now: Instant) -> Verdict {
        match self.entries.get(key).and_then(|e| e.locked_until) {
            Some(until) if until > now => Verdict::Locked {
                retry_after: until - now,
            },
            _ => Verdict::Allow,
        }
    }

    /// Records a failed attempt; returns the verdict for the next one.
    pub fn failure(&mut self, key: &K, now: Instant) -> Verdict {
        if !self.entries.contains_key(key) && self.entries.len() >= self.limits.capacity {
            self.make_room(now);
        }
        let limits = self.limits;
        let e = self.entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            window_start: now,
            locked_until: None,
        });
        if now.duration_since(e.window_start) > limits.window
            || e.locked_until.is_some_and(|u| u <= now)
        {
            *e = Entry {
                failures: 0,
                window_start: now,
                locked_until: None,
            };
        }
        e.failures += 1;
        if e.failures >= limits.max_failures {
            e.locked_until = Some(now + limits.lockout);
            return Verdict::Locked {
                retry_after: limits.lockout,
            };
        }
        Verdict::Allow
    }

    /// Failures of `key` that still count: those in the current window,
    /// and those that led to a lockout until a success clears them (so a
    /// captcha asked after failures stays asked after the lockout ends).
    pub fn recent_failures(&self, key: &K, now: Instant) -> u32 {
        match self.entries.get(key) {
            Some(e) if e.locked_until.is_some() => e.failures,
            Some(e) if now.duration_since(e.window_start) <= self.limits.window => e.failures,
            _ => 0,
        }
    }

    pub fn success(&mut self, key: &K) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self, now: Instant) {
        let limits = self.limits;
        self.entries.retain(|_, e| {
            let active_window = now.duration_since(e.window_start) <= limits.window;
            let locked = e.locked_until.is_some_and(|u| u > now);
            active_window || locked
        });
        if self.entries.len() >= limits.capacity {
            // SECURITY: evict the oldest key that is not locked out, so
            // spraying new keys cannot flush a lockout; only when every key
            // is locked does the oldest lockout go.
            let victim = self
                .entries
                .iter()
                .min_by_key(|(_, e)| (e.locked_until.is_some_and(|u| u > now), e.window_start))
                .map(|(k, _)| k.clone());
            if let Some(k) = victim {
                self.entries.remove(&k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_attempt_at_a_time_per_key() {
        let mut t = Throttle::new(Limits {
            max_failures: 2,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
            capacity: 10,
        });
        let now = Instant::now();
        assert_eq!(t.begin(&"a", now), Attempt::Reserved);
        assert_eq!(
            t.begin(&"a", now),
            Attempt::Busy,
            "a second guess in parallel waits"
        );
        assert_eq!(
            t.begin(&"b", now),
            Attempt::Reserved,
            "other keys are not held up"
        );
        t.failure(&"a", now);
        t.end(&"a");
        assert_eq!(t.begin(&"a", now), Attempt::Reserved);
        assert!(matches!(t.failure(&"a", now), Verdict::Locked { .. }));
        t.end(&"a");
        assert!(matches!(t.begin(&"a", now), Attempt::Locked { .. }));
    }

    const LIMITS: Limits = Limits {
        max_failures: 3,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(300),
        capacity: 4,
    };

    #[test]
    fn locks_after_max_failures_and_unlocks_after_lockout() {
        let t0 = Instant::now();
        let mut t = Throttle::new(LIMITS);
        assert_eq!(t.failure(&"ip", t0), Verdict::Allow);
        assert_eq!(
            t.failure(&"ip", t0 + Duration::from_secs(1)),
            Verdict::Allow
        );
        assert_eq!(t.check(&"ip", t0 + Duration::from_secs(2)), Verdict::Allow);
        let third = t0 + Duration::from_secs(2);
        assert_eq!(
            t.failure(&"ip", third),
            Verdict::Locked {
                retry_after: Duration::from_secs(300)
            }
        );
        assert_eq!(
            t.check(&"ip", third + Duration::from_secs(100)),
            Verdict::Locked {
                retry_after: Duration::from_secs(200)
            }
        );
        assert_eq!(t.check(&"other", third), Verdict::Allow);
        assert_eq!(
            t.check(&"ip", third + Duration::from_secs(300)),
            Verdict::Allow
        );
        // After the lockout the count starts again.
        assert_eq!(
            t.failure(&"ip", third + Duration::from_secs(301)),
            Verdict::Allow
        );
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t0 = Instant::now();
        let mut t = Throttle::new(LIMITS);
        t.failure(&"ip", t0);
        t.failure(&"ip", t0 + Duration::from_secs(30));
        assert_eq!(
            t.failure(&"ip", t0 + Duration::from_secs(61)),
            Verdict::Allow
        );
    }

    #[test]
    fn success_clears() {
        let t0 = Instant::now();
        let mut t = Throttle::new(LIMITS);
        t.failure(&"ip", t0);
        t.failure(&"ip", t0);
        t.success(&"ip");
        assert_eq!(t.failure(&"ip", t0), Verdict::Allow);
    }

    #[test]
    fn memory_is_bounded_and_locked_keys_survive() {
        let t0 = Instant::now();
        let mut t = Throttle::new(LIMITS);
        for _ in 0..3 {
            t.failure(&0u32, t0);
        }
        for k in 1..100u32 {
            t.failure(&k, t0 + Duration::from_secs(k as u64));
            assert!(t.len() <= LIMITS.capacity);
        }
        // Spraying 99 other keys did not flush the lockout.
        assert!(matches!(
            t.check(&0, t0 + Duration::from_secs(100)),
            Verdict::Locked { .. }
        ));
    }

    #[test]
    fn recent_failures_last_the_window_and_past_a_lockout() {
        let l = Limits {
            max_failures: 3,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(30),
            capacity: 10,
        };
        let mut t = Throttle::new(l);
        let t0 = Instant::now();
        t.failure(&"a", t0);
        assert_eq!(t.recent_failures(&"a", t0), 1);
        assert_eq!(t.recent_failures(&"a", t0 + Duration::from_secs(61)), 0);
        t.failure(&"a", t0);
        t.failure(&"a", t0);
        // Locked, then the lockout ends: the failures still count.
        assert_eq!(t.recent_failures(&"a", t0 + Duration::from_secs(600)), 3);
        t.success(&"a");
        assert_eq!(t.recent_failures(&"a", t0), 0);
    }
}
