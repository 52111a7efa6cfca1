//! Validates `[rate_limit]`: the named zones, the exempt addresses and the
//! per-client caps. (An app's `[[apps.rate_limit]]` is checked with the
//! app; whether the zone it names exists, by the caller of both.)

use moat_policy::rate_limit::{Rate, Zone};

use super::checker::Checker;
use crate::model::{App, LimitKey, NamedZone, RateLimits};
use crate::raw::RawRateLimit;

/// Keys are relative to `rate_limit.`.
pub(super) fn validate(c: &mut Checker<'_>, r: &RawRateLimit) -> RateLimits {
    let capacity = if r.max_keys_per_zone < 1 {
        c.problem("max_keys_per_zone", "must be at least 1", "raise the value");
        1
    } else {
        r.max_keys_per_zone as usize
    };
    let mut zones: Vec<NamedZone> = Vec::new();
    for (i, z) in r.zones.iter().enumerate() {
        let key = |f: &str| format!("zones[{i}].{f}");
        let name_ok = !z.name.is_empty()
            && z.name.len() <= 64
            && z.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            c.problem(
                key("name"),
                format!("{:?} is not a valid zone name", z.name),
                "use 1-64 letters, digits, '-' or '_'",
            );
        } else if zones.iter().any(|x| x.name == z.name) {
            c.problem(
                key("name"),
                format!("zone {:?} is defined twice", z.name),
                "give every zone its own name",
            );
        }
        let limit_key = match z.key.as_str() {
            "client_ip" => Some(LimitKey::ClientIp),
            "user" => Some(LimitKey::User),
            k => match k
                .strip_prefix("header:")
                .map(|h| http::HeaderName::from_bytes(h.trim().as_bytes()))
            {
                Some(Ok(h)) => Some(LimitKey::Header(h)),
                _ => {
                    c.problem(
                        key("key"),
                        format!("{k:?} is not a zone key"),
                        "write \"client_ip\", \"user\" or \"header:NAME\"",
                    );
                    None
                }
            },
        };
        let rate = Rate::parse(&z.rate)
            .map_err(|e| c.problem(key("rate"), e, "write e.g. \"100r/s\" or \"10r/m\""))
            .ok();
        if z.burst < 0 || z.burst > 1_000_000 {
            c.problem(
                key("burst"),
                format!("{} is out of range", z.burst),
                "use 0 to 1000000",
            );
        }
        if let (Some(limit_key), Some(rate)) = (limit_key, rate) {
            zones.push(NamedZone {
                name: z.name.clone(),
                key: limit_key,
                zone: Zone {
                    rate,
                    burst: z.burst.clamp(0, 1_000_000) as u32,
                    nodelay: z.nodelay,
                    capacity,
                },
            });
        }
    }
    if r.max_connections_per_client < 0 {
        c.problem(
            "max_connections_per_client",
            "is negative",
            "use 0 for no cap, or a positive number",
        );
    }
    RateLimits {
        zones,
        exempt: c.nets("exempt", &r.exempt),
        max_connections_per_client: r.max_connections_per_client.max(0) as usize,
        max_requests_in_flight_per_client: c.count(
            "max_requests_in_flight_per_client",
            r.max_requests_in_flight_per_client,
            0,
            1_000_000,
        ) as usize,
    }
}

/// Why an app names a zone that does not exist, if it does.
pub fn unknown_zone(zones: &[String], app: &App) -> Option<String> {
    app.rate_limits
        .iter()
        .find(|l| !zones.contains(&l.zone))
        .map(|l| format!("no rate-limit zone is named {:?}", l.zone))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::RawZone;
    use crate::validate::checker::{assert_problem, check};

    fn zone(name: &str, key: &str, rate: &str) -> RawZone {
        RawZone {
            name: name.into(),
            key: key.into(),
            rate: rate.into(),
            ..RawZone::default()
        }
    }

    #[test]
    fn zones_are_built() {
        let raw = RawRateLimit {
            zones: vec![
                zone("logins", "header:X-Api-Key", "10r/m"),
                RawZone {
                    burst: 5,
                    nodelay: true,
                    ..zone("api", "user", "100r/s")
                },
            ],
            exempt: vec!["10.0.0.0/8".into()],
            max_keys_per_zone: 50,
            ..RawRateLimit::default()
        };
        let (r, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        assert_eq!(r.zones.len(), 2);
        assert_eq!(
            r.zones[0].key,
            LimitKey::Header(http::HeaderName::from_static("x-api-key"))
        );
        assert_eq!(r.zones[1].key, LimitKey::User);
        assert_eq!((r.zones[1].zone.burst, r.zones[1].zone.capacity), (5, 50));
        assert!(r.zones[1].zone.nodelay);
        assert_eq!(r.exempt.len(), 1);
        assert_eq!(r.max_connections_per_client, 256);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawRateLimit {
            zones: vec![
                RawZone {
                    burst: -1,
                    ..zone("a", "client_ip", "1r/s")
                },
                zone("a", "client_ip", "1r/s"),
                zone("bad name", "cookie", "5r/h"),
            ],
            exempt: vec!["nope".into()],
            max_connections_per_client: -1,
            max_requests_in_flight_per_client: 2_000_000,
            max_keys_per_zone: 0,
        };
        let (r, problems) = check(|c| validate(c, &raw));
        assert_problem(&problems, "max_keys_per_zone", "must be at least 1");
        assert_problem(&problems, "zones[0].burst", "-1 is out of range");
        assert_problem(&problems, "zones[1].name", "zone \"a\" is defined twice");
        assert_problem(
            &problems,
            "zones[2].name",
            "\"bad name\" is not a valid zone name",
        );
        assert_problem(&problems, "zones[2].key", "\"cookie\" is not a zone key");
        assert_problem(
            &problems,
            "zones[2].rate",
            "\"5r/h\": the unit is r/s or r/m",
        );
        assert_problem(&problems, "max_connections_per_client", "is negative");
        assert_problem(&problems, "exempt[0]", "\"nope\" is not an IP address");
        assert_problem(
            &problems,
            "max_requests_in_flight_per_client",
            "2000000 is out of range",
        );
        assert_eq!(problems.len(), 9, "{problems:#?}");
        // A zone with a bad name or burst still counts (the problem stops
        // the load); one without a key or rate cannot.
        assert_eq!(r.zones.len(), 2);
        assert_eq!(r.zones[0].zone.burst, 0);
    }
}
