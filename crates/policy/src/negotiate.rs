//! Picks a precompressed file variant from `Accept-Encoding` (RFC 9110
//! section 12.5.3). Only codings moat has files for are considered; a coding
//! with `q=0` is refused, and `*` covers codings not named.

/// Precompressed variants moat looks for, best first, with their file suffix.
pub const VARIANTS: [(&str, &str); 2] = [("br", ".br"), ("gzip", ".gz")];

/// The codings from [`VARIANTS`] the client accepts, best first (by q-value,
/// then by our preference).
pub fn accepted(accept_encoding: Option<&str>) -> Vec<&'static str> {
    let Some(header) = accept_encoding else {
        return Vec::new();
    };
    let mut star: Option<f32> = None;
    let mut named: Vec<(&str, f32)> = Vec::new();
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if coding.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        for param in parts {
            if let Some((k, v)) = param.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
        }
        if coding == "*" {
            star = Some(q);
        } else {
            named.push((coding, q));
        }
    }
    let mut out: Vec<(f32, usize, &'static str)> = Vec::new();
    for (rank, (coding, _)) in VARIANTS.iter().enumerate() {
        let q = named
            .iter()
            .find(|(c, _)| {
                c.eq_ignore_ascii_case(coding)
                    || (*coding == "gzip" && c.eq_ignore_ascii_case("x-gzip"))
            })
            .map(|(_, q)| *q)
            .or(star)
            .unwrap_or(0.0);
        if q > 0.0 {
            out.push((q, rank, coding));
        }
    }
    out.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    out.into_iter().map(|(_, _, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        assert_eq!(accepted(None), Vec::<&str>::new());
        assert_eq!(accepted(Some("gzip, deflate, br")), ["br", "gzip"]);
        assert_eq!(accepted(Some("gzip;q=1, br;q=0.5")), ["gzip", "br"]);
        assert_eq!(accepted(Some("br;q=0, gzip")), ["gzip"]);
        assert_eq!(accepted(Some("identity")), Vec::<&str>::new());
        assert_eq!(accepted(Some("*;q=0.1, br;q=0")), ["gzip"]);
        assert_eq!(accepted(Some("x-gzip")), ["gzip"]);
    }
}
