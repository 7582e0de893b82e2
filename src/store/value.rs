//! The one encoding of every value the store writes: a version byte, then the value in postcard.
//!
//! Each stored type implements [`Record`] (its version byte and a name for messages); [`encode`] and [`decode`] are
//! the only way values enter or leave the database, so every tree shares the same checks.
//!
//! Invariant: [`decode`] never panics and never returns a value for bytes that are not exactly one encoding of the
//! expected version (an empty value, an unknown version byte, a malformed body and trailing bytes are all
//! [`ValueError`]s). A record that changes shape gets a new version byte; [`Record::decode_older`] reads the old
//! ones so that a schema migration (see `schema.rs`) can rewrite them.

use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::Zeroizing;

/// A type stored in the database.
pub trait Record: Serialize + DeserializeOwned {
    /// The version byte written in front of the postcard body.
    const VERSION: u8;
    /// What the value is, for error messages (e.g. "identity record").
    const WHAT: &'static str;

    /// Reads a body written with an older version byte. The default knows none; a type whose shape changed
    /// overrides it to read its previous versions. `None`: this version is unknown.
    fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, ValueError>> {
        let _ = (version, body);
        None
    }
}

/// Why stored bytes are not a value of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// Zero bytes: not even a version byte.
    #[error("the {what} is empty")]
    Empty {
        /// The expected type.
        what: &'static str,
    },
    /// A version byte this build does not know (written by a newer meshnode, or garbage).
    #[error("the {what} has version {found}, this meshnode reads version {known}")]
    UnknownVersion {
        /// The expected type.
        what: &'static str,
        /// The byte found.
        found: u8,
        /// The newest version this build reads.
        known: u8,
    },
    /// The body does not decode.
    #[error("the {what} (version {version}) does not decode: {reason}")]
    Malformed {
        /// The expected type.
        what: &'static str,
        /// Its version byte.
        version: u8,
        /// The decoder's reason.
        reason: String,
    },
    /// A valid value followed by more bytes.
    #[error("the {what} (version {version}) has {extra} bytes after its end")]
    TrailingBytes {
        /// The expected type.
        what: &'static str,
        /// Its version byte.
        version: u8,
        /// How many.
        extra: usize,
    },
    /// The value could not be encoded (a bug: every stored type is plain data).
    #[error("cannot encode the {what}: {reason}")]
    Encode {
        /// The type.
        what: &'static str,
        /// The encoder's reason.
        reason: String,
    },
}

/// `T::VERSION` followed by `value` in postcard. The buffer is wiped when dropped, since some records hold
/// secrets (the key of a store without a passphrase).
pub fn encode<T: Record>(value: &T) -> Result<Zeroizing<Vec<u8>>, ValueError> {
    let mut out = Zeroizing::new(vec![T::VERSION]);
    let body = Zeroizing::new(
        postcard::to_allocvec(value).map_err(|e| ValueError::Encode {
            what: T::WHAT,
            reason: e.to_string(),
        })?,
    );
    out.extend_from_slice(&body);
    Ok(out)
}

/// The value in `bytes`, written by [`encode`] with `T::VERSION` or (through [`Record::decode_older`]) an older
/// version.
pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, ValueError> {
    let (&version, body) = bytes
        .split_first()
        .ok_or(ValueError::Empty { what: T::WHAT })?;
    if version == T::VERSION {
        return decode_body::<T, T>(version, body);
    }
    T::decode_older(version, body).unwrap_or(Err(ValueError::UnknownVersion {
        what: T::WHAT,
        found: version,
        known: T::VERSION,
    }))
}

/// Decodes exactly one postcard value of type `B` from `body` (for [`Record::decode_older`] implementations too).
pub fn decode_body<B: DeserializeOwned, T: Record>(
    version: u8,
    body: &[u8],
) -> Result<B, ValueError> {
    let (value, rest) =
        postcard::take_from_bytes::<B>(body).map_err(|e| ValueError::Malformed {
            what: T::WHAT,
            version,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(ValueError::TrailingBytes {
            what: T::WHAT,
            version,
            extra: rest.len(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        a: u32,
        name: String,
    }

    impl Record for Thing {
        const VERSION: u8 = 2;
        const WHAT: &'static str = "thing";

        fn decode_older(version: u8, body: &[u8]) -> Option<Result<Self, ValueError>> {
            // Version 1 had only `a`.
            (version == 1).then(|| {
                decode_body::<u32, Thing>(version, body).map(|a| Thing {
                    a,
                    name: String::new(),
                })
            })
        }
    }

    #[test]
    fn round_trip_with_version_byte() {
        let t = Thing {
            a: 300,
            name: "x".into(),
        };
        let bytes = encode(&t).unwrap();
        assert_eq!(bytes[0], 2);
        assert_eq!(&bytes[1..], &[0xac, 0x02, 1, b'x']);
        assert_eq!(decode::<Thing>(&bytes).unwrap(), t);
    }

    #[test]
    fn older_versions_are_read_through_the_type() {
        let old = [1u8, 7];
        assert_eq!(
            decode::<Thing>(&old).unwrap(),
            Thing {
                a: 7,
                name: String::new()
            }
        );
    }

    #[test]
    fn bad_bytes_are_typed_errors() {
        assert_eq!(
            decode::<Thing>(&[]),
            Err(ValueError::Empty { what: "thing" })
        );
        assert_eq!(
            decode::<Thing>(&[9, 1, 2]),
            Err(ValueError::UnknownVersion {
                what: "thing",
                found: 9,
                known: 2
            })
        );
        assert!(matches!(
            decode::<Thing>(&[2, 0xff]),
            Err(ValueError::Malformed { version: 2, .. })
        ));
        assert_eq!(
            decode::<Thing>(&[2, 1, 0, 0xaa]),
            Err(ValueError::TrailingBytes {
                what: "thing",
                version: 2,
                extra: 1
            })
        );
        let msg = decode::<Thing>(&[9]).unwrap_err().to_string();
        assert!(msg.contains("thing") && msg.contains('9'), "{msg}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = decode::<Thing>(&bytes);
        }
    }
}
