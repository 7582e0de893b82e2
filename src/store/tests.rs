//! Tests of the store as a whole: creation, unlock modes, the migration from `identity.key`, schema migrations,
//! damage of every kind, the lock, and the peers tree. Every test works in its own tempdir, with cheap Argon2id
//! parameters (except where the default ones are the point).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mesh::identity::{Identity, NodeId, PublicIdentity};
use mesh::session::PinStore;
use zeroize::Zeroizing;

use super::schema::{self, Migration, SchemaVersion, Write};
use super::value::{decode, encode};
use super::*;

fn pass(s: &str) -> Unlock {
    Unlock::Passphrase(Passphrase::new(Zeroizing::new(s.as_bytes().to_vec())).unwrap())
}

fn open(dir: &Path, unlock: Unlock) -> Result<Unlocked, StoreError> {
    SealedStore::open(dir)?.unlock_with(unlock, KdfParams::INSECURE_FOR_TESTS)
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    (tmp, dir)
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Every key and value of every tree, through sled (the logical content).
fn dump(dir: &Path) -> BTreeMap<(String, Vec<u8>), Vec<u8>> {
    let db = raw_db(dir);
    let mut out = BTreeMap::new();
    for name in db.tree_names() {
        let tree = db.open_tree(&name).unwrap();
        for kv in tree.iter() {
            let (k, v) = kv.unwrap();
            out.insert(
                (String::from_utf8_lossy(&name).to_string(), k.to_vec()),
                v.to_vec(),
            );
        }
    }
    out
}

/// sled opened on a closed store's database, through the store's opener: it waits out sled's own file lock,
/// which sled's IO threads may hold for a moment after this process dropped its last handle.
fn raw_db(dir: &Path) -> sled::Db {
    super::open_sled(&dir.join(DB_DIR)).unwrap()
}

/// Raw sled access to a closed store's database, for writing what an older or damaged store would hold.
fn with_raw_db<T>(dir: &Path, f: impl FnOnce(&sled::Db) -> T) -> T {
    let db = raw_db(dir);
    let out = f(&db);
    db.flush().unwrap();
    out
}

fn expect_corrupt(err: StoreError, dir: &Path, mentions: &str) {
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains(&dir.join(DB_DIR).display().to_string()),
        "{msg}"
    );
    assert!(msg.contains(mentions), "{msg}");
    assert!(
        msg.contains("backup") && msg.contains("NEW node"),
        "the way out: {msg}"
    );
}

#[test]
fn a_new_store_is_created_private_and_reopens_with_the_same_identity() {
    let (_tmp, dir) = data_dir();
    let first = open(&dir, pass("correct horse")).unwrap();
    assert_eq!(first.origin, Origin::Created);
    let id = first.identity.node_id();
    assert_eq!(first.store.node_id(), id);
    assert_eq!(
        first.store.protection(),
        Protection::Passphrase(KdfParams::INSECURE_FOR_TESTS)
    );
    assert!(first.store.created_at().unwrap() > 1_600_000_000);
    let sealed_by_first = first
        .store
        .storage_key()
        .seal(b"ad", b"session key")
        .unwrap();
    drop(first);

    // Files: directories 0700, files 0600, no creation marker left.
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(DB_DIR)), 0o700);
    assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
    for f in snapshot(&dir).keys() {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    assert!(!dir.join(CREATING_MARKER).exists());

    let sealed = SealedStore::open(&dir).unwrap();
    assert_eq!(
        sealed.state(),
        StoreState::Existing(id, Protection::Passphrase(KdfParams::INSECURE_FOR_TESTS))
    );
    let again = sealed.unlock(pass("correct horse")).unwrap();
    assert_eq!(again.origin, Origin::Opened);
    assert_eq!(again.identity.node_id(), id);
    // The storage key is the same after a restart: what it sealed before still opens.
    assert_eq!(
        &again
            .store
            .storage_key()
            .open(b"ad", &sealed_by_first)
            .unwrap()[..],
        b"session key"
    );
}

#[test]
fn a_wrong_passphrase_is_a_typed_error_that_changes_nothing() {
    let (_tmp, dir) = data_dir();
    let id = open(&dir, pass("right")).unwrap().identity.node_id();
    let files_before = file_names(&dir);
    let content_before = dump(&dir);
    let err = open(&dir, pass("wrong")).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::WrongPassphrase { .. }), "{msg}");
    assert!(
        msg.contains("wrong passphrase") && msg.contains("nothing was changed"),
        "{msg}"
    );
    // Every tree, key and value is as it was. (sled itself rewrites its own bookkeeping at every open and close
    // -- its snapshot file and the padding of its log -- whatever the passphrase; no other file appears.)
    assert!(
        dump(&dir) == content_before,
        "a wrong passphrase changed the content"
    );
    assert_eq!(file_names(&dir), files_before);
    assert_eq!(open(&dir, pass("right")).unwrap().identity.node_id(), id);
}

/// The files under `dir` other than sled's snapshots, by name.
fn file_names(dir: &Path) -> Vec<PathBuf> {
    snapshot(dir)
        .into_keys()
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snap."))
        })
        .collect()
}

#[test]
fn no_passphrase_mode_is_explicit_both_ways() {
    let (_tmp, dir) = data_dir();
    let first = open(&dir, Unlock::NoPassphrase).unwrap();
    assert_eq!(first.store.protection(), Protection::None);
    let id = first.identity.node_id();
    drop(first);
    let err = open(&dir, pass("x")).err().unwrap();
    assert!(matches!(err, StoreError::NotSealed { .. }), "{err}");
    assert!(err.to_string().contains("--no-passphrase"), "{err}");
    assert_eq!(
        open(&dir, Unlock::NoPassphrase).unwrap().identity.node_id(),
        id
    );

    let (_tmp2, sealed_dir) = data_dir();
    drop(open(&sealed_dir, pass("x")).unwrap());
    let err = open(&sealed_dir, Unlock::NoPassphrase).err().unwrap();
    assert!(matches!(err, StoreError::PassphraseNeeded { .. }), "{err}");
    assert!(err.to_string().contains("--passphrase-file"), "{err}");
}

/// The previous schema: a data directory with only the plaintext key file, as meshnode wrote it before the store.
fn write_legacy_key(dir: &Path, secrets: &[u8; 64]) -> NodeId {
    fs::create_dir_all(dir).unwrap();
    let path = dir.join(LEGACY_KEY_FILE);
    fs::write(&path, secrets).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let mut ed = [0u8; 32];
    let mut x = [0u8; 32];
    ed.copy_from_slice(&secrets[..32]);
    x.copy_from_slice(&secrets[32..]);
    Identity::from_secrets(ed, x).node_id()
}

#[test]
fn the_old_key_file_is_migrated_with_the_same_node_id_then_wiped() {
    for unlock in [pass("pw"), Unlock::NoPassphrase] {
        let (_tmp, dir) = data_dir();
        let want = write_legacy_key(&dir, &[0x42; 64]);
        let sealed = SealedStore::open(&dir).unwrap();
        assert_eq!(sealed.state(), StoreState::LegacyKeyFile(want));
        let again = match &unlock {
            Unlock::Passphrase(_) => pass("pw"),
            Unlock::NoPassphrase => Unlock::NoPassphrase,
        };
        let opened = sealed
            .unlock_with(unlock, KdfParams::INSECURE_FOR_TESTS)
            .unwrap();
        assert_eq!(opened.origin, Origin::Migrated);
        assert_eq!(opened.identity.node_id(), want);
        assert!(!dir.join(LEGACY_KEY_FILE).exists(), "plaintext key left");
        drop(opened);
        let reopened = open(&dir, again).unwrap();
        assert_eq!(reopened.origin, Origin::Opened);
        assert_eq!(reopened.identity.node_id(), want);
    }
}

#[test]
fn a_migration_interrupted_after_the_database_was_written_is_finished() {
    let (_tmp, dir) = data_dir();
    let want = write_legacy_key(&dir, &[0x42; 64]);
    drop(open(&dir, pass("pw")).unwrap());
    // As if the process died between flushing the database and wiping the file.
    write_legacy_key(&dir, &[0x42; 64]);
    let opened = open(&dir, pass("pw")).unwrap();
    assert_eq!(opened.identity.node_id(), want);
    assert!(!dir.join(LEGACY_KEY_FILE).exists());
}

#[test]
fn a_key_file_with_another_identity_beside_a_database_is_a_conflict() {
    let (_tmp, dir) = data_dir();
    let db_id = open(&dir, pass("pw")).unwrap().identity.node_id();
    let file_id = write_legacy_key(&dir, &[0x17; 64]);
    let err = SealedStore::open(&dir).err().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::IdentityConflict { .. }), "{msg}");
    assert!(
        msg.contains(&db_id.to_string()) && msg.contains(&file_id.to_string()),
        "{msg}"
    );
    assert!(dir.join(LEGACY_KEY_FILE).exists(), "nothing is removed");
}

#[test]
fn an_interrupted_creation_starts_over() {
    let (_tmp, dir) = data_dir();
    let want = write_legacy_key(&dir, &[0x42; 64]);
    // A creation that died half way: the marker and a database without records.
    fs::write(dir.join(CREATING_MARKER), b"").unwrap();
    drop(raw_db(&dir));
    let opened = open(&dir, pass("pw")).unwrap();
    assert_eq!(opened.origin, Origin::Migrated);
    assert_eq!(opened.identity.node_id(), want);
    assert!(!dir.join(CREATING_MARKER).exists());
}

#[test]
fn a_second_open_of_the_same_store_is_refused() {
    let (_tmp, dir) = data_dir();
    let first = open(&dir, Unlock::NoPassphrase).unwrap();
    let err = SealedStore::open(&dir).err().unwrap();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("already running"), "{err}");
    drop(first);
    open(&dir, Unlock::NoPassphrase).unwrap();
}

#[test]
fn garbage_in_the_database_directory_is_damage_not_a_fresh_start() {
    let (_tmp, dir) = data_dir();
    drop(open(&dir, Unlock::NoPassphrase).unwrap());
    let db = dir.join(DB_DIR);
    for entry in fs::read_dir(&db).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let len = fs::metadata(&p).unwrap().len() as usize;
            fs::write(&p, vec![0x5a; len.max(64)]).unwrap();
        }
    }
    let err = SealedStore::open(&dir).err().unwrap();
    expect_corrupt(err, &dir, "corrupted data");
}

#[test]
fn a_damaged_log_never_yields_another_identity() {
    // Cuts and bit flips across sled's log: each open either fails as damage or gives back the same identity.
    let (_tmp, dir) = data_dir();
    let id = open(&dir, Unlock::NoPassphrase).unwrap().identity.node_id();
    let db_dir = dir.join(DB_DIR);
    let pristine = snapshot(&db_dir);
    let log = db_dir.join("db");
    let used = pristine[&log].iter().rposition(|&b| b != 0).unwrap_or(0) + 1;
    for i in 0..24 {
        // Every case starts from the pristine files (sled may repair a log in place).
        fs::remove_dir_all(&db_dir).unwrap();
        fs::create_dir(&db_dir).unwrap();
        for (p, bytes) in &pristine {
            fs::write(p, bytes).unwrap();
        }
        let mut bytes = pristine[&log].clone();
        let at = used * i / 24;
        if i % 2 == 0 {
            bytes.truncate(at);
        } else {
            bytes[at] ^= 0x10;
        }
        fs::write(&log, &bytes).unwrap();
        match open(&dir, Unlock::NoPassphrase) {
            Ok(u) => {
                assert_eq!(
                    u.identity.node_id(),
                    id,
                    "damage at byte {at} changed the identity"
                );
            }
            Err(e) => expect_corrupt(e, &dir, ""),
        }
    }
}

#[test]
fn an_empty_database_is_damage_not_a_fresh_start() {
    let (_tmp, dir) = data_dir();
    fs::create_dir_all(&dir).unwrap();
    drop(raw_db(&dir));
    let err = SealedStore::open(&dir).err().unwrap();
    expect_corrupt(err, &dir, "missing");
}

#[test]
fn a_missing_tree_is_damage() {
    let (_tmp, dir) = data_dir();
    drop(open(&dir, Unlock::NoPassphrase).unwrap());
    with_raw_db(&dir, |db| assert!(db.drop_tree("seen").unwrap()));
    let err = SealedStore::open(&dir).err().unwrap();
    expect_corrupt(err, &dir, "seen");
}

#[test]
fn values_that_do_not_decode_are_damage_naming_tree_and_key() {
    let (_tmp, dir) = data_dir();
    drop(open(&dir, Unlock::NoPassphrase).unwrap());
    let good = with_raw_db(&dir, |db| {
        let t = db.open_tree("identity").unwrap();
        let good = t.get(b"keys").unwrap().unwrap();
        t.insert(b"keys", &[1u8, 0xff, 0xff][..]).unwrap();
        good
    });
    let err = SealedStore::open(&dir).err().unwrap();
    expect_corrupt(err, &dir, "tree `identity`, key `keys`");

    // An unknown record version.
    with_raw_db(&dir, |db| {
        let mut v = good.to_vec();
        v[0] = 99;
        db.open_tree("identity")
            .unwrap()
            .insert(b"keys", v)
            .unwrap();
    });
    let err = SealedStore::open(&dir).err().unwrap();
    expect_corrupt(err, &dir, "version 99");

    // The identity record gone.
    with_raw_db(&dir, |db| {
        db.open_tree("identity").unwrap().remove(b"keys").unwrap();
    });
    let err = SealedStore::open(&dir).err().unwrap();
    expect_corrupt(err, &dir, "no identity record");

    // Back to good; then a peer record that does not decode is damage when read.
    with_raw_db(&dir, |db| {
        db.open_tree("identity")
            .unwrap()
            .insert(b"keys", good.clone())
            .unwrap();
        db.open_tree("peers")
            .unwrap()
            .insert([1u8; 8], &[1u8, 0xff][..])
            .unwrap();
    });
    let opened = open(&dir, Unlock::NoPassphrase).unwrap();
    let err = opened.store.load_pins().unwrap_err();
    expect_corrupt(err, &dir, "tree `peers`, key 0x0101010101010101");
}

#[test]
fn a_sealed_blob_altered_on_disk_never_opens() {
    let (_tmp, dir) = data_dir();
    drop(open(&dir, Unlock::NoPassphrase).unwrap());
    with_raw_db(&dir, |db| {
        let t = db.open_tree("identity").unwrap();
        let mut v = t.get(b"keys").unwrap().unwrap().to_vec();
        let last = v.len() - 1;
        v[last] ^= 1;
        t.insert(b"keys", v).unwrap();
    });
    let err = open(&dir, Unlock::NoPassphrase).err().unwrap();
    expect_corrupt(err, &dir, "do not open");
}

#[test]
fn meta_and_identity_must_agree() {
    let (_tmp, dir) = data_dir();
    drop(open(&dir, Unlock::NoPassphrase).unwrap());
    with_raw_db(&dir, |db| {
        db.open_tree("meta")
            .unwrap()
            .insert(b"node_id", &[1u8, 9, 9, 9, 9, 9, 9, 9, 9][..])
            .unwrap();
    });
    let err = SealedStore::open(&dir).err().unwrap();
    expect_corrupt(err, &dir, "0909090909090909");
}

#[test]
fn a_database_from_a_newer_meshnode_is_refused_unchanged() {
    let (_tmp, dir) = data_dir();
    drop(open(&dir, Unlock::NoPassphrase).unwrap());
    let newer = encode(&SchemaVersion(CURRENT_SCHEMA + 1)).unwrap();
    with_raw_db(&dir, |db| {
        db.open_tree("meta")
            .unwrap()
            .insert(b"schema", &newer[..])
            .unwrap();
    });
    let err = SealedStore::open(&dir).err().unwrap();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("newer meshnode"), "{err}");
    let meta = dump(&dir);
    assert_eq!(
        meta.get(&("meta".to_string(), b"schema".to_vec())),
        Some(&newer.to_vec())
    );
}

#[test]
fn a_schema_1_database_written_by_hand_opens_as_the_current_schema() {
    // What schema 1 is, written record by record without the store's own creation code: its trees (no
    // `channels`, which schema 2 added), meta and the identity record.
    let (_tmp, dir) = data_dir();
    fs::create_dir_all(&dir).unwrap();
    let identity = Identity::from_secrets([3; 32], [4; 32]);
    let (record, _) = identity::IdentityRecord::seal(
        &legacy::Secrets(Zeroizing::new({
            let mut s = [3u8; 64];
            s[32..].fill(4);
            s
        })),
        &Unlock::NoPassphrase,
        KdfParams::DEFAULT,
    )
    .unwrap();
    with_raw_db(&dir, |db| {
        for t in TreeName::ALL.into_iter().filter(|t| t.since() == 1) {
            db.open_tree(t.name()).unwrap();
        }
        let meta = db.open_tree("meta").unwrap();
        meta.insert(b"schema", &encode(&SchemaVersion(1)).unwrap()[..])
            .unwrap();
        meta.insert(b"created_at", &[1u8, 0][..]).unwrap();
        meta.insert(
            b"node_id",
            &encode(&MetaNodeId(record.node_id)).unwrap()[..],
        )
        .unwrap();
        db.open_tree("identity")
            .unwrap()
            .insert(b"keys", &encode(&record).unwrap()[..])
            .unwrap();
    });
    let opened = open(&dir, Unlock::NoPassphrase).unwrap();
    assert_eq!(opened.identity.node_id(), identity.node_id());
    assert_eq!(opened.store.created_at().unwrap(), 0);
    // Migrated 1 -> 2: tree `channels` is there (empty, usable) and the version says so, on disk too.
    assert_eq!(CURRENT_SCHEMA, 2);
    assert!(opened.store.load_channels().is_empty());
    let key = mesh::channel::ChannelKey::from_bytes("general", [7; 32]).unwrap();
    opened.store.save_channel(&key, 16).unwrap();
    drop(opened);
    let after = dump(&dir);
    let version: SchemaVersion = decode(&after[&("meta".to_string(), b"schema".to_vec())]).unwrap();
    assert_eq!(version, SchemaVersion(2));
    assert!(after.contains_key(&("channels".to_string(), b"general".to_vec())));
    let opened = open(&dir, Unlock::NoPassphrase).unwrap();
    assert_eq!(opened.store.channel_names().unwrap(), ["#general"]);
}

#[test]
fn a_schema_2_database_without_its_channels_tree_is_damage() {
    let (_tmp, dir) = data_dir();
    drop(open(&dir, Unlock::NoPassphrase).unwrap());
    with_raw_db(&dir, |db| assert!(db.drop_tree("channels").unwrap()));
    let err = SealedStore::open(&dir).err().unwrap();
    expect_corrupt(err, &dir, "tree channels is missing");
}

/// A next schema of the tests' own, to exercise the migration mechanism: it moves `meta/created_at` to
/// `meta/born`.
fn step_to_next(trees: &Trees, _db: &Path) -> Result<Vec<Write>, StoreError> {
    let meta = trees.get(TreeName::Meta);
    let v = meta.get(b"created_at").unwrap().unwrap();
    Ok(vec![
        Write {
            tree: TreeName::Meta,
            key: b"born".to_vec(),
            value: Some(v.to_vec()),
        },
        Write {
            tree: TreeName::Meta,
            key: b"created_at".to_vec(),
            value: None,
        },
    ])
}

fn failing_step(_trees: &Trees, db: &Path) -> Result<Vec<Write>, StoreError> {
    Err(StoreError::Corrupt {
        path: db.to_path_buf(),
        detail: "cannot migrate".into(),
    })
}

#[test]
fn migrations_run_in_order_each_in_one_transaction_and_a_failure_changes_nothing() {
    const NEXT: u32 = CURRENT_SCHEMA + 1;
    let (_tmp, dir) = data_dir();
    drop(open(&dir, Unlock::NoPassphrase).unwrap());
    let db_path = dir.join(DB_DIR);
    let created = dump(&dir)[&("meta".to_string(), b"created_at".to_vec())].clone();

    // A failing step: version and data stay as they were.
    let before = dump(&dir);
    with_raw_db(&dir, |db| {
        let trees = Trees::open(db, &db_path).unwrap();
        let steps = [Migration {
            from: CURRENT_SCHEMA,
            what: "fails",
            step: failing_step,
        }];
        let err = schema::migrate(&trees, &db_path, &steps, NEXT).unwrap_err();
        assert!(err.to_string().contains("cannot migrate"), "{err}");
    });
    assert_eq!(dump(&dir), before);

    // No step for a version: damage, nothing changed.
    with_raw_db(&dir, |db| {
        let trees = Trees::open(db, &db_path).unwrap();
        let err = schema::migrate(&trees, &db_path, &[], NEXT).unwrap_err();
        assert!(err.to_string().contains("no migration"), "{err}");
    });
    assert_eq!(dump(&dir), before);

    // The real step: data moved and version bumped together.
    with_raw_db(&dir, |db| {
        let trees = Trees::open(db, &db_path).unwrap();
        let steps = [Migration {
            from: CURRENT_SCHEMA,
            what: "rename created_at to born",
            step: step_to_next,
        }];
        assert_eq!(
            schema::migrate(&trees, &db_path, &steps, NEXT).unwrap(),
            CURRENT_SCHEMA
        );
        assert_eq!(schema::read_version(&trees, &db_path).unwrap(), NEXT);
        // Idempotent: at the target, nothing runs.
        assert_eq!(
            schema::migrate(&trees, &db_path, &steps, NEXT).unwrap(),
            NEXT
        );
    });
    let after = dump(&dir);
    assert_eq!(after[&("meta".to_string(), b"born".to_vec())], created);
    assert!(!after.contains_key(&("meta".to_string(), b"created_at".to_vec())));
    let version: SchemaVersion = decode(&after[&("meta".to_string(), b"schema".to_vec())]).unwrap();
    assert_eq!(version, SchemaVersion(NEXT));

    // Schema 0 and a missing version are damage.
    for bad in [Some(encode(&SchemaVersion(0)).unwrap().to_vec()), None] {
        with_raw_db(&dir, |db| {
            let meta = db.open_tree("meta").unwrap();
            match &bad {
                Some(v) => meta.insert(b"schema", v.clone()).unwrap(),
                None => meta.remove(b"schema").unwrap(),
            };
            let trees = Trees::open(db, &db_path).unwrap();
            let err = schema::migrate(&trees, &db_path, &[], NEXT).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        });
    }
}

fn keys_of(seed: u8) -> PublicIdentity {
    *Identity::from_secrets([seed; 32], [seed; 32]).public()
}

#[test]
fn pins_and_sightings_persist_and_feed_the_pin_store() {
    let (_tmp, dir) = data_dir();
    let opened = open(&dir, Unlock::NoPassphrase).unwrap();
    let store = &opened.store;
    let a = keys_of(1);
    let b = keys_of(2);
    store.record_peer_seen(a.node_id(), "alice", 100).unwrap();
    store.record_peer_seen(a.node_id(), "alice2", 200).unwrap();
    store.record_peer_seen(a.node_id(), "late", 150).unwrap();
    store.save_pin(a.node_id(), &a, false, 210).unwrap();
    store.save_pin(b.node_id(), &b, true, 300).unwrap();
    store
        .record_peer_seen(keys_of(3).node_id(), &"n".repeat(50), 400)
        .unwrap();
    // Keys that do not own the id are refused.
    let err = store.save_pin(a.node_id(), &b, false, 1).unwrap_err();
    assert!(matches!(err, StoreError::PinMismatch { .. }), "{err}");
    drop(opened);

    let opened = open(&dir, Unlock::NoPassphrase).unwrap();
    let store = &opened.store;
    let ra = store.peer(a.node_id()).unwrap().unwrap();
    assert_eq!(ra.nickname, "late");
    assert_eq!((ra.first_seen, ra.last_seen), (100, 200));
    assert_eq!(
        ra.pin,
        Some(Pin {
            ed25519: a.ed25519,
            x25519: a.x25519,
            trusted_by_user: false,
            pinned_at: 210
        })
    );
    let rb = store.peer(b.node_id()).unwrap().unwrap();
    assert!(rb.pin.unwrap().trusted_by_user);
    assert_eq!((rb.first_seen, rb.last_seen), (300, 300));
    assert_eq!(
        store
            .peer(keys_of(3).node_id())
            .unwrap()
            .unwrap()
            .nickname
            .len(),
        peers::MAX_NICKNAME
    );

    let pins = store.load_pins().unwrap();
    assert_eq!(pins.len(), 2);
    let mut pin_store = PinStore::new(8);
    for (id, keys) in pins {
        assert!(pin_store.import(id, keys));
    }
    assert_eq!(pin_store.get(&a.node_id()), Some(&a));
    assert_eq!(pin_store.get(&b.node_id()), Some(&b));

    store.remove_pin(a.node_id(), 500).unwrap();
    assert_eq!(store.load_pins().unwrap().len(), 1);
    assert_eq!(store.peer(a.node_id()).unwrap().unwrap().nickname, "late");
}

#[test]
fn the_peers_tree_is_bounded_and_never_evicts_a_pin() {
    let (_tmp, dir) = data_dir();
    let opened = open(&dir, Unlock::NoPassphrase).unwrap();
    let store = &opened.store;
    store.set_max_peer_records(3);
    let id = |seed| keys_of(seed).node_id();
    store.record_peer_seen(id(1), "a", 10).unwrap();
    store.save_pin(id(1), &keys_of(1), false, 10).unwrap();
    store.record_peer_seen(id(2), "b", 20).unwrap();
    store.record_peer_seen(id(3), "c", 30).unwrap();
    // Full: the unpinned record heard of longest ago (b) goes, not the older pinned one (a).
    store.record_peer_seen(id(4), "d", 40).unwrap();
    assert!(store.peer(id(1)).unwrap().is_some());
    assert!(store.peer(id(2)).unwrap().is_none());
    // Updating a known peer needs no room.
    store.record_peer_seen(id(3), "c2", 50).unwrap();
    // Every record pinned: a new sighting is refused, a new pin is still kept.
    store.save_pin(id(3), &keys_of(3), false, 60).unwrap();
    store.save_pin(id(4), &keys_of(4), false, 60).unwrap();
    store.record_peer_seen(id(5), "e", 70).unwrap();
    assert!(store.peer(id(5)).unwrap().is_none());
    store.save_pin(id(6), &keys_of(6), true, 80).unwrap();
    assert_eq!(
        store.peer_stats(),
        PeerStats {
            records: 4,
            limit: 3,
            evicted: 1,
            refused: 1
        }
    );
    drop(opened);
    // The count survives a restart.
    let opened = open(&dir, Unlock::NoPassphrase).unwrap();
    assert_eq!(opened.store.peer_stats().records, 4);
    assert_eq!(opened.store.load_pins().unwrap().len(), 4);
}

#[test]
fn a_pin_stored_under_another_id_is_damage() {
    let (_tmp, dir) = data_dir();
    let a = keys_of(1);
    {
        let opened = open(&dir, Unlock::NoPassphrase).unwrap();
        opened.store.save_pin(a.node_id(), &a, false, 1).unwrap();
    }
    with_raw_db(&dir, |db| {
        let peers = db.open_tree("peers").unwrap();
        let v = peers.get(a.node_id().0).unwrap().unwrap();
        peers.insert([9u8; 8], v).unwrap();
    });
    let opened = open(&dir, Unlock::NoPassphrase).unwrap();
    let err = opened.store.load_pins().unwrap_err();
    expect_corrupt(err, &dir, "belong to node");
}
