//! Validates `[log]`: the log level and the access log's target and
//! format.

use super::checker::Checker;
use crate::model::{AccessLogFormat, AccessLogTarget, Log};
use crate::raw::RawLog;

/// Keys are relative to `log.`.
pub(super) fn validate(c: &mut Checker<'_>, l: &RawLog) -> Log {
    let access_log = match l.access_log.as_str() {
        "off" | "" => AccessLogTarget::Off,
        "stdout" => AccessLogTarget::Stdout,
        "stderr" => AccessLogTarget::Stderr,
        path => AccessLogTarget::File(c.path(path)),
    };
    let access_log_format = match l.access_log_format.as_str() {
        "json" => AccessLogFormat::Json,
        "common" => AccessLogFormat::Common,
        other => {
            c.problem(
                "access_log_format",
                format!("unknown format {other:?}"),
                "use \"json\" or \"common\"",
            );
            AccessLogFormat::Json
        }
    };
    if l.level.trim().is_empty() {
        c.problem("level", "is empty", "use error, warn, info, debug or trace");
    }
    Log {
        level: l.level.clone(),
        access_log,
        access_log_format,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::checker::{assert_problem, check};

    #[test]
    fn targets_and_formats() {
        let raw = RawLog {
            level: "moat_proxy=debug,info".into(),
            access_log: "logs/access.log".into(),
            access_log_format: "common".into(),
        };
        let (l, problems) = check(|c| validate(c, &raw));
        assert_eq!(problems, []);
        assert_eq!(
            l.access_log,
            AccessLogTarget::File("/base/logs/access.log".into())
        );
        assert_eq!(l.access_log_format, AccessLogFormat::Common);
        let (l, _) = check(|c| validate(c, &RawLog::default()));
        assert_eq!(l.access_log, AccessLogTarget::Stdout);
    }

    #[test]
    fn bad_values_are_named_relative_to_the_section() {
        let raw = RawLog {
            level: " ".into(),
            access_log_format: "xml".into(),
            ..RawLog::default()
        };
        let (_, problems) = check(|c| validate(c, &raw));
        assert_problem(&problems, "access_log_format", "unknown format \"xml\"");
        assert_problem(&problems, "level", "is empty");
        assert_eq!(problems.len(), 2, "{problems:#?}");
    }
}
