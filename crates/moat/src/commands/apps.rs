//! `moat app`: list, show, create, update, delete and reload apps.

use std::process::ExitCode;

use http::Method;
use moat_admin::api::{AppDetail, AppSummary, Reloaded, paths};

use super::{remote, text};
use crate::args::AppCommand;

pub fn run(cmd: AppCommand) -> ExitCode {
    match cmd {
        AppCommand::List { target } => remote(&target, |c, out| async move {
            let apps: Vec<AppSummary> = c.get(paths::APPS).await?;
            out.print(&apps, |a| text::apps(a));
            Ok(ExitCode::SUCCESS)
        }),
        AppCommand::Show { name, target } => remote(&target, move |c, out| async move {
            let app: AppDetail = c.get(&paths::app(&name)).await?;
            out.print(&app, text::app);
            Ok(ExitCode::SUCCESS)
        }),
        AppCommand::Create {
            name,
            fields,
            target,
        } => {
            let mut body = fields.to_json();
            body["name"] = name.into();
            remote(&target, move |c, out| async move {
                let app: AppDetail = c.send(Method::POST, paths::APPS, &body).await?;
                out.print(&app, |a| {
                    format!("created app {}\n\n{}", a.summary.name, text::app(a))
                });
                Ok(ExitCode::SUCCESS)
            })
        }
        AppCommand::Update {
            name,
            fields,
            target,
        } => {
            // Only the settings given: a JSON merge patch.
            let patch = fields.to_json();
            remote(&target, move |c, out| async move {
                let app: AppDetail = c.send(Method::PATCH, &paths::app(&name), &patch).await?;
                out.print(&app, |a| {
                    format!("updated app {}\n\n{}", a.summary.name, text::app(a))
                });
                Ok(ExitCode::SUCCESS)
            })
        }
        AppCommand::Delete { name, target } => remote(&target, move |c, out| async move {
            c.call::<serde_json::Value>(Method::DELETE, &paths::app(&name), None)
                .await?;
            let done = serde_json::json!({"deleted": name});
            out.print(&done, |_| format!("deleted app {name}\n"));
            Ok(ExitCode::SUCCESS)
        }),
        AppCommand::Reload { name, target } => remote(&target, move |c, out| async move {
            let r: Reloaded = c
                .call(Method::POST, &paths::app_reload(&name), None)
                .await?;
            out.print(&r, |r| format!("reloaded app {}\n", r.reloaded));
            Ok(ExitCode::SUCCESS)
        }),
    }
}
