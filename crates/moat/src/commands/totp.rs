//! `moat totp`: the system account's second factor, through the admin API
//! (the running moat keeps it in its store).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use moat_admin::api::{TotpConfirm, TotpEnrolment, TotpRecoveryCodes, paths};

use super::remote;
use crate::args::TotpCommand;

pub fn run(cmd: TotpCommand) -> ExitCode {
    match cmd {
        TotpCommand::Enroll { code, target } => remote(&target, move |c, _out| async move {
            let e: TotpEnrolment = c
                .send(
                    http::Method::POST,
                    paths::TOTP_ENROLL,
                    &serde_json::json!({}),
                )
                .await?;
            println!(
                "Add this account to your authenticator app: scan the code below, or enter the secret.\n"
            );
            if let Ok(qr) = qrcode::QrCode::new(e.otpauth_uri.as_bytes()) {
                println!(
                    "{}",
                    qr.render::<qrcode::render::unicode::Dense1x2>()
                        .quiet_zone(true)
                        .build()
                );
            }
            println!("secret: {}\nuri:    {}\n", e.secret, e.otpauth_uri);
            let code = match code {
                Some(c) => c,
                None => {
                    print!("Code the app shows now: ");
                    let _ = std::io::stdout().flush();
                    let mut line = String::new();
                    let _ = std::io::stdin().lock().read_line(&mut line);
                    line.trim().to_owned()
                }
            };
            let r: TotpRecoveryCodes = c
                .send(
                    http::Method::POST,
                    paths::TOTP_CONFIRM,
                    &TotpConfirm { code },
                )
                .await?;
            println!("\nThe second factor is on: sign-in now asks for a code after the password.");
            println!(
                "Recovery codes, each usable once instead of a code (keep them somewhere safe; they are not shown again):\n"
            );
            for rc in &r.recovery_codes {
                println!("    {rc}");
            }
            Ok(ExitCode::SUCCESS)
        }),
        TotpCommand::Remove { target } => remote(&target, move |c, _out| async move {
            let _: serde_json::Value = c.call(http::Method::DELETE, paths::TOTP, None).await?;
            println!("The second factor is removed.");
            Ok(ExitCode::SUCCESS)
        }),
    }
}
