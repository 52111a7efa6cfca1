//! Storage policies for recordings: how long a recording must be kept,
//! and when it is deleted.
//!
//! `retain_for_days`: a recording cannot be deleted, by anyone, until this
//! many days after it closed; -1 keeps it forever. `delete_after_days`: it
//! is deleted automatically this many days after it closed; 0 never.
//! Each has an `_overridable` flag: an app's policy may change a global
//! setting only where the global policy allows it.
//!
//! The rules (as in the best-known access gateway): retaining forever
//! requires never deleting; a deletion date must not come before the end
//! of retention (unless it is 0, never); and a policy that neither retains
//! nor deletes (both 0) says nothing and is refused.

pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub retain_for_days: i64,
    pub retain_overridable: bool,
    pub delete_after_days: i64,
    pub delete_overridable: bool,
}

/// An app's policy: each field `None` keeps the global value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Override {
    pub retain_for_days: Option<i64>,
    pub delete_after_days: Option<i64>,
}

pub fn validate(r: &Retention) -> Result<(), String> {
    let (retain, delete) = (r.retain_for_days, r.delete_after_days);
    if retain < -1 {
        return Err(format!(
            "retain_for_days = {retain}: use -1 (forever), 0 or a number of days"
        ));
    }
    if delete < 0 {
        return Err(format!(
            "delete_after_days = {delete}: use 0 (never) or a number of days"
        ));
    }
    if retain == -1 && delete != 0 {
        return Err(
            "retain_for_days = -1 keeps recordings forever, so delete_after_days must be 0 (never)"
                .into(),
        );
    }
    if delete != 0 && delete < retain {
        return Err(format!(
            "delete_after_days = {delete} comes before the end of retain_for_days = {retain}; make it at least {retain}, or 0 (never)"
        ));
    }
    if retain == 0 && delete == 0 {
        return Err("retain_for_days = 0 and delete_after_days = 0 neither retain nor delete anything; set one of them".into());
    }
    Ok(())
}

/// The policy of an app: the global one with the app's changes, where the
/// global policy allows them.
pub fn effective(global: &Retention, app: &Override) -> Result<Retention, String> {
    let mut r = *global;
    if let Some(d) = app.retain_for_days {
        if d != global.retain_for_days && !global.retain_overridable {
            return Err(
                "retain_for_days is set globally and not overridable (retain_overridable = false)"
                    .into(),
            );
        }
        r.retain_for_days = d;
    }
    if let Some(d) = app.delete_after_days {
        if d != global.delete_after_days && !global.delete_overridable {
            return Err("delete_after_days is set globally and not overridable (delete_overridable = false)".into());
        }
        r.delete_after_days = d;
    }
    validate(&r)?;
    Ok(r)
}

/// What a recording stores when it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dates {
    /// Deletable from this time; `None`: never.
    pub retain_until_ms: Option<i64>,
    /// Deleted automatically from this time; `None`: never.
    pub delete_after_ms: Option<i64>,
}

pub fn dates(r: &Retention, ended_ms: i64) -> Dates {
    Dates {
        retain_until_ms: match r.retain_for_days {
            -1 => None,
            d => Some(ended_ms + d * DAY_MS),
        },
        delete_after_ms: match r.delete_after_days {
            0 => None,
            d => Some(ended_ms + d * DAY_MS),
        },
    }
}

/// Dates of a recording no policy covers: deletable, never reaped.
pub const NO_POLICY: Dates = Dates {
    retain_until_ms: Some(0),
    delete_after_ms: None,
};

/// Whether anyone may delete the recording now.
pub fn may_delete(d: &Dates, now_ms: i64) -> bool {
    d.retain_until_ms.is_some_and(|t| now_ms >= t)
}

/// Whether the reaper deletes it now (never inside retention).
pub fn due(d: &Dates, now_ms: i64) -> bool {
    d.delete_after_ms.is_some_and(|t| now_ms >= t) && may_delete(d, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(retain: i64, delete: i64) -> Retention {
        Retention {
            retain_for_days: retain,
            retain_overridable: true,
            delete_after_days: delete,
            delete_overridable: true,
        }
    }

    #[test]
    fn validation_table() {
        for (retain, delete, ok) in [
            (-1, 0, true),
            (-1, 30, false),
            (30, 0, true),
            (30, 30, true),
            (30, 90, true),
            (90, 30, false),
            (0, 30, true),
            (0, 0, false),
            (-2, 0, false),
            (7, -1, false),
        ] {
            assert_eq!(
                validate(&r(retain, delete)).is_ok(),
                ok,
                "retain {retain}, delete {delete}"
            );
        }
    }

    #[test]
    fn overrides_only_where_allowed() {
        let global = Retention {
            retain_overridable: false,
            ..r(30, 365)
        };
        assert!(
            effective(
                &global,
                &Override {
                    retain_for_days: Some(7),
                    delete_after_days: None
                }
            )
            .is_err()
        );
        assert_eq!(
            effective(
                &global,
                &Override {
                    retain_for_days: None,
                    delete_after_days: Some(90)
                }
            )
            .unwrap(),
            Retention {
                delete_after_days: 90,
                ..global
            }
        );
        // Same value as the global one: not an override.
        assert!(
            effective(
                &global,
                &Override {
                    retain_for_days: Some(30),
                    delete_after_days: None
                }
            )
            .is_ok()
        );
        // The combination must still be valid.
        assert!(
            effective(
                &r(30, 365),
                &Override {
                    retain_for_days: None,
                    delete_after_days: Some(10)
                }
            )
            .is_err()
        );
    }

    #[test]
    fn dates_and_decisions() {
        let end = 1_000 * DAY_MS;
        let d = dates(&r(30, 90), end);
        assert!(!may_delete(&d, end + 29 * DAY_MS));
        assert!(may_delete(&d, end + 30 * DAY_MS));
        assert!(!due(&d, end + 89 * DAY_MS));
        assert!(due(&d, end + 90 * DAY_MS));
        let forever = dates(&r(-1, 0), end);
        assert!(!may_delete(&forever, i64::MAX) && !due(&forever, i64::MAX));
        let never_reaped = dates(&r(30, 0), end);
        assert!(!due(&never_reaped, i64::MAX) && may_delete(&never_reaped, end + 30 * DAY_MS));
    }
}
