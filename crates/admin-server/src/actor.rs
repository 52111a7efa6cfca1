//! Who makes a change: the HTTPS route puts an [`Actor`] in the request
//! (the admin user and the client address); on the socket it is the local
//! account of the peer's uid.

use axum::extract::FromRequestParts;
use axum::extract::connect_info::ConnectInfo;
use axum::http::request::Parts;
use moat_store::Actor;

use crate::socket::{UnixPeer, user_name};

pub struct Who(pub Actor);

impl<S: Send + Sync> FromRequestParts<S> for Who {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(actor) = parts.extensions.get::<Actor>() {
            return Ok(Who(actor.clone()));
        }
        let uid = parts
            .extensions
            .get::<ConnectInfo<UnixPeer>>()
            .and_then(|c| c.0.uid);
        Ok(Who(match uid {
            Some(uid) => Actor {
                name: user_name(uid).unwrap_or_else(|| format!("uid {uid}")),
                source: format!("unix:uid={uid}"),
            },
            None => Actor {
                name: "unknown".into(),
                source: "unix".into(),
            },
        }))
    }
}
