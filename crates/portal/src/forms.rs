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

    /// A form filled in with these values (an edit form's current
    /// settings).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Form {
        Form(pairs.into_iter().collect())
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
        Some(self.get(name))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
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

/// A filter's `since` and `until` date inputs as Unix milliseconds, the
/// whole `until` day included.
pub fn date_range(query: &str) -> (Option<i64>, Option<i64>) {
    let day = |k| query_param(query, k).as_deref().and_then(date_ms);
    (day("since"), day("until").map(|ms| ms + 86_400_000))
}

/// A date input's value (`YYYY-MM-DD`, UTC) as Unix milliseconds at its
/// start.
pub fn date_ms(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days since the epoch (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_utc_midnights() {
        assert_eq!(date_ms("1970-01-01"), Some(0));
        assert_eq!(date_ms("2026-12-06"), Some(1_796_515_200_000));
        assert_eq!(date_ms("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(date_ms("2026-13-01"), None);
        assert_eq!(date_ms("yesterday"), None);
    }

    use super::*;

    #[test]
    fn fields_are_decoded() {
        let f =
            Form::parse("_csrf=a%2Bb&source=https%3A%2F%2Fcdn.example.com&note=two+words&empty=");
        assert_eq!(f.get("_csrf"), "a+b");
        assert_eq!(f.get("source"), "https://cdn.example.com");
        assert_eq!(f.get("note"), "two words");
        assert_eq!(f.opt("empty"), None);
        assert_eq!(f.get("missing"), "");
    }
}
