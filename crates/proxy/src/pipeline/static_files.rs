//! Serves a static web-app bundle from its folder.
//!
//! SECURITY: the request path is checked by
//! [`moat_policy::static_path::resolve`] (no dot segments, encoded
//! separators or hidden files), and every file is opened through its
//! canonical path, which must still lie inside the bundle's canonical folder,
//! so a symlink cannot lead out of it. Folders are never listed.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures_util::TryStreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::StreamBody;
use moat_policy::static_path::{self, Refusal};
use moat_policy::{conditional, negotiate};

use crate::body::{self, Body};
use crate::error::Rejection;
use crate::runtime::apps::StaticApp;

/// A file chosen to answer a request.
struct Chosen {
    path: PathBuf,
    /// The name whose extension gives the content type (the uncompressed
    /// file's, for a precompressed variant).
    type_name: PathBuf,
    encoding: Option<&'static str>,
    meta: std::fs::Metadata,
    /// Found as the `index.html` of a folder that was asked for.
    folder_index: bool,
}

impl StaticApp {
    pub async fn serve<B>(
        &self,
        req: &Request<B>,
        prefix: &str,
    ) -> Result<Response<Body>, Rejection> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(Rejection::client(
                StatusCode::METHOD_NOT_ALLOWED,
                "This app only serves files (GET and HEAD).",
            )
            .with_header(header::ALLOW, HeaderValue::from_static("GET, HEAD")));
        }
        let path = req.uri().path();
        let rest = if prefix == "/" {
            path
        } else {
            &path[prefix.len()..]
        };
        // `/app` → `/app/`, so the bundle's relative links resolve inside it.
        if rest.is_empty() {
            return Ok(redirect_with_slash(prefix, req.uri()));
        }
        let wanted = static_path::resolve(rest).map_err(|r| match r {
            Refusal::Hidden => Rejection::not_found(),
            _ => Rejection::client(StatusCode::BAD_REQUEST, "The request path is not allowed."),
        })?;
        // SECURITY: the bundle's config.json is the admin's (its CSP
        // layer), not the app's: never served, nor a compressed copy.
        if let [only] = wanted.segments.as_slice() {
            if only
                .strip_prefix(moat_config::manifest::ADMIN_FILE_NAME)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
            {
                return Err(Rejection::not_found());
            }
        }
        let mut candidate = self.root.clone();
        candidate.extend(&wanted.segments);

        let accept_enc = req
            .headers()
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let encodings = negotiate::accepted(accept_enc);
        let found = self.find(&candidate, &encodings).await;
        let is_folder = match &found {
            Found::Folder => true,
            Found::File(c) => c.folder_index,
            Found::Nothing => false,
        };
        if is_folder && !wanted.trailing_slash && !wanted.segments.is_empty() {
            // A folder asked for without its slash: redirect, like a web
            // server, so relative links inside it resolve.
            return Ok(redirect_with_slash(path, req.uri()));
        }
        let chosen = match found {
            Found::File(c) => c,
            Found::Folder | Found::Nothing => {
                if !(self.spa && accepts_html(req) && !looks_like_file(&wanted.segments)) {
                    return Err(Rejection::not_found());
                }
                match self.find(&self.root.join("index.html"), &encodings).await {
                    Found::File(c) => c,
                    _ => return Err(Rejection::not_found()),
                }
            }
        };
        respond(req, chosen, &encodings).await
    }

    /// Finds the file for `candidate` (its `index.html` for a folder) and the
    /// best precompressed variant the client accepts.
    async fn find(&self, candidate: &Path, encodings: &[&'static str]) -> Found {
        let Some((path, meta)) = self.inside(candidate).await else {
            return Found::Nothing;
        };
        let folder_index = meta.is_dir();
        let (path, meta) = if folder_index {
            let index = path.join("index.html");
            match self.inside(&index).await {
                Some((p, m)) if m.is_file() => (p, m),
                _ => return Found::Folder,
            }
        } else if meta.is_file() {
            (path, meta)
        } else {
            return Found::Nothing;
        };
        for enc in encodings {
            let suffix = negotiate::VARIANTS
                .iter()
                .find(|(e, _)| e == enc)
                .map(|(_, s)| *s)
                .unwrap_or("");
            let mut variant = path.clone().into_os_string();
            variant.push(suffix);
            if let Some((vp, vm)) = self.inside(Path::new(&variant)).await {
                if vm.is_file() {
                    return Found::File(Chosen {
                        path: vp,
                        type_name: path,
                        encoding: Some(enc),
                        meta: vm,
                        folder_index,
                    });
                }
            }
        }
        Found::File(Chosen {
            type_name: path.clone(),
            path,
            encoding: None,
            meta,
            folder_index,
        })
    }

    /// Canonical path and metadata, if the path exists inside the bundle.
    async fn inside(&self, p: &Path) -> Option<(PathBuf, std::fs::Metadata)> {
        let real = tokio::fs::canonicalize(p).await.ok()?;
        if !real.starts_with(&self.root) {
            tracing::warn!(path = %p.display(), "static file resolves outside its app folder; refused");
            return None;
        }
        let meta = tokio::fs::metadata(&real).await.ok()?;
        Some((real, meta))
    }
}

enum Found {
    File(Chosen),
    Folder,
    Nothing,
}

async fn respond<B>(
    req: &Request<B>,
    chosen: Chosen,
    encodings: &[&'static str],
) -> Result<Response<Body>, Rejection> {
    let modified = chosen.meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let etag = etag(&chosen.meta, modified, chosen.encoding);
    let content_type = content_type(&chosen.type_name);
    let mut builder = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::LAST_MODIFIED, httpdate::fmt_http_date(modified))
        // Revalidate every time: with ETags that is one cheap 304, and a new
        // version of an app is never hidden behind a stale cache.
        .header(header::CACHE_CONTROL, "no-cache");
    if !encodings.is_empty() || chosen.encoding.is_some() {
        builder = builder.header(header::VARY, "Accept-Encoding");
    }
    let h = req.headers();
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    if conditional::not_modified(
        text(header::IF_NONE_MATCH),
        text(header::IF_MODIFIED_SINCE),
        &etag,
        modified,
    ) {
        return builder
            .status(StatusCode::NOT_MODIFIED)
            .body(body::empty())
            .map_err(|e| Rejection::internal(e.to_string()));
    }
    builder = builder
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, chosen.meta.len());
    if let Some(enc) = chosen.encoding {
        builder = builder.header(header::CONTENT_ENCODING, enc);
    }
    let body = if req.method() == Method::HEAD {
        body::empty()
    } else {
        let file = tokio::fs::File::open(&chosen.path)
            .await
            .map_err(|e| Rejection::internal(format!("{}: {e}", chosen.path.display())))?;
        let stream =
            tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024).map_ok(Frame::data);
        body::boxed(StreamBody::new(stream.map_err(|e: io::Error| e)))
    };
    builder
        .body(body)
        .map_err(|e| Rejection::internal(e.to_string()))
}

/// Redirects to `path` + `/`, keeping the query.
fn redirect_with_slash(path: &str, uri: &http::Uri) -> Response<Body> {
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    redirect(&format!("{path}/{query}"))
}

fn redirect(location: &str) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// A weak validator from size, modification time and coding: cheap, and it
/// changes whenever the file does.
fn etag(meta: &std::fs::Metadata, modified: SystemTime, encoding: Option<&str>) -> String {
    let nanos = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    match encoding {
        Some(enc) => format!("W/\"{:x}-{:x}-{enc}\"", meta.len(), nanos),
        None => format!("W/\"{:x}-{:x}\"", meta.len(), nanos),
    }
}

fn content_type(path: &Path) -> HeaderValue {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let text_like = mime.type_() == mime_guess::mime::TEXT
        || mime.suffix().is_some_and(|s| s == "xml" || s == "json")
        || matches!(
            mime.essence_str(),
            "application/javascript" | "application/json" | "application/xml"
        );
    let value = if text_like && mime.get_param("charset").is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

fn accepts_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html") || a.contains("*/*"))
}

/// `/assets/app.js` names a file; `/settings/profile` is an app route.
fn looks_like_file(segments: &[String]) -> bool {
    segments.last().is_some_and(|s| s.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<p>home</p>").unwrap();
        std::fs::write(dir.path().join("app.js"), "let x = 1;").unwrap();
        std::fs::write(dir.path().join(".env"), "SECRET=1").unwrap();
        dir
    }

    async fn status(app: &StaticApp, method: Method, path: &str) -> (u16, Option<String>) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ACCEPT, "text/html")
            .body(())
            .unwrap();
        match app.serve(&req, "/site").await {
            Ok(resp) => (
                resp.status().as_u16(),
                resp.headers()
                    .get(header::CONTENT_TYPE)
                    .or(resp.headers().get(header::LOCATION))
                    .map(|v| v.to_str().unwrap().to_owned()),
            ),
            Err(r) => (r.status.as_u16(), None),
        }
    }

    #[tokio::test]
    async fn files_are_served_and_nothing_else() {
        let dir = bundle();
        let app = StaticApp::new(dir.path(), false).unwrap();
        let (s, ct) = status(&app, Method::GET, "/site/app.js").await;
        assert_eq!(s, 200);
        assert!(ct.unwrap().contains("javascript"));
        assert_eq!(
            status(&app, Method::GET, "/site/").await.0,
            200,
            "the folder's index"
        );
        assert_eq!(
            status(&app, Method::GET, "/site").await,
            (308, Some("/site/".into())),
            "a slash added"
        );
        assert_eq!(
            status(&app, Method::GET, "/site/.env").await.0,
            404,
            "hidden files are not served"
        );
        assert_eq!(status(&app, Method::GET, "/site/missing").await.0, 404);
        let req = Request::post("/site/app.js").body(()).unwrap();
        let r = app.serve(&req, "/site").await.err().expect("refused");
        assert_eq!(r.status, 405);
        assert!(
            r.headers
                .iter()
                .any(|(n, v)| n == header::ALLOW && v == "GET, HEAD")
        );
    }

    #[tokio::test]
    async fn a_single_page_app_gets_its_index_for_unknown_pages() {
        let dir = bundle();
        let app = StaticApp::new(dir.path(), true).unwrap();
        let (s, ct) = status(&app, Method::GET, "/site/some/route").await;
        assert_eq!(s, 200);
        assert!(ct.unwrap().starts_with("text/html"));
    }

    #[tokio::test]
    async fn a_symlink_out_of_the_bundle_is_not_followed() {
        let dir = bundle();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "no").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            dir.path().join("link.txt"),
        )
        .unwrap();
        let app = StaticApp::new(dir.path(), false).unwrap();
        assert_eq!(status(&app, Method::GET, "/site/link.txt").await.0, 404);
    }
}
