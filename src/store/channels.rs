//! Tree `channels`: the password channels this node has joined, so that a restart (even after `kill -9`) rejoins
//! them without the password and without deriving their keys again. Key: the channel name (UTF-8, as
//! `mesh::channel::validate_channel_name` accepts). Value: [`SealedChannel`] version 1, the channel key (32 bytes,
//! derived with Argon2id from name and password) sealed with the storage key ([`super::StorageKey::seal`]),
//! associated data `associated_data("channel", &[b"channels", name, &[1]])`. The password is never stored.
//!
//! Invariant: a record is flushed before [`Store::save_channel`] or [`Store::remove_channel`] returns, so a join
//! answered is a join a crash does not forget, and a leave answered is not undone by a restart. The tree holds at
//! most as many records as the caller's bound (the node's `max_channels`, [`MAX_STORED_CHANNELS`] by default); a
//! new one beyond it is refused ([`StoreError::TooManyChannels`]), never evicts another. A record that cannot be
//! read back is a [`StoreError::DamagedChannel`] naming it, never a key for another channel: the name is bound into
//! the seal.

use mesh::channel::{ChannelKey, CHANNEL_KEY_LEN};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::show_key;
use super::value::{decode, encode, Record};
use super::{associated_data, Store, StoreError, TreeName};

/// Channels kept at most by default: `mesh`'s default `NodeConfig::max_channels`.
pub const MAX_STORED_CHANNELS: usize = 16;

/// Tree `channels`, version 1.
#[derive(Serialize, Deserialize)]
pub struct SealedChannel {
    /// `nonce24 ‖ ciphertext ‖ tag` of the 32 key bytes.
    pub sealed: Vec<u8>,
}

impl Record for SealedChannel {
    const VERSION: u8 = 1;
    const WHAT: &'static str = "stored channel";
}

fn channel_ad(name: &[u8]) -> Vec<u8> {
    associated_data("channel", &[b"channels", name, &[SealedChannel::VERSION]])
}

impl Store {
    /// Stores the key of the joined channel `key.name()` (replacing a previous one of that name) and flushes.
    /// Refused with [`StoreError::TooManyChannels`] when `limit` other channels are stored.
    pub fn save_channel(&self, key: &ChannelKey, limit: usize) -> Result<(), StoreError> {
        let tree = self.tree(TreeName::Channels);
        let name = key.name().as_bytes();
        let known = tree.contains_key(name).map_err(|e| self.db_error(e))?;
        if !known && tree.len() >= limit {
            return Err(StoreError::TooManyChannels { limit });
        }
        let sealed = self.storage_key().seal(&channel_ad(name), key.as_bytes())?;
        let value = encode(&SealedChannel { sealed }).map_err(|e| StoreError::Corrupt {
            path: self.db_path().to_path_buf(),
            detail: format!("cannot encode a record: {e}"),
        })?;
        tree.insert(name, value.as_slice())
            .map_err(|e| self.db_error(e))?;
        self.flush()
    }

    /// Removes the stored channel `name` and flushes; returns whether it was stored.
    pub fn remove_channel(&self, name: &str) -> Result<bool, StoreError> {
        let old = self
            .tree(TreeName::Channels)
            .remove(name.as_bytes())
            .map_err(|e| self.db_error(e))?;
        self.flush()?;
        Ok(old.is_some())
    }

    /// Every stored channel in name order, each its key or why it cannot be read (one damaged record does not
    /// hide the others). A failure to read the tree at all is one error.
    pub fn load_channels(&self) -> Vec<Result<ChannelKey, StoreError>> {
        self.tree(TreeName::Channels)
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.db_error(e))?;
                self.open_channel(&k, &v)
            })
            .collect()
    }

    /// The names of the stored channels, in order (records whose key is not text included, in hex).
    pub fn channel_names(&self) -> Result<Vec<String>, StoreError> {
        self.tree(TreeName::Channels)
            .iter()
            .keys()
            .map(|k| k.map(|k| show_name(&k)).map_err(|e| self.db_error(e)))
            .collect()
    }

    fn open_channel(&self, k: &[u8], v: &[u8]) -> Result<ChannelKey, StoreError> {
        let damaged = |detail: String| StoreError::DamagedChannel {
            path: self.db_path().to_path_buf(),
            channel: show_name(k),
            detail,
        };
        let name = std::str::from_utf8(k).map_err(|_| damaged("its name is not UTF-8".into()))?;
        let record: SealedChannel = decode(v).map_err(|e| damaged(e.to_string()))?;
        let bytes: Zeroizing<Vec<u8>> = self
            .storage_key()
            .open(&channel_ad(k), &record.sealed)
            .map_err(|e| damaged(e.to_string()))?;
        let key: Zeroizing<[u8; CHANNEL_KEY_LEN]> = Zeroizing::new(
            bytes[..]
                .try_into()
                .map_err(|_| damaged(format!("its key is {} bytes, not 32", bytes.len())))?,
        );
        ChannelKey::from_bytes(name, *key).map_err(|e| damaged(e.to_string()))
    }
}

/// A channel name for messages: `#name` when it is text, hex otherwise.
fn show_name(k: &[u8]) -> String {
    match std::str::from_utf8(k) {
        Ok(name) if !name.is_empty() => format!("#{name}"),
        _ => show_key(k),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &std::path::Path) -> Store {
        crate::store::open_for_tests(dir)
    }

    fn key(name: &str, byte: u8) -> ChannelKey {
        ChannelKey::from_bytes(name, [byte; 32]).unwrap()
    }

    fn loaded(store: &Store) -> Vec<(String, [u8; 32])> {
        store
            .load_channels()
            .into_iter()
            .map(|k| {
                let k = k.unwrap();
                (k.name().to_string(), *k.as_bytes())
            })
            .collect()
    }

    fn files(dir: &std::path::Path) -> Vec<u8> {
        let mut all = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    all.extend(std::fs::read(p).unwrap());
                }
            }
        }
        all
    }

    #[test]
    fn channels_round_trip_sealed_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            store.save_channel(&key("general", 0x5a), 16).unwrap();
            store.save_channel(&key("café ☕", 0x6b), 16).unwrap();
            store.save_channel(&key("old", 0x7c), 16).unwrap();
            // Joining again replaces the key.
            store.save_channel(&key("general", 0x5b), 16).unwrap();
            assert!(store.remove_channel("old").unwrap());
            assert!(!store.remove_channel("never").unwrap());
            // The sealed value is not the key in clear, and no key is anywhere in the files.
            let v = store
                .tree(TreeName::Channels)
                .get(b"general")
                .unwrap()
                .unwrap();
            assert!(!v.windows(32).any(|w| w == [0x5b; 32]));
        }
        let all = files(dir.path());
        for b in [0x5a, 0x5b, 0x6b] {
            assert!(!all.windows(32).any(|w| w == [b; 32]), "{b:#x} in clear");
        }
        let store = open(dir.path());
        assert_eq!(
            loaded(&store),
            [
                ("café ☕".to_string(), [0x6b; 32]),
                ("general".to_string(), [0x5b; 32])
            ]
        );
        assert_eq!(store.channel_names().unwrap(), ["#café ☕", "#general"]);
    }

    #[test]
    fn the_tree_is_bounded_and_replacing_fits() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for i in 0..3 {
            store.save_channel(&key(&format!("c{i}"), i), 3).unwrap();
        }
        let e = store.save_channel(&key("c3", 3), 3).unwrap_err();
        assert!(matches!(e, StoreError::TooManyChannels { limit: 3 }), "{e}");
        assert!(e.to_string().contains("meshnode ctl leave"), "{e}");
        store.save_channel(&key("c1", 9), 3).unwrap();
        assert!(store.remove_channel("c0").unwrap());
        store.save_channel(&key("c3", 3), 3).unwrap();
        assert_eq!(store.channel_names().unwrap(), ["#c1", "#c2", "#c3"]);
    }

    #[test]
    fn a_damaged_channel_is_a_typed_error_naming_it_and_hides_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.save_channel(&key("good", 1), 16).unwrap();
        store.save_channel(&key("bad", 2), 16).unwrap();
        let tree = store.tree(TreeName::Channels);
        let good = tree.get(b"good").unwrap().unwrap();
        let mut v = tree.get(b"bad").unwrap().unwrap().to_vec();
        let last = v.len() - 1;
        v[last] ^= 1;
        tree.insert(b"bad", v).unwrap();
        // A sealed key moved under another name does not open either: the name is bound into the seal.
        tree.insert(b"moved", good).unwrap();
        tree.insert(b"garbage", &[1u8, 0xff][..]).unwrap();
        tree.insert(&[0xffu8, 0xfe][..], &[1u8][..]).unwrap();
        let results = store.load_channels();
        assert_eq!(results.len(), 5);
        let mut names = Vec::new();
        for r in results {
            match r {
                Ok(k) => names.push(k.name().to_string()),
                Err(e) => {
                    let msg = e.to_string();
                    let StoreError::DamagedChannel { channel, .. } = &e else {
                        panic!("not a damaged channel: {msg}");
                    };
                    assert!(
                        msg.contains("meshnode ctl join") && msg.contains(channel.as_str()),
                        "{msg}"
                    );
                    names.push(format!("damaged {channel}"));
                }
            }
        }
        assert_eq!(
            names,
            [
                "damaged #bad",
                "damaged #garbage",
                "good",
                "damaged #moved",
                "damaged 0xfffe"
            ]
        );
        // Leaving removes a damaged record too; joining again replaces it.
        assert!(store.remove_channel("garbage").unwrap());
        store.save_channel(&key("bad", 2), 16).unwrap();
        assert!(store.load_channels()[0].is_ok());
    }
}
