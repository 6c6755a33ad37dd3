//! A bot's status change told in bounded steps from the alarm: its conversations ten at a time,
//! then the people in them fifty at a time, each once; a newer status starts over.

use super::*;
use crate::bot_fanout::{FanoutStep, FANOUT_CONVERSATIONS, FANOUT_PEOPLE};

fn conv(i: usize) -> String {
    format!("01ARZ3NDEKTSV4RRFFQ69G{i:04}")
}

/// Runs the fan-out to its end: every step's conversations "have" the people `people_of` names.
/// Answers the steps in order.
fn run(sim: &Sim, people_of: impl Fn(&str) -> Vec<String>) -> Vec<FanoutStep> {
    let mut steps = Vec::new();
    while let Some(step) = sim.m.bot_fanout_next().unwrap() {
        let (r, e) = match &step {
            FanoutStep::Conversations { at, ids, .. } => {
                let people: Vec<String> = ids.iter().flat_map(|c| people_of(c)).collect();
                sim.m.bot_fanout_read(*at, ids, &people, sim.now)
            }
            FanoutStep::People { at, ids, .. } => sim.m.bot_fanout_told(*at, ids, sim.now),
        };
        r.unwrap();
        steps.push(step);
        assert!(steps.len() < 1_000, "the fan-out ends");
        if sim.m.bot_fanout_next().unwrap().is_some() {
            assert_eq!(e.alarm_at, Some(sim.now), "the next step is due at once");
        }
    }
    steps
}

#[test]
fn a_status_change_tells_every_conversation_then_every_person_once_in_bounded_steps() {
    let sim = Sim::new();
    for i in 0..25 {
        sim.join(&conv(i), None, T0);
    }
    assert_eq!(sim.m.bot_fanout_next().unwrap(), None, "nothing to tell before a change");
    sim.ok(Command::SetBotStatus { online: false, at: T0 + 5 });
    // Each conversation has 40 people, half of them shared with the next conversation.
    let people_of = |c: &str| {
        let i: usize = c[22..].parse().unwrap();
        (0..40).map(|k| format!("user:p{}", i * 20 + k)).collect::<Vec<_>>()
    };
    let steps = run(&sim, people_of);
    let convs: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            FanoutStep::Conversations { online: false, at, ids, sandbox_id } if *at == T0 + 5 && sandbox_id == SB => {
                Some(ids.clone())
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(convs, (0..25).map(conv).collect::<Vec<_>>(), "every conversation once, in order");
    let mut told: Vec<String> = Vec::new();
    for s in &steps {
        match s {
            FanoutStep::Conversations { ids, .. } => assert!(ids.len() <= FANOUT_CONVERSATIONS),
            FanoutStep::People { ids, online, .. } => {
                assert!(ids.len() <= FANOUT_PEOPLE && !online);
                told.extend(ids.iter().cloned());
            }
        }
    }
    // 25 conversations x 40 people, 20 shared with the next: 24 * 20 + 40 = 520 people, each once.
    let mut unique = told.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((told.len(), unique.len()), (520, 520));
    assert_eq!(sim.m.bot_fanout_next().unwrap(), None, "done");
}

#[test]
fn a_newer_status_starts_over_and_a_stale_one_starts_nothing() {
    let sim = Sim::new();
    for i in 0..15 {
        sim.join(&conv(i), None, T0);
    }
    sim.ok(Command::SetBotStatus { online: true, at: T0 + 5 });
    let Some(FanoutStep::Conversations { at, ids, .. }) = sim.m.bot_fanout_next().unwrap() else { panic!() };
    // A newer report arrives while the first step is on its way: its report changes nothing.
    sim.ok(Command::SetBotStatus { online: false, at: T0 + 6 });
    sim.m.bot_fanout_read(at, &ids, &["user:x".to_string()], sim.now).0.unwrap();
    let steps = run(&sim, |_| vec!["user:y".to_string()]);
    assert!(
        matches!(&steps[0], FanoutStep::Conversations { online: false, at, ids, .. } if *at == T0 + 6 && ids[0] == conv(0))
    );
    let told: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            FanoutStep::People { ids, .. } => Some(ids.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(told, vec!["user:y".to_string()], "only the newer fan-out's people");
    // A stale report (older than the stored status) starts no fan-out; nor does a bot in no conversation.
    let (_, e) = sim.ok(Command::SetBotStatus { online: true, at: T0 + 1 });
    assert_eq!(e.alarm_at, None);
    assert_eq!(sim.m.bot_fanout_next().unwrap(), None);
    let lonely = Sim::new();
    let (_, e) = lonely.ok(Command::SetBotStatus { online: true, at: T0 });
    assert_eq!((e.alarm_at, lonely.m.bot_fanout_next().unwrap()), (None, None));
}
