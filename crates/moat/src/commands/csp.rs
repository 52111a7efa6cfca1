//! `moat csp`: explain an app's policy, approve and revoke its manifest's
//! requests, list what browsers reported.

use std::process::ExitCode;

use http::Method;
use moat_admin::api::{CspChange, CspChangeRequest, CspExplain, CspViolation, ReportFilter, paths};

use super::{remote, text};
use crate::args::{CspCommand, Target};

pub fn run(cmd: CspCommand) -> ExitCode {
    match cmd {
        CspCommand::Show { app, target } => remote(&target, move |c, out| async move {
            let explained: CspExplain = c.get(&paths::csp(&app)).await?;
            out.print(&explained, text::csp);
            Ok(ExitCode::SUCCESS)
        }),
        CspCommand::Reports { app, limit, target } => remote(&target, move |c, out| async move {
            let filter = ReportFilter { limit: Some(limit) };
            let reports: Vec<CspViolation> = c.get(&paths::csp_reports(&app, &filter)).await?;
            out.print(&reports, |r| {
                text::table(
                    &["LAST SEEN", "COUNT", "DIRECTIVE", "BLOCKED", "PAGE", "MODE"],
                    r.iter()
                        .map(|v| {
                            vec![
                                v.last_seen.clone(),
                                v.count.to_string(),
                                v.directive.clone(),
                                v.blocked.clone(),
                                v.document.clone(),
                                v.disposition.clone(),
                            ]
                        })
                        .collect(),
                )
            });
            Ok(ExitCode::SUCCESS)
        }),
        CspCommand::Approve {
            app,
            source,
            directive,
            all,
            target,
        } => change(
            &target,
            app,
            true,
            CspChangeRequest {
                source,
                directive,
                all,
            },
        ),
        CspCommand::Revoke {
            app,
            source,
            directive,
            all,
            target,
        } => change(
            &target,
            app,
            false,
            CspChangeRequest {
                source,
                directive,
                all,
            },
        ),
    }
}

fn change(target: &Target, app: String, approve: bool, body: CspChangeRequest) -> ExitCode {
    remote(target, move |c, out| async move {
        let path = if approve {
            paths::csp_approve(&app)
        } else {
            paths::csp_revoke(&app)
        };
        let done: CspChange = c.send(Method::POST, &path, &body).await?;
        out.print(&done, |c| {
            let verb = if approve { "approved" } else { "revoked" };
            let mut text = String::new();
            for ch in &c.changed {
                text.push_str(&format!("{verb}: {ch}\n"));
            }
            text.push_str(&format!("policy now: {}\n", c.policy));
            text
        });
        Ok(ExitCode::SUCCESS)
    })
}
