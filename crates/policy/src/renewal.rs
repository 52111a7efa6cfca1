//! When a certificate is renewed, and when a failed renewal is tried again.
//!
//! Times are Unix seconds. The caller supplies the clock's reading and any
//! randomness (a jitter in `0.0..1.0`), so every rule here is a plain
//! function of its inputs.

/// How close to expiry a certificate is a warning in the log and status.
pub const EXPIRY_WARNING_SECS: i64 = 14 * 86_400;

/// The moment two thirds of a certificate's lifetime have passed: the
/// local CA renews its leaf then, leaving a third of the lifetime for
/// clients whose clocks run ahead and for a machine that was asleep.
pub fn two_thirds(not_before: i64, not_after: i64) -> i64 {
    let lifetime = (not_after - not_before).max(0);
    not_before + lifetime * 2 / 3
}

/// When an ACME certificate is renewed.
///
/// With a renewal window from the CA (RFC 9773 renewal information), a
/// moment inside it chosen by `jitter`; else two thirds of the lifetime,
/// moved by up to a twentieth of the lifetime either way by `jitter`, so
/// that many certificates issued together are not renewed together.
/// A window that ends before the certificate was issued, or that starts
/// after it expires, is not believed.
pub fn acme_renew_at(
    not_before: i64,
    not_after: i64,
    window: Option<(i64, i64)>,
    jitter: f64,
) -> i64 {
    let jitter = jitter.clamp(0.0, 1.0);
    if let Some((start, end)) = window
        && start <= end
        && end > not_before
        && start < not_after
    {
        return start + ((end - start) as f64 * jitter) as i64;
    }
    let lifetime = (not_after - not_before).max(0);
    let spread = lifetime / 20;
    two_thirds(not_before, not_after) - spread + ((2 * spread) as f64 * jitter) as i64
}

/// How long to wait before attempt `failures + 1` after `failures` failed
/// ones in a row: one minute, doubling, at most a day; never sooner than
/// the CA asked (`Retry-After`), and never later than a day after that.
pub fn retry_delay(failures: u32, retry_after: Option<i64>) -> i64 {
    const MAX: i64 = 86_400;
    let backoff = 60i64.saturating_mul(1i64 << failures.saturating_sub(1).min(20));
    let backoff = backoff.min(MAX);
    match retry_after {
        Some(asked) => backoff.max(asked.clamp(0, 2 * MAX)),
        None => backoff,
    }
}

/// Whether `name` is a DNS name a public CA could validate: two or more
/// labels of letters, digits and inner hyphens, 63 bytes a label, 253 in
/// all, and not an IP address. (A wildcard's `*.` is the caller's to strip.)
pub fn is_issuable_dns_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && name.parse::<std::net::IpAddr>().is_err()
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether a certificate is close enough to expiry to warn about it: within
/// 14 days, and, for one moat renews itself (`renew_at`), only once its
/// renewal is overdue. A week-long leaf renewed on time is not news.
pub fn expires_soon(not_after: i64, now: i64, renew_at: Option<i64>) -> bool {
    not_after - now <= EXPIRY_WARNING_SECS && renew_at.is_none_or(|r| now >= r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_thirds_of_a_week() {
        let week = 7 * 86_400;
        assert_eq!(two_thirds(1000, 1000 + week), 1000 + week * 2 / 3);
        // A certificate that ends before it starts is due at once.
        assert_eq!(two_thirds(1000, 500), 1000);
    }

    #[test]
    fn acme_jitter_stays_near_two_thirds() {
        let ninety = 90 * 86_400;
        let at = |j| acme_renew_at(0, ninety, None, j);
        assert_eq!(at(0.5), two_thirds(0, ninety));
        assert_eq!(at(0.0), two_thirds(0, ninety) - ninety / 20);
        assert_eq!(at(1.0), two_thirds(0, ninety) + ninety / 20);
        // Out-of-range jitter is clamped, not trusted.
        assert_eq!(at(7.0), at(1.0));
        assert!(at(1.0) < ninety);
    }

    #[test]
    fn acme_follows_a_believable_renewal_window() {
        let ninety = 90 * 86_400;
        assert_eq!(acme_renew_at(0, ninety, Some((100, 200)), 0.5), 150);
        assert_eq!(acme_renew_at(0, ninety, Some((100, 200)), 0.0), 100);
        // A window after expiry, before issue, or backwards is ignored.
        let plain = acme_renew_at(0, ninety, None, 0.5);
        assert_eq!(
            acme_renew_at(0, ninety, Some((ninety, ninety + 10)), 0.5),
            plain
        );
        assert_eq!(acme_renew_at(1000, ninety, Some((0, 500)), 0.5), {
            acme_renew_at(1000, ninety, None, 0.5)
        });
        assert_eq!(acme_renew_at(0, ninety, Some((200, 100)), 0.5), plain);
    }

    #[test]
    fn retries_back_off_and_respect_the_ca() {
        assert_eq!(retry_delay(1, None), 60);
        assert_eq!(retry_delay(2, None), 120);
        assert_eq!(retry_delay(5, None), 960);
        assert_eq!(retry_delay(40, None), 86_400);
        assert_eq!(retry_delay(0, None), 60);
        // The CA's Retry-After is a floor.
        assert_eq!(retry_delay(1, Some(3600)), 3600);
        assert_eq!(retry_delay(5, Some(10)), 960);
        // An absurd Retry-After is capped at two days.
        assert_eq!(retry_delay(1, Some(i64::MAX)), 2 * 86_400);
    }

    #[test]
    fn issuable_names() {
        assert!(is_issuable_dns_name("shop.example.com"));
        assert!(is_issuable_dns_name("xn--bcher-kva.example"));
        assert!(!is_issuable_dns_name("localhost"));
        assert!(!is_issuable_dns_name("a..b"));
        assert!(!is_issuable_dns_name("-x.example"));
        assert!(!is_issuable_dns_name("x-.example"));
        assert!(!is_issuable_dns_name("1.2.3.4"));
        assert!(!is_issuable_dns_name("x_y.example"));
        assert!(!is_issuable_dns_name(&format!(
            "{}.example",
            "a".repeat(64)
        )));
    }

    #[test]
    fn expiry_warning_at_fourteen_days() {
        assert!(expires_soon(100 + EXPIRY_WARNING_SECS, 100, None));
        assert!(!expires_soon(101 + EXPIRY_WARNING_SECS, 100, None));
        assert!(expires_soon(50, 100, None));
        // Renewed by moat: only when the renewal is overdue.
        assert!(!expires_soon(1000, 100, Some(500)));
        assert!(expires_soon(1000, 500, Some(500)));
    }
}
