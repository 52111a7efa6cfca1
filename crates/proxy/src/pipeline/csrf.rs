//! Stage: cross-origin request protection (CSRF), on for every app unless
//! turned off. The verdict is `moat_policy::csrf` (Go's
//! CrossOriginProtection rules); this stage adds the app's trusted origins
//! and bypass paths and turns a refusal into a 403 that says why.

use http::{Request, Response, StatusCode};

use crate::body::Body;
use crate::pipeline::RequestCtx;
use crate::runtime::AppRuntime;
use moat_policy::csrf;

pub fn check<B>(
    req: &Request<B>,
    ctx: &RequestCtx,
    app: &AppRuntime,
) -> Result<(), Response<Body>> {
    let Some(c) = &app.csrf else {
        return Ok(());
    };
    // A bypass holds only when both readings of an encoded slash match.
    if c.bypass.iter().any(|p| {
        p.matches(req.uri().path()) && ctx.decoded_path.as_deref().is_none_or(|d| p.matches(d))
    }) {
        return Ok(());
    }
    match csrf::check(
        req.method(),
        req.headers(),
        ctx.host.as_deref(),
        &c.trusted_origins,
    ) {
        csrf::Verdict::Allow => Ok(()),
        csrf::Verdict::CrossOrigin(why) => {
            tracing::info!(app = app.name, client = %ctx.client.ip, method = %req.method(), "{why}");
            Err(crate::error::error_page(
                StatusCode::FORBIDDEN,
                &format!("{why}."),
            ))
        }
    }
}
