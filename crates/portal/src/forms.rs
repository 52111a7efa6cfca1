//! Reading the portal's posted forms (`application/x-www-form-urlencoded`;
//! the portal stage has already bounded and buffered the body).

use http::Request;
use http_body_util::BodyExt;
use moat_proxy::body::Body;

/// A posted form's fields, in order.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub async fn read(req: Request<Body>) -> Form {
        let bytes = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Form::parse(&String::from_utf8_lossy(&bytes))
    }

    pub fn parse(text: &str) -> Form {
        Form(
            text.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The field's value, trimmed; `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// The field's value, `None` when absent or blank.
    pub fn opt(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|v| !v.is_empty()).map(str::to_owned)
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// A query string's parameter, decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    Form::parse(query).opt(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_decoded() {
        let f = Form::parse("_csrf=a%2Bb&source=https%3A%2F%2Fcdn.example.com&note=two+words&empty=");
        assert_eq!(f.get("_csrf"), "a+b");
        assert_eq!(f.get("source"), "https://cdn.example.com");
        assert_eq!(f.get("note"), "two words");
        assert_eq!(f.opt("empty"), None);
        assert_eq!(f.get("missing"), "");
    }
}
