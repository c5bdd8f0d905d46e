//! `NodeInfo::decode` on arbitrary bytes: total, bounded, and whatever it accepts encodes
//! back to a prefix of the input (the rest being the ignored extension area).
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::NodeInfo;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(info) = NodeInfo::decode(bytes) {
        let encoded = info.encode().expect("a decoded NodeInfo is within bounds");
        assert!(bytes.starts_with(&encoded));
        assert_eq!(NodeInfo::decode(&encoded), Ok(info));
    }
});
