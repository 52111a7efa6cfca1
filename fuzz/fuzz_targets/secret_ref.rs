//! Secret references: parsing never panics, the pieces put back together
//! are the value, and substituting each name with its own reference gives
//! the value back (for values that hold only `{{secret:...}}` forms).
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_policy::secret_ref::{Part, parse, substitute};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(parts) = parse(s) else { return };
    if s.starts_with("secret:") {
        return;
    }
    let joined: String = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.to_string(),
            Part::Secret(n) => format!("{{{{secret:{n}}}}}"),
        })
        .collect();
    assert_eq!(joined, s);
    let same = substitute(s, |n| Ok::<_, ()>(format!("{{{{secret:{n}}}}}")));
    assert_eq!(same, Ok(Ok(s.to_owned())));
});
