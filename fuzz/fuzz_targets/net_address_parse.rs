//! `NetAddress` parsing on arbitrary text: total, and Display/FromStr round trip on
//! whatever parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::NetAddress;

fuzz_target!(|text: &str| {
    if let Ok(address) = text.parse::<NetAddress>() {
        let shown = address.to_string();
        assert_eq!(shown.parse::<NetAddress>(), Ok(address));
    }
});
