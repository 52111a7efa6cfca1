//! The page every portal view sits in: head (the stylesheet and script
//! under the response's nonce), the navigation, the main landmark, and
//! small pieces the views share.

use http::{HeaderValue, Response, StatusCode, header};
use maud::{DOCTYPE, Markup, html};
use moat_proxy::admin_api::Viewer;
use moat_proxy::body::{self, Body};

/// The portal's sections, in the navigation's order: path, label.
const SECTIONS: [(&str, &str); 5] = [
    ("/", "Overview"),
    ("/apps", "Apps"),
    ("/recordings", "Recordings"),
    ("/storage", "Storage"),
    ("/audit", "Audit log"),
];

/// One page of the portal.
pub struct Page<'a> {
    pub viewer: &'a Viewer,
    pub title: &'a str,
    /// The navigation entry that is current (a path of `SECTIONS`).
    pub section: &'a str,
    pub status: StatusCode,
}

impl Page<'_> {
    pub fn render(&self, notice: Option<Notice<'_>>, content: Markup) -> Response<Body> {
        let v = self.viewer;
        let base = v.base;
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="moat-csrf" content=(v.csrf_token);
                    title { (self.title) " · moat portal" }
                    link rel="stylesheet" href={ (base) "/assets/portal.css" } nonce=(v.nonce);
                    script src={ (base) "/assets/portal.js" } nonce=(v.nonce) defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    header.top {
                        a.brand href={ (base) "/" } { "moat" }
                        nav aria-label="Portal" {
                            ul {
                                @for (path, label) in SECTIONS {
                                    li {
                                        @if path == self.section {
                                            a href={ (base) (path) } aria-current="page" { (label) }
                                        } @else {
                                            a href={ (base) (path) } { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        div.who {
                            span { "Signed in as " strong { (v.actor.name) } }
                            form method="post" action="/_moat/logout" {
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                    main #main tabindex="-1" {
                        h1 { (self.title) }
                        @if let Some(n) = notice {
                            (n.markup())
                        }
                        (content)
                    }
                    footer { "moat " (env!("CARGO_PKG_VERSION")) }
                }
            }
        };
        html_response(self.status, markup.into_string())
    }
}

/// A message at the top of a page: what an action did, or why it failed.
pub enum Notice<'a> {
    Done(&'a str),
    Failed(&'a str),
}

impl Notice<'_> {
    fn markup(&self) -> Markup {
        match self {
            Notice::Done(m) => html! { p.notice.done role="status" { (m) } },
            Notice::Failed(m) => html! { p.notice.failed role="alert" { (m) } },
        }
    }
}

pub fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut resp = Response::new(body::full(html));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// 303 to a portal path (after a change: the page shows it, and a reload
/// does not send the form again).
pub fn see_other(viewer: &Viewer, path: &str) -> Response<Body> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let location = format!("{}{path}", viewer.base);
    resp.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&location)
            .unwrap_or_else(|_| HeaderValue::from_static("/_moat/portal/")),
    );
    resp
}

/// The hidden field every form carries.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="_csrf" value=(viewer.csrf_token); }
}

/// A small form with one button that posts `fields` to `action`;
/// `confirm`: the question the portal's script asks first.
pub fn button_form(
    viewer: &Viewer,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action={ (viewer.base) (action) } {
            (csrf_field(viewer))
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button class=(class) type="submit" data-confirm=[confirm] { (label) }
        }
    }
}

/// One field of a filter form, holding the query's current value.
pub fn filter_field(
    query: &str,
    id: &str,
    name: &str,
    label: &str,
    kind: &str,
    hint: &str,
) -> Markup {
    let value = crate::forms::query_param(query, name).unwrap_or_default();
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value) placeholder=(hint);
        }
    }
}

/// A definition list row.
pub fn row(term: &str, value: Markup) -> Markup {
    html! { dt { (term) } dd { (value) } }
}

/// A page that failed for a reason the API gave.
pub fn failure(viewer: &Viewer, section: &str, e: &moat_admin::api::ApiError) -> Response<Body> {
    Page {
        viewer,
        title: "Something went wrong",
        section,
        status: crate::api::status_of(e),
    }
    .render(
        Some(Notice::Failed(&e.error)),
        html! {
            p { a href={ (viewer.base) (section) } { "Back" } }
        },
    )
}
