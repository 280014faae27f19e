//! Fuzzes the NAB file parser (`timestamp,value`, one series per file): any bytes, strict and
//! lenient, must give a series or an error, never a panic.
#![no_main]

use analytics_io::{FileFormat, FileOptions, FileSource, Selector, TimeRange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for lenient in [false, true] {
        let options = FileOptions {
            format: Some(FileFormat::Nab),
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
