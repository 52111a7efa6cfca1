//! Request rate limits with the semantics of nginx's `limit_req`.
//!
//! Each key (a client address, a user, a header value) has an *excess*:
//! how many requests above the rate it has made, draining at the rate.
//! A request adds one. If the excess would pass `burst`, the request is
//! refused (and the excess is left as it was). Otherwise it is served: at
//! once with `nodelay`, or else delayed until the excess it adds has
//! drained, so requests leave at the configured rate with up to `burst`
//! waiting. Rates are in thousandths of a request per second, as nginx
//! keeps them; the excess is kept in millionths of a request and time in
//! microseconds, so that requests microseconds apart drain what they should
//! (nginx's millisecond clock lets a key at thousands of requests a second
//! drain nothing between requests, and refuse a rate it allows).
//!
//! The clock is passed in. Memory is bounded: a key whose excess has
//! drained holds nothing worth keeping and is dropped first when the table
//! is full; past that, the key seen longest ago goes.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// A rate in thousandths of a request per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub milli_per_sec: u64,
}

impl Rate {
    /// `100r/s` or `10r/m`.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let t = s.trim();
        let (n, per) = t
            .split_once("r/")
            .ok_or_else(|| format!("{s:?} is not a rate (write e.g. \"100r/s\" or \"10r/m\")"))?;
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: {n:?} is not a whole number of requests"))?;
        if n == 0 || n > 1_000_000 {
            return Err(format!(
                "{s:?}: the number of requests must be 1 to 1000000"
            ));
        }
        let milli_per_sec = match per.trim() {
            "s" => n * 1000,
            "m" => n * 1000 / 60,
            other => return Err(format!("{s:?}: the unit is r/s or r/m, not r/{other}")),
        };
        if milli_per_sec == 0 {
            return Err(format!("{s:?} is too slow"));
        }
        Ok(Rate { milli_per_sec })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    pub rate: Rate,
    /// Requests above the rate that may be served (or queued).
    pub burst: u32,
    /// Serve burst requests at once instead of spacing them out.
    pub nodelay: bool,
    /// Keys tracked at most.
    pub capacity: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Serve after waiting this long.
    Delay(Duration),
    /// Refuse; the next request fits after this long.
    Reject {
        retry_after: Duration,
    },
}

/// One request, in the unit of the excess.
const REQUEST: u64 = 1_000_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Millionths of a request above the rate.
    excess: u64,
    last: Instant,
}

/// What a rate drains in `elapsed`, in millionths of a request.
fn drained(rate: u64, elapsed: Duration) -> u64 {
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    rate.saturating_mul(us) / 1000
}

#[derive(Debug)]
pub struct Limiter<K> {
    zone: Zone,
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(zone: Zone) -> Self {
        Limiter {
            zone,
            entries: HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn check(&mut self, key: &K, now: Instant) -> Decision {
        let rate = self.zone.rate.milli_per_sec;
        let burst = u64::from(self.zone.burst) * REQUEST;
        // As nginx: what is left of the excess after draining, plus this
        // request, never below zero; a key seen for the first time has none.
        let excess = match self.entries.get(key) {
            Some(e) => (e.excess + REQUEST)
                .saturating_sub(drained(rate, now.saturating_duration_since(e.last))),
            None => 0,
        };
        if excess > burst {
            // Time until one more request fits: excess must drain to burst.
            let wait_ms = (excess - burst) / rate;
            return Decision::Reject {
                retry_after: Duration::from_millis(wait_ms.max(1)),
            };
        }
        if !self.entries.contains_key(key) && self.entries.len() >= self.zone.capacity {
            self.make_room(now);
        }
        self.entries
            .insert(key.clone(), Entry { excess, last: now });
        if self.zone.nodelay || excess == 0 {
            Decision::Allow
        } else {
            Decision::Delay(Duration::from_millis(excess / rate))
        }
    }

    /// Drops keys whose excess has drained (they would start afresh anyway).
    pub fn sweep(&mut self, now: Instant) -> usize {
        let before = self.entries.len();
        let rate = self.zone.rate.milli_per_sec;
        // Keep a key until a full request's worth has drained past its
        // excess: until then it still limits.
        self.entries.retain(|_, e| {
            drained(rate, now.saturating_duration_since(e.last)) < e.excess + REQUEST
        });
        before - self.entries.len()
    }

    fn make_room(&mut self, now: Instant) {
        if self.sweep(now) > 0 {
            return;
        }
        if let Some(oldest) = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.last)
            .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(rate: &str, burst: u32, nodelay: bool) -> Zone {
        Zone {
            rate: Rate::parse(rate).unwrap(),
            burst,
            nodelay,
            capacity: 1000,
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("100r/s").unwrap().milli_per_sec, 100_000);
        assert_eq!(Rate::parse("10r/m").unwrap().milli_per_sec, 166);
        assert_eq!(Rate::parse(" 1r/s ").unwrap().milli_per_sec, 1000);
        for bad in [
            "",
            "100",
            "r/s",
            "0r/s",
            "10r/h",
            "-1r/s",
            "1.5r/s",
            "99999999r/s",
        ] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn no_burst_allows_exactly_the_rate() {
        let t0 = Instant::now();
        let mut l = Limiter::new(zone("10r/s", 0, true));
        assert_eq!(l.check(&1, t0), Decision::Allow);
        // 100 ms later one request's worth has drained.
        assert!(matches!(l.check(&1, t0 + MS(50)), Decision::Reject { .. }));
        assert_eq!(l.check(&1, t0 + MS(100)), Decision::Allow);
        assert_eq!(
            l.check(&2, t0 + MS(100)),
            Decision::Allow,
            "keys are separate"
        );
    }

    #[test]
    fn burst_with_nodelay_serves_burst_at_once_then_refuses() {
        let t0 = Instant::now();
        let mut l = Limiter::new(zone("1r/s", 5, true));
        let served = (0..10)
            .filter(|_| l.check(&"k", t0) == Decision::Allow)
            .count();
        assert_eq!(served, 6, "the first request plus a burst of 5");
        let Decision::Reject { retry_after } = l.check(&"k", t0) else {
            panic!()
        };
        assert_eq!(retry_after, MS(1000));
        // One second drains one request: exactly one more fits.
        assert_eq!(l.check(&"k", t0 + MS(1000)), Decision::Allow);
        assert!(matches!(
            l.check(&"k", t0 + MS(1000)),
            Decision::Reject { .. }
        ));
    }

    #[test]
    fn burst_without_nodelay_spaces_requests_out() {
        let t0 = Instant::now();
        let mut l = Limiter::new(zone("10r/s", 3, false));
        assert_eq!(l.check(&1, t0), Decision::Allow);
        assert_eq!(l.check(&1, t0), Decision::Delay(MS(100)));
        assert_eq!(l.check(&1, t0), Decision::Delay(MS(200)));
        assert_eq!(l.check(&1, t0), Decision::Delay(MS(300)));
        assert!(matches!(l.check(&1, t0), Decision::Reject { .. }));
    }

    #[test]
    fn slow_rates_are_exact() {
        let t0 = Instant::now();
        let mut l = Limiter::new(zone("10r/m", 0, true));
        assert_eq!(l.check(&1, t0), Decision::Allow);
        assert!(matches!(
            l.check(&1, t0 + MS(5_900)),
            Decision::Reject { .. }
        ));
        assert_eq!(l.check(&1, t0 + MS(6_100)), Decision::Allow);
    }

    #[test]
    fn fast_rates_drain_between_requests_microseconds_apart() {
        // 100 000 requests a second, one every 20 µs, no burst: every one
        // fits, though no whole millisecond passes between them.
        let t0 = Instant::now();
        let mut l = Limiter::new(zone("100000r/s", 0, true));
        for i in 0..1000u64 {
            assert_eq!(
                l.check(&1, t0 + Duration::from_micros(i * 20)),
                Decision::Allow,
                "request {i}"
            );
        }
        // Twice as fast: every other one is refused.
        let mut l = Limiter::new(zone("100000r/s", 0, true));
        let served = (0..1000u64)
            .filter(|i| l.check(&1, t0 + Duration::from_micros(i * 5)) == Decision::Allow)
            .count();
        assert_eq!(served, 500);
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut l = Limiter::new(Zone {
            capacity: 100,
            ..zone("1r/s", 0, true)
        });
        for k in 0..10_000u32 {
            l.check(&k, t0 + MS(u64::from(k)));
        }
        assert!(l.len() <= 100);
        // Keys idle long enough are swept.
        let tracked = l.len();
        assert_eq!(l.sweep(t0 + Duration::from_secs(60)), tracked);
        assert!(l.is_empty());
    }
}
