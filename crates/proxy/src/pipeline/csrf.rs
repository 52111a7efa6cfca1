//! Stage: cross-origin request protection (CSRF), on for every app unless
//! turned off. The verdict is `moat_policy::csrf` (Go's
//! CrossOriginProtection rules); this stage adds the app's trusted origins
//! and bypass paths and turns a refusal into a 403 that says why.

use http::{Request, StatusCode};

use crate::error::Rejection;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;
use crate::runtime::AppRuntime;
use moat_policy::csrf;

pub fn check<B>(req: &Request<B>, ctx: &RequestCtx, app: &AppRuntime) -> Step {
    let Some(c) = &app.csrf else {
        return Ok(Flow::Continue);
    };
    // A bypass holds only when both readings of an encoded slash match.
    if c.bypass.iter().any(|p| {
        p.matches(req.uri().path()) && ctx.decoded_path.as_deref().is_none_or(|d| p.matches(d))
    }) {
        return Ok(Flow::Continue);
    }
    match csrf::check(
        req.method(),
        req.headers(),
        ctx.host.as_deref(),
        &c.trusted_origins,
    ) {
        csrf::Verdict::Allow => Ok(Flow::Continue),
        csrf::Verdict::CrossOrigin(why) => {
            tracing::info!(app = app.name, client = %ctx.client.ip, method = %req.method(), "{why}");
            Err(Rejection::client(StatusCode::FORBIDDEN, format!("{why}.")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    fn post(origin: &str, path: &str) -> Request<()> {
        Request::post(path)
            .header("host", "moat.example")
            .header("origin", origin)
            .header(
                "sec-fetch-site",
                if origin == "https://moat.example" {
                    "same-origin"
                } else {
                    "cross-site"
                },
            )
            .body(())
            .unwrap()
    }

    fn verdict(rt: &crate::runtime::Runtime, req: &Request<()>) -> Option<u16> {
        let app = testing::app(rt, "app");
        let ctx = testing::ctx(req, "127.0.0.1", true, Some(app.clone()));
        match check(req, &ctx, &app) {
            Ok(Flow::Continue) => None,
            Ok(Flow::Respond(_)) => panic!("the CSRF stage never answers"),
            Err(r) => Some(r.status.as_u16()),
        }
    }

    #[test]
    fn cross_origin_writes_are_refused_and_bypasses_hold() {
        let rt = testing::one_app(
            "",
            "auth = \"none\"\n[apps.security]\ncsrf_bypass = [\"/hooks/*\"]",
        );
        assert_eq!(verdict(&rt, &post("https://moat.example", "/x")), None);
        assert_eq!(verdict(&rt, &post("https://evil.example", "/x")), Some(403));
        assert_eq!(
            verdict(&rt, &post("https://evil.example", "/hooks/1")),
            None
        );
    }

    #[test]
    fn an_app_can_turn_it_off() {
        let rt = testing::one_app(
            "",
            "auth = \"none\"\n[apps.security]\ndisable_csrf_protection = true",
        );
        assert_eq!(verdict(&rt, &post("https://evil.example", "/x")), None);
    }
}
