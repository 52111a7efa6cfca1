//! Any config text is either accepted or refused with problems; it never
//! panics, and every problem has a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = moat_config::load_str(text, Some(std::path::Path::new("fuzz.toml"))) {
        assert!(!e.problems.is_empty());
        assert!(e.problems.iter().all(|p| !p.message.is_empty()));
        let _ = e.to_string();
    }
});
