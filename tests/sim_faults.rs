//! Faults in virtual time: a partition that heals (messages wait and arrive after), a node crashing and coming
//! back with fresh state (messages to and from it delivered after it returns), and duplicated and reordered
//! packets (injected by the runtime, since the medium keeps order and never duplicates) that still give
//! exactly-once delivery. Every failure names the seed to replay.

mod sim_util;

use hal::sim::SimInstant;
use meshnode::simnet::NetEventKind;
use sim_util::{grid, line, Run};

#[test]
fn partition_holds_messages_until_it_heals() {
    for seed in [11, 12] {
        let mut run = Run::new(line(5, 0.0), seed, |_| {});
        run.run_to(6.0);
        // 1–2 is cut from 8 s to 20 s: {0, 1} and {2, 3, 4} cannot reach each other.
        run.net
            .partition(SimInstant::from_secs(8), SimInstant::from_secs(20), 1, 2)
            .expect("partition");
        run.send(0, 4, "before");
        run.run_to(9.0);
        run.send(0, 4, "during");
        run.send(4, 0, "during back");
        run.run_to(19.5);
        run.assert_once("before", [4]);
        assert_eq!(
            run.received("during", 4),
            0,
            "seed {seed}: crossed a partition"
        );
        assert_eq!(
            run.received("during back", 0),
            0,
            "seed {seed}: crossed a partition"
        );
        assert!(
            !run.net.links_of(1).contains(&2),
            "seed {seed}: the partitioned link is up"
        );
        run.run_to(60.0);
        run.assert_once("during", [4]);
        run.assert_once("during back", [0]);
        let healed = run.received_at("during", 4).expect("delivered");
        assert!(
            healed >= SimInstant::from_secs(20),
            "seed {seed}: delivered at {healed:?}, before the heal"
        );
    }
}

#[test]
fn crashed_node_gets_and_sends_messages_after_it_restarts() {
    for seed in [21, 22] {
        let mut run = Run::new(line(5, 0.0), seed, |_| {});
        run.run_to(6.0);
        run.send(0, 4, "hello 4");
        run.run_to(8.0);
        run.assert_once("hello 4", [4]);
        run.net
            .schedule_crash(SimInstant::from_secs(9), 4)
            .expect("crash");
        run.net
            .schedule_restart(SimInstant::from_secs(16), 4)
            .expect("restart");
        run.run_to(10.0);
        assert!(run.net.node(4).is_none(), "seed {seed}: node 4 still runs");
        // Node 0 still holds a session with the old node 4; the new one has none.
        run.send(0, 4, "while you were down");
        run.run_to(15.0);
        assert_eq!(
            run.received("while you were down", 4),
            0,
            "seed {seed}: delivered to a crashed node"
        );
        run.run_to(18.0);
        assert!(
            run.net.node(4).is_some(),
            "seed {seed}: node 4 did not restart"
        );
        run.send(4, 0, "I am back");
        run.run_to(70.0);
        run.assert_once("while you were down", [4]);
        run.assert_once("I am back", [0]);
        let crashes = run
            .log
            .iter()
            .filter(|e| e.node == 4 && matches!(e.kind, NetEventKind::Crashed))
            .count();
        assert_eq!(crashes, 1, "seed {seed}");
    }
}

#[test]
fn middle_node_crash_reroutes_in_a_grid() {
    let seed = 23;
    let mut run = Run::new(grid(3, 3, 0.0), seed, |_| {});
    run.run_to(6.0);
    // The centre (4) dies for good: 0 → 8 must go around it.
    run.net
        .schedule_crash(SimInstant::from_secs(7), 4)
        .expect("crash");
    run.run_to(8.0);
    run.send(0, 8, "around the hole");
    run.broadcast(2, "still flooding");
    run.run_to(40.0);
    run.assert_once("around the hole", [8]);
    run.assert_once("still flooding", [0, 1, 3, 5, 6, 7, 8]);
}

#[test]
fn duplicated_and_reordered_packets_still_deliver_exactly_once() {
    for seed in [31, 32] {
        let mut run = Run::new(line(6, 0.0), seed, |c| {
            c.duplicate = 0.2;
            c.reorder = 0.2;
        });
        run.run_to(8.0);
        for k in 0..6 {
            run.send(0, 5, &format!("dup {k}"));
            run.send(5, 0, &format!("pud {k}"));
            run.run_to(8.5 + f64::from(k));
        }
        run.broadcast(2, "broadcast once");
        run.run_to(60.0);
        let stats = run.net.stats();
        assert!(
            stats.duplicated > 50 && stats.reordered > 50,
            "seed {seed}: faults not exercised: {stats:?}"
        );
        for k in 0..6 {
            run.assert_once(&format!("dup {k}"), [5]);
            run.assert_once(&format!("pud {k}"), [0]);
        }
        run.assert_once("broadcast once", [0, 1, 3, 4, 5]);
    }
}
