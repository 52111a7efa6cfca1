//! Sizes and durations as admins write them in config: `16KiB`, `10MB`,
//! `30s`, `5m`, `1h30m`, `365d`. Plain integers are bytes or seconds.
//! Also the UTC calendar date of a Unix time, for logs and names.

use std::time::Duration;

/// Parses a byte size. Binary (`KiB`, `MiB`, `GiB`) and decimal (`KB`, `MB`,
/// `GB`) units; `K`/`M`/`G` alone are binary, as in nginx.
/// The UTC calendar date (year, month, day) of a day count since
/// 1970-01-01 (the inverse of days-from-civil, after Howard Hinnant's
/// public-domain algorithm).
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "{s:?} is not a size; write a number with an optional unit, e.g. \"16KiB\" or \"10MiB\""
        ));
    }
    let n: u64 = num.parse().map_err(|_| format!("{num:?} is too large"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "m" | "MiB" => 1 << 20,
        "G" | "g" | "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?}; use B, KiB, MiB, GiB (or KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Parses a duration: one or more `<number><unit>` parts with units `ms`,
/// `s`, `m`, `h`, `d`. A bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("{s:?} is too large"));
    }
    let hint = "write a number and a unit, e.g. \"30s\", \"5m\", \"1h30m\", \"250ms\"";
    if s.is_empty() {
        return Err(format!("empty duration; {hint}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{s:?} is not a duration; {hint}"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{s:?} is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60).ok_or("too large")?),
            "h" => Duration::from_secs(n.checked_mul(3600).ok_or("too large")?),
            "d" => Duration::from_secs(n.checked_mul(86400).ok_or("too large")?),
            "" => return Err(format!("{s:?} is missing a unit after {n}; {hint}")),
            other => return Err(format!("unknown duration unit {other:?}; {hint}")),
        };
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{s:?} is too large"))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Formats a duration the way [`parse_duration`] reads it: the largest
/// whole unit, then any milliseconds (`1m500ms`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    let ms = d.subsec_millis();
    let whole = if s != 0 && s % 86400 == 0 {
        format!("{}d", s / 86400)
    } else if s != 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s != 0 && s % 60 == 0 {
        format!("{}m", s / 60)
    } else if s != 0 || ms == 0 {
        format!("{s}s")
    } else {
        String::new()
    };
    if ms == 0 {
        whole
    } else {
        format!("{whole}{ms}ms")
    }
}

/// Formats a size the way [`parse_size`] reads it.
pub fn format_size(n: u64) -> String {
    for (unit, m) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n != 0 && n % m == 0 {
            return format!("{}{unit}", n / m);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16KiB"), Ok(16384));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1 M"), Ok(1 << 20));
        assert_eq!(parse_size("42"), Ok(42));
        assert!(parse_size("KiB").is_err());
        assert!(
            parse_size("10XB")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("99999999999G").is_err());
        assert_eq!(format_size(16384), "16KiB");
        assert_eq!(format_size(1000), "1000");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("365d"), Ok(Duration::from_secs(365 * 86400)));
        assert!(parse_duration("10").is_ok());
        assert!(parse_duration("s").is_err());
        assert!(
            parse_duration("10x")
                .unwrap_err()
                .contains("unknown duration unit")
        );
        assert!(parse_duration("5 m").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("999999999999999999d").is_err());
        // Found by fuzzing: a huge duration with milliseconds once printed
        // as one millisecond count too large to read back.
        let huge = Duration::new(8_360_360_003_600_261_522, 322_000_000);
        assert_eq!(parse_duration(&format_duration(huge)), Ok(huge));
        for d in ["30s", "5m", "2h", "365d", "250ms", "0s", "1m500ms"] {
            assert_eq!(format_duration(parse_duration(d).unwrap()), d);
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(1_796_083_200 / 86_400), (2026, 12, 1));
        assert_eq!(civil_date(951_782_400 / 86_400), (2000, 2, 29));
        assert_eq!(civil_date(-1), (1969, 12, 31));
    }
}
