//! Stage: rate limits (nginx `limit_req` semantics, see
//! `moat_policy::rate_limit`), keyed on the client address resolved
//! through the trusted proxies, the signed-in user, or a header.
//!
//! Zones keyed by user run after the auth stage (there is no user before
//! it); the others run before anything else is done for the request. A
//! zone's state lives in a `runtime::zones::ZoneRegistry` that outlives
//! config reloads, so a reload does not hand every client a fresh budget.

use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use moat_config::LimitKey;
use moat_policy::rate_limit::Decision;

use crate::error::Rejection;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;
use crate::runtime::AppRuntime;

/// Which zones a stage call applies: those keyed by user run after auth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    BeforeAuth,
    AfterAuth,
}

pub async fn check<B>(
    req: &Request<B>,
    ctx: &RequestCtx,
    app: &AppRuntime,
    limits: &moat_config::RateLimits,
    phase: Phase,
) -> Step {
    if app.rate_limits.is_empty() || limits.exempt.iter().any(|n| n.contains(&ctx.client.ip)) {
        return Ok(Flow::Continue);
    }
    let now = Instant::now();
    let mut delay = Duration::ZERO;
    for z in &app.rate_limits {
        if (z.key == LimitKey::User) != (phase == Phase::AfterAuth) {
            continue;
        }
        // A limit applies to any spelling a server might serve as its
        // path, and to either reading of an encoded slash.
        if z.path.as_ref().is_some_and(|p| {
            !p.matches_loosely(req.uri().path())
                && !ctx
                    .decoded_path
                    .as_deref()
                    .is_some_and(|d| p.matches_loosely(d))
        }) {
            continue;
        }
        let key = match &z.key {
            LimitKey::ClientIp => ctx.client.ip.to_string(),
            LimitKey::User => match &ctx.user {
                Some(u) => format!("user:{u}"),
                None => format!("ip:{}", ctx.client.ip),
            },
            // A request without the header is not counted, as in nginx.
            LimitKey::Header(h) => match req.headers().get(h) {
                Some(v) => String::from_utf8_lossy(v.as_bytes()).into_owned(),
                None => continue,
            },
        };
        let decision = z
            .limiter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .check(&key, now);
        match decision {
            Decision::Allow => {}
            Decision::Delay(d) => delay = delay.max(d),
            Decision::Reject { retry_after } => {
                tracing::info!(app = app.name, zone = z.name, client = %ctx.client.ip, "rate limit reached");
                return Err(too_many(retry_after));
            }
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(Flow::Continue)
}

fn too_many(retry_after: Duration) -> Rejection {
    Rejection::client(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many requests. Slow down and try again shortly.",
    )
    .retry_after(retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    #[tokio::test]
    async fn a_client_over_its_budget_gets_429_with_retry_after() {
        let rt = testing::one_app(
            "[[rate_limit.zones]]\nname = \"z\"\nrate = \"1r/m\"\nnodelay = true\n",
            "auth = \"none\"\n[[apps.rate_limit]]\nzone = \"z\"",
        );
        let app = testing::app(&rt, "app");
        let limits = &rt.config.rate_limit;
        let req = Request::get("/").body(()).unwrap();
        let one = testing::ctx(&req, "127.0.0.1", true, Some(app.clone()));
        let other = testing::ctx(&req, "127.0.0.2", true, Some(app.clone()));
        assert!(matches!(
            check(&req, &one, &app, limits, Phase::BeforeAuth).await,
            Ok(Flow::Continue)
        ));
        let r = check(&req, &one, &app, limits, Phase::BeforeAuth)
            .await
            .err()
            .expect("over budget");
        assert_eq!(r.status, 429);
        assert!(
            r.headers
                .iter()
                .any(|(n, _)| n == http::header::RETRY_AFTER)
        );
        // Another address has its own budget; user-keyed zones wait for
        // the auth stage.
        assert!(matches!(
            check(&req, &other, &app, limits, Phase::BeforeAuth).await,
            Ok(Flow::Continue)
        ));
        assert!(matches!(
            check(&req, &one, &app, limits, Phase::AfterAuth).await,
            Ok(Flow::Continue)
        ));
    }
}
