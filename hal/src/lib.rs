//! meshnode radio abstraction. It moves opaque packets over links and reports link events; it knows nothing of
//! frames, sessions or routing. The `Radio` trait and its backends (simulated medium, UDP, BLE) are built with the
//! mesh node; for now this crate carries the ATT MTU facts that the protocol core's fragmentation is sized by.
#![deny(unsafe_code)]
#![warn(missing_docs)]

/// The smallest ATT MTU a BLE link may have (Core spec Vol 3 Part F §3.2.8).
pub const ATT_MTU_MIN: u16 = 23;
/// The largest ATT MTU (Core spec Vol 3 Part F §3.2.9).
pub const ATT_MTU_MAX: u16 = 517;
/// Bytes of ATT header in a Write Without Response / Handle Value Notification (opcode + handle).
pub const ATT_HEADER_LEN: u16 = 3;

/// The payload one GATT write or notification carries on a link with ATT MTU `att_mtu`, clamped to the valid range.
pub fn gatt_payload_len(att_mtu: u16) -> usize {
    usize::from(att_mtu.clamp(ATT_MTU_MIN, ATT_MTU_MAX) - ATT_HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_bounds() {
        assert_eq!(gatt_payload_len(23), 20);
        assert_eq!(gatt_payload_len(247), 244);
        assert_eq!(gatt_payload_len(517), 514);
        assert_eq!(gatt_payload_len(5), 20);
        assert_eq!(gatt_payload_len(9000), 514);
    }
}
