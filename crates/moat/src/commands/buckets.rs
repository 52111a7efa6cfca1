//! `moat bucket`: the storage buckets recordings move to. Answers are
//! printed as JSON (a bucket's settings have no table); secrets are never
//! in them.

use std::process::ExitCode;

use http::Method;
use moat_admin::api::{BucketRequest, BucketView, paths};

use super::{pretty, remote};
use crate::args::BucketCommand;

pub fn run(cmd: BucketCommand) -> anyhow::Result<ExitCode> {
    Ok(match cmd {
        BucketCommand::Create {
            name,
            settings,
            target,
        } => {
            let body = BucketRequest {
                name: Some(name),
                config: settings.to_json()?,
            };
            remote(&target, move |c, _| async move {
                let b: BucketView = c.send(Method::POST, paths::BUCKETS, &body).await?;
                println!("{}", pretty(&b));
                Ok(ExitCode::SUCCESS)
            })
        }
        BucketCommand::List { target } => remote(&target, |c, _| async move {
            let list: Vec<BucketView> = c.get(paths::BUCKETS).await?;
            println!("{}", pretty(&list));
            Ok(ExitCode::SUCCESS)
        }),
        BucketCommand::Show { name, target } => remote(&target, move |c, _| async move {
            let b: BucketView = c.get(&paths::bucket(&name)).await?;
            println!("{}", pretty(&b));
            Ok(ExitCode::SUCCESS)
        }),
        BucketCommand::Update {
            name,
            settings,
            target,
        } => {
            let body = BucketRequest {
                name: None,
                config: settings.to_json()?,
            };
            remote(&target, move |c, _| async move {
                let b: BucketView = c.send(Method::PUT, &paths::bucket(&name), &body).await?;
                println!("{}", pretty(&b));
                Ok(ExitCode::SUCCESS)
            })
        }
        BucketCommand::Delete { name, target } => remote(&target, move |c, _| async move {
            c.call::<serde_json::Value>(Method::DELETE, &paths::bucket(&name), None)
                .await?;
            Ok(ExitCode::SUCCESS)
        }),
    })
}
