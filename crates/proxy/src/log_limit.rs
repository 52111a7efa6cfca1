//! Warnings that repeat at the rate of an attack or an outage (a refused
//! upstream connect per request, a connection cap per accept) are written
//! at most once per period per kind and subject, with the number left out
//! since the last one, so the log stays readable and cannot fill a disk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Seen {
    last: Instant,
    suppressed: u64,
}

static SEEN: Mutex<Option<HashMap<(&'static str, String), Seen>>> = Mutex::new(None);

/// Most subjects tracked; past it the table starts again (a flood of
/// subjects must not grow memory).
const MAX_SUBJECTS: usize = 4096;

/// Calls `log(suppressed)` unless a warning of this kind about this subject
/// was written less than `period` ago; then it only counts it.
pub fn warn_every(kind: &'static str, subject: &str, period: Duration, log: impl FnOnce(u64)) {
    let now = Instant::now();
    let suppressed = {
        let mut guard = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        let seen = guard.get_or_insert_with(HashMap::new);
        if seen.len() >= MAX_SUBJECTS && !seen.contains_key(&(kind, subject.to_owned())) {
            seen.clear();
        }
        match seen.get_mut(&(kind, subject.to_owned())) {
            Some(s) if now.duration_since(s.last) < period => {
                s.suppressed += 1;
                return;
            }
            Some(s) => {
                s.last = now;
                std::mem::take(&mut s.suppressed)
            }
            None => {
                seen.insert(
                    (kind, subject.to_owned()),
                    Seen {
                        last: now,
                        suppressed: 0,
                    },
                );
                0
            }
        }
    };
    log(suppressed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_not_written() {
        let mut written = Vec::new();
        for _ in 0..5 {
            warn_every("test-kind", "a", Duration::from_secs(3600), |n| {
                written.push(n)
            });
        }
        warn_every("test-kind", "b", Duration::from_secs(3600), |n| {
            written.push(n)
        });
        assert_eq!(written, [0, 0], "one line per subject within the period");
        warn_every("test-kind2", "a", Duration::ZERO, |n| written.push(n));
        warn_every("test-kind2", "a", Duration::ZERO, |n| written.push(n));
        assert_eq!(written, [0, 0, 0, 0]);
    }
}
