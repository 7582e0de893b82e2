//! Fuzz target: arbitrary bytes through every frame decoder (PROTOCOL.md §4–§5).
//!
//! Invariant checked: no decoder panics, and whatever `decode` accepts agrees with the header view and
//! re-encodes to exactly the input bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mesh::wire::{decode, encode_body, FrameView, Header, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let header = FrameView::new_checked(data)
        .ok()
        .and_then(|view| Header::parse(&view).ok());
    if let Ok((h, body)) = decode(data) {
        assert_eq!(Some(h), header);
        assert!(body.fits(h.kind));
        assert_eq!(HEADER_LEN + body.buffer_len(), data.len());
        assert_eq!(encode_body(&h, &body).as_deref(), Ok(data));
    }
});
