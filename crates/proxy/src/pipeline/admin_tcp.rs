//! Stage: the admin API over TCP, under `/_moat/api/`.
//!
//! SECURITY: off by default, and then the namespace answers 404 whatever
//! the apps are. On (`admin_over_tcp`), it is served only on the HTTPS
//! listener, every request needs the admin user's HTTP Basic credentials,
//! and failed attempts lock the client address out for a while. The
//! password check (bcrypt) runs off the worker thread, so a burst of logins
//! cannot stall the requests sharing it.
//!
//! The API itself is not here: an authenticated request is handed to the
//! [`AdminApi`] the gateway was started with, the same one its socket
//! serves.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, StatusCode, header};
use moat_admin::api::ErrorCode;
use moat_config::Security;
use moat_policy::basic_auth;
use moat_policy::throttle::{Attempt, Limits, Throttle, Verdict};

use crate::admin_api::AdminApi;
use crate::auth::AuthState;
use crate::body::{self, BoxError};
use crate::error::Rejection;
use crate::namespace::NAMESPACE;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;

/// Five failures in five minutes lock an address out for fifteen.
pub const THROTTLE: Limits = Limits {
    max_failures: 5,
    window: Duration::from_secs(300),
    lockout: Duration::from_secs(900),
    capacity: 100_000,
};

/// The route's state: failed logins per address, and the API it hands
/// requests to.
pub struct AdminRoute {
    throttle: Mutex<Throttle<IpAddr>>,
    api: Option<Arc<dyn AdminApi>>,
}

impl AdminRoute {
    /// `api`: `None` answers 404 even with `admin_over_tcp` on (a gateway
    /// started without an admin API).
    pub fn new(api: Option<Arc<dyn AdminApi>>) -> AdminRoute {
        AdminRoute {
            throttle: Mutex::new(Throttle::new(THROTTLE)),
            api,
        }
    }

    fn throttle(&self) -> MutexGuard<'_, Throttle<IpAddr>> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub async fn handle<B>(
    req: Request<B>,
    ctx: &RequestCtx,
    security: &Security,
    route: &AdminRoute,
    sign_in: &AuthState,
) -> Step
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let Some(api) = route
        .api
        .as_ref()
        .filter(|_| ctx.tls && security.admin_over_tcp)
    else {
        return Err(Rejection::not_found());
    };
    let ip = ctx.client.ip;
    // One attempt at a time per address, reserved before the hash runs.
    match route.throttle().begin(&ip, Instant::now()) {
        Attempt::Reserved => {}
        Attempt::Locked { retry_after } => return Err(locked(retry_after)),
        Attempt::Busy => return Err(busy()),
    }
    let _reserved = AdminAttempt { route, ip };
    let credentials = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_auth::parse);
    let Some((user, password)) = credentials else {
        return Err(unauthorized("credentials required"));
    };
    let user_ok = basic_auth::constant_time_eq(user.as_bytes(), security.admin_user.as_bytes());
    // The hash is checked even for a wrong user, so timing does not tell
    // which of the two was wrong.
    let Some(password_ok) = sign_in
        .verify_password(sign_in.admin_password(), password)
        .await
    else {
        return Err(busy());
    };
    if !(user_ok && password_ok) {
        tracing::warn!(client = %ip, user, "admin API over TCP: failed login");
        return Err(match route.throttle().failure(&ip, Instant::now()) {
            Verdict::Locked { retry_after } => locked(retry_after),
            Verdict::Allow => unauthorized("wrong user name or password"),
        });
    }
    route.throttle().success(&ip);

    // Hand the request to the same API the Unix socket serves, without
    // the namespace prefix.
    let (mut parts, incoming) = req.into_parts();
    let inner = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .trim_start_matches(NAMESPACE)
        .to_owned();
    parts.uri = inner.parse().map_err(|_| {
        Rejection::client(StatusCode::BAD_REQUEST, "The request path is not valid.")
    })?;
    // Changes are audited under the admin user and the client address.
    let actor = moat_store::Actor {
        name: security.admin_user.clone(),
        source: format!("tcp:{ip}"),
    };
    let req = Request::from_parts(parts, body::boxed(incoming));
    Ok(Flow::Respond(api.handle(req, actor).await))
}

/// Releases the address's reserved attempt however the check ends.
struct AdminAttempt<'a> {
    route: &'a AdminRoute,
    ip: IpAddr,
}

impl Drop for AdminAttempt<'_> {
    fn drop(&mut self) {
        self.route.throttle().end(&self.ip);
    }
}

fn busy() -> Rejection {
    Rejection::client(
        StatusCode::TOO_MANY_REQUESTS,
        "another login from this address is being checked; try again in a moment",
    )
    .as_api(ErrorCode::TooManyAttempts)
    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

fn unauthorized(why: &'static str) -> Rejection {
    Rejection::client(StatusCode::UNAUTHORIZED, why)
        .as_api(ErrorCode::Unauthorized)
        .with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"moat admin\", charset=\"UTF-8\""),
        )
}

fn locked(retry_after: Duration) -> Rejection {
    let secs = retry_after.as_secs().max(1);
    Rejection::client(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed logins from this address; try again in {secs}s"),
    )
    .as_api(ErrorCode::TooManyAttempts)
    .with_header(header::RETRY_AFTER, HeaderValue::from(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin_api::BoxFuture;
    use crate::pipeline::testing;

    /// An API that answers who asked and what.
    struct Echo;

    impl AdminApi for Echo {
        fn handle(
            &self,
            req: Request<crate::body::Body>,
            actor: moat_store::Actor,
        ) -> BoxFuture<http::Response<crate::body::Body>> {
            let text = format!("{} {} {}", actor.name, actor.source, req.uri());
            Box::pin(async move { http::Response::new(body::full(text)) })
        }
        fn serve(&self, _: tokio::sync::watch::Receiver<bool>) -> BoxFuture<()> {
            Box::pin(async {})
        }
    }

    fn req(auth: Option<&str>) -> Request<http_body_util::Empty<bytes::Bytes>> {
        let mut b = Request::get("/_moat/api/v1/status");
        if let Some(a) = auth {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(http_body_util::Empty::new()).unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[tokio::test]
    async fn off_by_default_and_only_over_tls() {
        let config = moat_config::default_config();
        let (_dir, sign_in) = testing::sign_in(&config);
        let route = AdminRoute::new(Some(Arc::new(Echo)));
        let r = req(None);
        let ctx = testing::ctx(&r, "127.0.0.1", true, None);
        let refused = handle(r, &ctx, &config.security, &route, &sign_in)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.status, 404);
        let mut security = config.security.clone();
        security.admin_over_tcp = true;
        let r = req(None);
        let ctx = testing::ctx(&r, "127.0.0.1", false, None);
        let refused = handle(r, &ctx, &security, &route, &sign_in)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.status, 404, "never over plain HTTP");
    }

    #[tokio::test]
    async fn credentials_are_checked_and_the_request_reaches_the_api_as_the_admin() {
        let config = moat_config::default_config();
        let (_dir, sign_in) = testing::sign_in(&config);
        let mut security = config.security.clone();
        security.admin_over_tcp = true;
        let route = AdminRoute::new(Some(Arc::new(Echo)));
        let user = security.admin_user.clone();

        let r = req(None);
        let ctx = testing::ctx(&r, "127.0.0.1", true, None);
        let refused = handle(r, &ctx, &security, &route, &sign_in)
            .await
            .err()
            .unwrap();
        assert_eq!(refused.status, 401);
        assert_eq!(refused.api_code, Some(ErrorCode::Unauthorized));
        let page = refused.into_response();
        assert_eq!(page.headers()[header::CONTENT_TYPE], "application/json");

        let r = req(Some(&basic(&user, "secret")));
        let ctx = testing::ctx(&r, "127.0.0.1", true, None);
        let Ok(Flow::Respond(resp)) = handle(r, &ctx, &security, &route, &sign_in).await else {
            panic!("passed to the API");
        };
        use http_body_util::BodyExt;
        let text = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            text,
            format!("{user} tcp:127.0.0.1 /api/v1/status").as_bytes()
        );
    }

    #[tokio::test]
    async fn failures_lock_the_address_out() {
        let config = moat_config::default_config();
        let (_dir, sign_in) = testing::sign_in(&config);
        let mut security = config.security.clone();
        security.admin_over_tcp = true;
        let route = AdminRoute::new(Some(Arc::new(Echo)));
        let mut last = 0;
        for _ in 0..THROTTLE.max_failures {
            let r = req(Some(&basic("admin", "wrong")));
            let ctx = testing::ctx(&r, "127.0.0.3", true, None);
            last = handle(r, &ctx, &security, &route, &sign_in)
                .await
                .err()
                .unwrap()
                .status
                .as_u16();
        }
        assert_eq!(last, 429);
        let r = req(Some(&basic(&security.admin_user, "secret")));
        let ctx = testing::ctx(&r, "127.0.0.3", true, None);
        let locked = handle(r, &ctx, &security, &route, &sign_in)
            .await
            .err()
            .unwrap();
        assert_eq!(locked.status, 429, "even the right password, while locked");
        assert!(locked.headers.iter().any(|(n, _)| n == header::RETRY_AFTER));
    }
}
