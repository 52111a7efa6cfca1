//! Stage: the canonical path. Every later decision (routing, sign-in,
//! guards, recording) and the request sent upstream use the one form
//! computed here, so no spelling of a path can mean one thing to moat and
//! another to the app (see `moat_policy::canonical_path`).

use http::{Request, StatusCode, Uri};
use moat_policy::canonical_path;

use crate::error::Rejection;
use crate::pipeline::{Flow, Step};
use crate::request::RequestCtx;
use crate::runtime::Runtime;

/// Rewrites the request's path to its canonical form, or refuses it.
/// When the app allows encoded separators, the path with them decoded goes
/// in [`RequestCtx::decoded_path`] (the guards check that reading too).
pub fn apply<B>(req: &mut Request<B>, ctx: &mut RequestCtx, runtime: &Runtime) -> Step {
    ctx.decoded_path = decoded(req, ctx.host.as_deref(), runtime)?;
    Ok(Flow::Continue)
}

fn decoded<B>(
    req: &mut Request<B>,
    host: Option<&str>,
    runtime: &Runtime,
) -> Result<Option<String>, Rejection> {
    let raw = req.uri().path();
    if canonical_path::is_canonical(raw) {
        return Ok(None);
    }
    let canonical = canonical_path::canonicalize(raw).map_err(|r| refused(r.reason()))?;
    let mut decoded_path = None;
    if canonical.encoded_separator {
        // Allowed only when both readings of the path (separator kept
        // encoded, or decoded as a decoding upstream would) belong to the
        // same app, and that app asked for encoded separators by name.
        let decoded_text = canonical.separators_decoded();
        let kept = runtime.router.find(host, &canonical.path);
        let decoded = runtime.router.find(host, &decoded_text);
        let allowed = kept.is_some()
            && kept == decoded
            && kept.is_some_and(|i| runtime.apps[i].allow_encoded_slashes);
        if !allowed {
            return Err(refused("the path holds an encoded / or \\"));
        }
        decoded_path = Some(decoded_text);
    }
    if canonical.path != raw {
        let mut parts = req.uri().clone().into_parts();
        let path_and_query = match req.uri().query() {
            Some(q) => format!("{}?{q}", canonical.path),
            None => canonical.path,
        };
        parts.path_and_query = Some(
            path_and_query
                .parse()
                .map_err(|_| refused("the path cannot be made canonical"))?,
        );
        *req.uri_mut() =
            Uri::from_parts(parts).map_err(|_| refused("the path cannot be made canonical"))?;
    }
    Ok(decoded_path)
}

fn refused(why: &'static str) -> Rejection {
    Rejection {
        detail: why.to_owned(),
        ..Rejection::client(
            StatusCode::BAD_REQUEST,
            "This path is ambiguous; moat does not pass it on.",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing;

    #[test]
    fn the_path_is_rewritten_to_its_one_spelling() {
        let rt = testing::one_app("", "");
        let mut req = Request::get("/a//b/./c/../d%61?q=1").body(()).unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, None);
        assert!(matches!(apply(&mut req, &mut ctx, &rt), Ok(Flow::Continue)));
        assert_eq!(req.uri().path(), "/a/b/da");
        assert_eq!(req.uri().query(), Some("q=1"));
        assert_eq!(ctx.decoded_path, None);
    }

    #[test]
    fn encoded_separators_are_refused_unless_the_app_allows_them() {
        let rt = testing::one_app("", "");
        let mut req = Request::get("/a%2Fb").body(()).unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, None);
        let r = apply(&mut req, &mut ctx, &rt).err().expect("refused");
        assert_eq!(r.status, 400);

        let rt = testing::one_app("", "[apps.security]\nallow_encoded_slashes = true");
        let mut req = Request::get("/a%2Fb").body(()).unwrap();
        let mut ctx = testing::ctx(&req, "127.0.0.1", true, None);
        assert!(matches!(apply(&mut req, &mut ctx, &rt), Ok(Flow::Continue)));
        assert_eq!(ctx.decoded_path.as_deref(), Some("/a/b"));
    }
}
