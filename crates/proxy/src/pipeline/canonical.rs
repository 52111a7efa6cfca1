//! Stage: the canonical path. Every later decision (routing, sign-in,
//! guards, recording) and the request sent upstream use the one form
//! computed here, so no spelling of a path can mean one thing to moat and
//! another to the app (see `moat_policy::canonical_path`).

use http::{Request, StatusCode, Uri};
use moat_policy::canonical_path;

use crate::error::Rejection;
use crate::runtime::Runtime;

/// Rewrites the request's path to its canonical form, or refuses it.
/// Returns the path with encoded separators decoded when the app allows
/// them (the guards check that reading too).
pub fn apply<B>(
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
