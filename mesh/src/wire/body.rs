//! Bodies of each frame kind (PROTOCOL.md §5).
