//! Validates `[recording]`: where recordings are written, how many may be
//! open at once, and the global storage policy.

use super::checker::Checker;
use crate::model::Recording;
use crate::raw::RawRecording;

/// Keys are relative to `recording.`.
pub(super) fn validate(c: &mut Checker<'_>, r: &RawRecording) -> Recording {
    Recording {
        local_path: Some(r.local_path.trim())
            .filter(|p| !p.is_empty())
            .map(|p| c.path(p)),
        minimum_available_capacity: c.size(
            "minimum_available_capacity",
            &r.minimum_available_capacity,
            0,
        ),
        max_open: c.count("max_open", r.max_open, 1, 1_000_000) as usize,
        max_open_per_client: c.count("max_open_per_client", r.max_open_per_client, 1, 1_000_000)
            as usize,
        policy: r.policy.as_ref().and_then(|p| {
            let r = moat_policy::retention::Retention {
                retain_for_days: p.retain_for_days,
                retain_overridable: p.retain_for_days_overridable,
                delete_after_days: p.delete_after_days,
                delete_overridable: p.delete_after_days_overridable,
            };
            match moat_policy::retention::validate(&r) {
                Ok(()) => Some(r),
                Err(e) => {
                    c.problem("policy", e, "see `moat config default` for the rules");
                    None
                }
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::{Human, RawRetention};
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn good_values_are_kept() {
        let raw = RawRecording {
            local_path: " rec ".into(),
            policy: Some(RawRetention {
                retain_for_days: 30,
                retain_for_days_overridable: true,
                delete_after_days: 365,
                delete_after_days_overridable: false,
            }),
            ..RawRecording::default()
        };
        let (r, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        assert_eq!(
            r.local_path.as_deref(),
            Some(std::path::Path::new("/base/rec"))
        );
        assert_eq!(r.minimum_available_capacity, 500 << 20);
        let p = r.policy.unwrap();
        assert_eq!((p.retain_for_days, p.delete_after_days), (30, 365));
        assert!(!p.delete_overridable);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawRecording {
            minimum_available_capacity: Human::Str("5XB".into()),
            max_open: 0,
            max_open_per_client: 2_000_000,
            policy: Some(RawRetention {
                retain_for_days: -1,
                retain_for_days_overridable: true,
                delete_after_days: 30,
                delete_after_days_overridable: true,
            }),
            ..RawRecording::default()
        };
        let (r, problems) = check(|c| validate(c, &raw));
        assert_problem(
            &problems,
            "minimum_available_capacity",
            "unknown size unit \"XB\"",
        );
        assert_problem(&problems, "max_open", "0 is out of range");
        assert_problem(&problems, "max_open_per_client", "2000000 is out of range");
        assert_problem(
            &problems,
            "policy",
            "retain_for_days = -1 keeps recordings forever",
        );
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(r.policy.is_none());
    }
}
