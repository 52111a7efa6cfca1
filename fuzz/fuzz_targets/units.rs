//! Size and duration parsing never panics, and what it prints it reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_policy::units::*;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(n) = parse_size(s) {
        assert_eq!(parse_size(&format_size(n)), Ok(n));
    }
    if let Ok(d) = parse_duration(s) {
        assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }
});
