//! Fuzzes the Prometheus `query_range` response decoder: any bytes must give series or an
//! error, never a panic.
#![no_main]

use analytics_io::{decode_query_range, LabelMapping};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let labels = LabelMapping::default();
    let _ = decode_query_range(data, &labels, false);
    let _ = decode_query_range(data, &labels, true);
});
