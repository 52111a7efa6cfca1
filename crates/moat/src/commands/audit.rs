//! `moat audit`: the record of every admin change.

use std::process::ExitCode;

use moat_admin::api::{AuditEntry, AuditFilter, paths};

use super::{remote, text};
use crate::args::AuditCommand;

pub fn run(cmd: AuditCommand) -> ExitCode {
    let AuditCommand::List {
        limit,
        action,
        app,
        target,
    } = cmd;
    let filter = AuditFilter {
        limit: Some(limit),
        action,
        target: app,
        ..Default::default()
    };
    remote(&target, move |c, out| async move {
        let entries: Vec<AuditEntry> = c.get(&paths::audit(&filter)).await?;
        out.print(&entries, |e| text::audit(e));
        Ok(ExitCode::SUCCESS)
    })
}
