//! Response stage: headers moat adds to every response it sends.
//! (The full header policy, CSP and CORS build on this later.)

use http::{HeaderName, Response, header};

use crate::body::Body;
use crate::pipeline::RequestCtx;
use crate::runtime::Runtime;

/// Headers upstreams commonly use to advertise their software; an
/// attacker's shortcut to known vulnerabilities, so they do not leave moat.
const FINGERPRINT: [HeaderName; 2] = [header::SERVER, HeaderName::from_static("x-powered-by")];

pub fn apply(mut response: Response<Body>, ctx: &RequestCtx, runtime: &Runtime) -> Response<Body> {
    let h = response.headers_mut();
    for name in FINGERPRINT.iter() {
        h.remove(name);
    }
    // HSTS is only meaningful (and only honoured by browsers) over HTTPS.
    if ctx.tls {
        match &runtime.hsts {
            Some(v) => {
                h.insert(header::STRICT_TRANSPORT_SECURITY, v.clone());
            }
            None => {
                h.remove(header::STRICT_TRANSPORT_SECURITY);
            }
        }
    }
    response
}
