//! Fuzzes the format guess and whichever reader it picks: any bytes, with no format given,
//! strict and lenient, must give series or an error, never a panic.
#![no_main]

use analytics_io::{FileOptions, FileSource, Selector, TimeRange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for lenient in [false, true] {
        let options = FileOptions {
            tenant: Some("t".into()),
            cluster: Some("c".into()),
            node: Some("n".into()),
            metric: Some("m".into()),
            lenient,
            ..Default::default()
        };
        let _ = FileSource::new("fuzz.input", options).read_from(data, None, &Selector::all(), &TimeRange::all());
    }
});
