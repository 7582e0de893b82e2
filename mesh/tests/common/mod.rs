//! Shared helpers for the integration tests of `mesh`.
#![allow(dead_code)]

/// The golden vectors of `mesh/PROTOCOL.md` §8: every fenced block whose first line is `vector: NAME`, as
/// `(NAME, bytes)`. Panics (failing the test) on a malformed block, so a broken document cannot pass silently.
pub fn protocol_vectors() -> Vec<(String, Vec<u8>)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/PROTOCOL.md"))
        .expect("read PROTOCOL.md");
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if !line.trim_start().starts_with("```") {
            continue;
        }
        let Some(first) = lines.next() else { break };
        let Some(name) = first.trim().strip_prefix("vector:") else {
            // An ordinary code block: skip to its end.
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
            }
            continue;
        };
        let mut hex_text = String::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            hex_text.extend(l.chars().filter(|c| !c.is_whitespace()));
        }
        let bytes =
            hex::decode(&hex_text).unwrap_or_else(|e| panic!("vector {name}: bad hex: {e}"));
        out.push((name.trim().to_string(), bytes));
    }
    out
}

/// The vector called `name`; panics if PROTOCOL.md lacks it.
pub fn vector(name: &str) -> Vec<u8> {
    protocol_vectors()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("PROTOCOL.md §8 has no vector `{name}`"))
}
