//! A node announcing someone else's identity is refused: forged ANNOUNCE frames (built with the wire helpers and
//! injected on a real link) neither rename the victim, nor replace its keys, nor travel further, and private
//! messages still reach the real victim. Every failure names the seed to replay.

mod sim_util;

use mesh::identity::Identity;
use mesh::wire::body::{CAP_RELAY, CAP_SESSIONS};
use mesh::wire::{self, Announce, Body};
use sim_util::{line, Run};

const MALLORY: usize = 0;
const TARGET: usize = 1;
const VICTIM: usize = 3;

/// An announce claiming `victim`'s node id. `with_victim_keys`: the victim's public keys too (the signature,
/// made with mallory's key, cannot verify); otherwise mallory's own keys (the id does not match them). Each forgery
/// needs its own `frame_id`, or the duplicate cache drops it before it is checked.
fn forged_announce(
    mallory: &Identity,
    victim: &Identity,
    with_victim_keys: bool,
    frame_id: u32,
) -> Vec<u8> {
    let genuine = Announce::sign_frame(mallory, frame_id, 7, CAP_RELAY | CAP_SESSIONS, "impostor")
        .expect("announce");
    let (mut header, body) = wire::decode(&genuine).expect("decode");
    let Body::Announce(mut a) = body else {
        panic!("not an announce")
    };
    header.src = victim.node_id();
    if with_victim_keys {
        a.public = *victim.public();
    }
    let mut buf = vec![0u8; a.buffer_len()];
    a.emit(&mut buf);
    wire::encode(&header, &buf).expect("encode")
}

fn victim_nickname(run: &Run, at: usize) -> Option<String> {
    let id = run.net.node_id(VICTIM);
    run.net
        .node(at)?
        .peers()
        .into_iter()
        .find(|p| p.id == id)
        .map(|p| p.nickname)
}

fn refused_count(run: &Run, at: usize) -> u64 {
    let s = run.net.node(at).expect("running").stats();
    s.drop_bad_signature + s.drop_wire
}

#[test]
fn forged_announces_are_refused_after_the_victim_is_known() {
    for seed in [41, 42] {
        let mut run = Run::new(line(5, 0.0), seed, |_| {});
        run.run_to(8.0);
        assert_eq!(
            victim_nickname(&run, TARGET).as_deref(),
            Some("node-3"),
            "seed {seed}: victim not known after warm-up"
        );
        let mallory = run.net.identity(MALLORY).clone();
        let victim = run.net.identity(VICTIM).clone();
        for with_keys in [true, false] {
            let before = refused_count(&run, TARGET);
            let frame = forged_announce(
                &mallory,
                &victim,
                with_keys,
                0x0bad_f000 + u32::from(with_keys),
            );
            assert!(
                run.net.inject_frame(TARGET, MALLORY, &frame),
                "seed {seed}: no link"
            );
            run.run_to(run.net.now().as_micros() as f64 / 1e6 + 1.0);
            assert!(
                refused_count(&run, TARGET) > before,
                "seed {seed}: forged announce (victim keys: {with_keys}) not counted as refused"
            );
            assert_eq!(
                victim_nickname(&run, TARGET).as_deref(),
                Some("node-3"),
                "seed {seed}: forged announce renamed the victim"
            );
        }
        // Nobody anywhere took the impostor's name, and the real victim still gets its mail.
        let impostor_seen = run
            .log
            .iter()
            .any(|e| format!("{:?}", e.kind).contains("impostor"));
        assert!(
            !impostor_seen,
            "seed {seed}: an event mentions the impostor"
        );
        for n in 0..5 {
            if n != VICTIM {
                assert_eq!(
                    victim_nickname(&run, n).as_deref(),
                    Some("node-3"),
                    "seed {seed}: node {n}"
                );
            }
        }
        run.send(TARGET, VICTIM, "for the real victim");
        run.send(MALLORY, VICTIM, "also for the real victim");
        run.run_to(30.0);
        run.assert_once("for the real victim", [VICTIM]);
        run.assert_once("also for the real victim", [VICTIM]);
    }
}

#[test]
fn forged_announce_before_the_genuine_one_does_not_take_the_identity() {
    let seed = 43;
    let mut run = Run::new(line(5, 0.0), seed, |_| {});
    // As soon as mallory's link to the target is up, before announces have crossed the line.
    while !run.net.links_of(TARGET).contains(&MALLORY) {
        let t = run.net.now().as_micros() as f64 / 1e6 + 0.01;
        run.run_to(t);
    }
    assert_eq!(
        victim_nickname(&run, TARGET),
        None,
        "seed {seed}: victim known too early"
    );
    let mallory = run.net.identity(MALLORY).clone();
    let victim = run.net.identity(VICTIM).clone();
    let frame = forged_announce(&mallory, &victim, true, 0x0bad_f00d);
    assert!(
        run.net.inject_frame(TARGET, MALLORY, &frame),
        "seed {seed}: no link to inject on"
    );
    run.run_to(run.net.now().as_micros() as f64 / 1e6 + 0.05);
    assert_eq!(
        victim_nickname(&run, TARGET),
        None,
        "seed {seed}: forged announce accepted"
    );
    run.run_to(15.0);
    assert_eq!(
        victim_nickname(&run, TARGET).as_deref(),
        Some("node-3"),
        "seed {seed}: the genuine announce was not accepted after the forgery"
    );
    run.send(TARGET, VICTIM, "hello real node 3");
    run.run_to(40.0);
    run.assert_once("hello real node 3", [VICTIM]);
}
