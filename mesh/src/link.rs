//! placeholder module header, replaced by the module implementation.
