//! Validates an app's `upstream` URL: plain `http://HOST:PORT[/base]`, no
//! credentials, no query.

use crate::model::Upstream;

/// What is wrong with an upstream URL: (message, fix).
pub(super) struct UpstreamError(pub String, pub String);

pub(super) fn parse(u: &str, h2c: bool) -> Result<Upstream, UpstreamError> {
    let fix = "write upstream = \"http://HOST:PORT\", e.g. \"http://127.0.0.1:3000\"".to_owned();
    let uri: http::Uri = u
        .parse()
        .map_err(|e| UpstreamError(format!("{u:?} is not a URL: {e}"), fix.clone()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(UpstreamError(
                "https upstreams are not supported yet".into(),
                "reach the upstream over http on a private address, e.g. \"http://127.0.0.1:3000\""
                    .into(),
            ));
        }
        _ => return Err(UpstreamError(format!("{u:?} has no http:// scheme"), fix)),
    }
    let Some(authority) = uri.authority().cloned() else {
        return Err(UpstreamError(format!("{u:?} has no host"), fix));
    };
    if authority.as_str().contains('@') {
        return Err(UpstreamError(
            "credentials in the upstream URL are not supported".into(),
            "remove user:password@ from the URL".into(),
        ));
    }
    if uri.query().is_some() {
        return Err(UpstreamError(
            "the upstream URL must not have a query".into(),
            fix,
        ));
    }
    let origin = http::Uri::builder()
        .scheme("http")
        .authority(authority)
        .path_and_query("/")
        .build()
        .map_err(|e| UpstreamError(e.to_string(), fix))?;
    Ok(Upstream {
        origin,
        base_path: uri.path().trim_end_matches('/').to_owned(),
        h2c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(u: &str) -> String {
        match parse(u, false) {
            Ok(up) => panic!("{u:?} was taken: {up:?}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn origin_and_base_path_are_split() {
        let up = parse("http://127.0.0.1:9000/base/", true).ok().unwrap();
        assert_eq!(up.origin.to_string(), "http://127.0.0.1:9000/");
        assert_eq!(up.base_path, "/base");
        assert!(up.h2c);
        let up = parse("http://backend:3000", false).ok().unwrap();
        assert_eq!(up.base_path, "");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        assert!(message("not a url").starts_with("\"not a url\" is not a URL: "));
        assert_eq!(
            message("https://x"),
            "https upstreams are not supported yet"
        );
        assert_eq!(message("ftp://x"), "\"ftp://x\" has no http:// scheme");
        assert_eq!(message("/relative"), "\"/relative\" has no http:// scheme");
        assert_eq!(
            message("http://u:p@h:1"),
            "credentials in the upstream URL are not supported"
        );
        assert_eq!(
            message("http://h:1/?q=1"),
            "the upstream URL must not have a query"
        );
    }
}
