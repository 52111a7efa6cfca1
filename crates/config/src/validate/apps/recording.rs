//! Validates an app's `[apps.recording]`: the body limit, redaction, the
//! bucket, the storage policy override and what to do when storage fails.
//! (Whether the policy override is allowed depends on the global policy,
//! so the caller of both checks that.)

use super::super::checker::Checker;
use crate::model::{AppRecording, StorageFailure};
use crate::raw::RawAppRecording;

/// The most of one body a recording keeps.
const MAX_RECORDED_BODY: u64 = 16 << 20;

/// Keys are relative to the app's `recording.`. `None` when recording is
/// off.
pub(super) fn validate(c: &mut Checker<'_>, r: &RawAppRecording) -> Option<AppRecording> {
    if !r.enabled {
        return None;
    }
    Some(AppRecording {
        body_limit: {
            // Each recorded body is held whole (up to this) to be
            // redacted, and must fit the recorder's bounded queue.
            let n = c.size("body_limit", &r.body_limit, 0);
            if n > MAX_RECORDED_BODY {
                c.problem(
                    "body_limit",
                    format!("{n} bytes is more than a recorded body may keep"),
                    "use at most \"16MiB\"",
                );
            }
            n.min(MAX_RECORDED_BODY)
        },
        // The built-in lists always apply; the app's keys add to them
        // (redact_json_fields is the older name of redact_fields).
        redactor: moat_policy::redact::Redactor::new(
            &r.redact_headers,
            &[r.redact_fields.clone(), r.redact_json_fields.clone()].concat(),
        ),
        bucket: r.bucket.clone().filter(|b| !b.is_empty()),
        policy: moat_policy::retention::Override {
            retain_for_days: r.policy.retain_for_days,
            delete_after_days: r.policy.delete_after_days,
        },
        on_storage_failure: match r.on_storage_failure.as_str() {
            "refuse" => StorageFailure::Refuse,
            "allow_unrecorded" => StorageFailure::AllowUnrecorded,
            other => {
                c.problem(
                    "on_storage_failure",
                    format!("{other:?} is not a choice"),
                    "write \"refuse\" (no recording, no session) or \"allow_unrecorded\"",
                );
                StorageFailure::Refuse
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raw::Human;
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn off_unless_enabled_and_good_values_kept() {
        let (r, problems) = check(|c| validate(c, &RawAppRecording::default()));
        assert!(r.is_none() && problems.is_empty());
        let raw = RawAppRecording {
            enabled: true,
            body_limit: Human::Str("64KiB".into()),
            on_storage_failure: "allow_unrecorded".into(),
            bucket: Some(String::new()),
            ..RawAppRecording::default()
        };
        let (r, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        let r = r.unwrap();
        assert_eq!(r.body_limit, 64 << 10);
        assert_eq!(r.on_storage_failure, StorageFailure::AllowUnrecorded);
        assert_eq!(r.bucket, None);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawAppRecording {
            enabled: true,
            body_limit: Human::Str("32MiB".into()),
            on_storage_failure: "maybe".into(),
            ..RawAppRecording::default()
        };
        let (r, problems) = check(|c| validate(c, &raw));
        assert_problem(
            &problems,
            "body_limit",
            "33554432 bytes is more than a recorded body may keep",
        );
        assert_problem(&problems, "on_storage_failure", "\"maybe\" is not a choice");
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_eq!(r.unwrap().body_limit, MAX_RECORDED_BODY);
    }
}
