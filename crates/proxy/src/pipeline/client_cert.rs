//! Stage: client certificates. Runs right after routing, for apps with
//! `[apps.client_certs]`: the app's CA judges the certificate the
//! connection presented (`tls::client_auth`), and the request goes on, or
//! gets a 403 page that says what is wrong and what to do. With
//! `auth = "cert"` the certificate's holder is the request's user.
//!
//! `mode = "optional"`: a request without a certificate goes on (the app's
//! sign-in still applies); a certificate that is presented must be valid.

use http::StatusCode;
use moat_config::{AppAuth, ClientCertMode};
use rustls::pki_types::UnixTime;

use crate::error::Rejection;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;
use crate::runtime::AppRuntime;
use crate::tls::client_auth::Verdict;

pub fn check(ctx: &mut RequestCtx, app: &AppRuntime, now: UnixTime) -> Step {
    let Some(policy) = &app.client_certs else {
        return Ok(Flow::Continue);
    };
    let verdict = ctx.client_cert.as_ref().map(|c| c.verdict(&policy.ca, now));
    let refuse = |why: &'static str| Err(Rejection::client(StatusCode::FORBIDDEN, why));
    match verdict {
        Some(Verdict::Valid { user }) => {
            if app.auth == AppAuth::Cert {
                ctx.user = Some(user);
            }
            Ok(Flow::Continue)
        }
        None if policy.mode == ClientCertMode::Optional && app.auth != AppAuth::Cert => {
            Ok(Flow::Continue)
        }
        None => refuse(
            "This app needs a client certificate, and your browser sent none. Install the certificate your administrator gave you (in the browser's or the system's certificate settings), then open the page again; when the browser asks, choose that certificate.",
        ),
        Some(Verdict::Expired) => refuse(
            "Your client certificate has expired. Ask your administrator for a new one, install it, and try again.",
        ),
        Some(Verdict::NotYetValid) => refuse(
            "Your client certificate is not valid yet. Check your computer's clock, or ask your administrator.",
        ),
        Some(Verdict::Revoked) => refuse(
            "Your client certificate has been revoked. Ask your administrator for a new one.",
        ),
        Some(Verdict::UnknownIssuer) => refuse(
            "Your client certificate was not issued by a CA this app trusts. Choose the certificate your administrator gave you for this app (restart the browser to be asked again).",
        ),
        Some(Verdict::Invalid(why)) => {
            tracing::debug!(app = app.name, "client certificate refused: {why}");
            refuse(
                "Your client certificate cannot be used for this app. Ask your administrator for one made for it.",
            )
        }
    }
}
