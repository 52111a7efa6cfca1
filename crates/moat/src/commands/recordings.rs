//! `moat recordings`: find, check, export and delete recorded sessions;
//! reapply today's storage policies.

use std::process::ExitCode;

use http::Method;
use moat_admin::api::{
    ReapplyRequest, ReapplyResult, RecordingFilter, RecordingSummary, VerifyResult, paths,
};

use super::{pretty, remote, text};
use crate::args::RecordingsCommand;

pub fn run(cmd: RecordingsCommand) -> ExitCode {
    match cmd {
        RecordingsCommand::List {
            app,
            user,
            client_ip,
            state,
            since,
            until,
            limit,
            target,
        } => {
            let filter = RecordingFilter {
                app,
                user,
                client_ip,
                state,
                since,
                until,
                limit: Some(limit),
            };
            remote(&target, move |c, out| async move {
                let list: Vec<RecordingSummary> = c.get(&paths::recordings(&filter)).await?;
                out.print(&list, |r| text::recordings(r));
                Ok(ExitCode::SUCCESS)
            })
        }
        RecordingsCommand::Show { id, target } => remote(&target, move |c, out| async move {
            let r: RecordingSummary = c.get(&paths::recording(&id)).await?;
            out.print(&r, |r| text::recordings(std::slice::from_ref(r)));
            Ok(ExitCode::SUCCESS)
        }),
        RecordingsCommand::Verify { id, target } => remote(&target, move |c, out| async move {
            let v: VerifyResult = c
                .call(Method::POST, &paths::recording_verify(&id), None)
                .await?;
            if !v.ok {
                out.print(&v, |v| {
                    format!("FAILED: {}\n", v.error.clone().unwrap_or_default())
                });
                return Ok(ExitCode::from(1));
            }
            out.print(&v, |v| {
                format!(
                    "OK: recording {} is {} ({} chunks, {} events): every chunk's SHA-256 and the manifest's signature check out\n",
                    v.id,
                    v.state.clone().unwrap_or_default(),
                    v.chunks.unwrap_or(0),
                    v.events.unwrap_or(0)
                )
            });
            Ok(ExitCode::SUCCESS)
        }),
        RecordingsCommand::Delete { id, target } => remote(&target, move |c, _| async move {
            c.call::<serde_json::Value>(Method::DELETE, &paths::recording(&id), None)
                .await?;
            Ok(ExitCode::SUCCESS)
        }),
        RecordingsCommand::ReapplyPolicy {
            app,
            confirm,
            target,
        } => {
            let body = ReapplyRequest { app, confirm };
            remote(&target, move |c, _| async move {
                let r: ReapplyResult = c.send(Method::POST, paths::REAPPLY_POLICY, &body).await?;
                println!("{}", pretty(&r));
                Ok(ExitCode::SUCCESS)
            })
        }
        RecordingsCommand::Export { id, har, target } => remote(&target, move |c, _| async move {
            let h: serde_json::Value = c.get(&paths::recording_har(&id)).await?;
            if let Err(e) = std::fs::write(&har, pretty(&h)) {
                eprintln!("moat: cannot write {}: {e}", har.display());
                return Ok(ExitCode::from(1));
            }
            let n = h["log"]["entries"].as_array().map(Vec::len).unwrap_or(0);
            println!("wrote {} ({n} entries)", har.display());
            Ok(ExitCode::SUCCESS)
        }),
    }
}
