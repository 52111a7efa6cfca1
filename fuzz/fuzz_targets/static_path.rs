//! Static path checks never panic, and an accepted path can never climb out
//! of the app folder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    if let Ok(p) = moat_policy::static_path::resolve(path) {
        for s in &p.segments {
            assert!(!s.is_empty() && s != "." && s != "..", "{path:?} -> {s:?}");
            assert!(!s.contains(['/', '\\', '\0']), "{path:?} -> {s:?}");
            assert!(!s.starts_with('.') || s == ".well-known", "{path:?} -> {s:?}");
        }
    }
    let _ = moat_policy::route::normalize_prefix(path);
    let _ = moat_policy::route::host_without_port(path);
    let _ = moat_policy::negotiate::accepted(Some(path));
    let _ = moat_policy::redirect::https_location(Some(path), "localhost", 8443, path);
});
