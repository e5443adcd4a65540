//! Table tests of every decision of the pipeline policy.

use super::*;

fn h(n: u8) -> ContentHash {
    ContentHash([n; 32])
}

fn rules() -> Rules {
    Rules { allow_empty: false, reload_on_start: false, reload_configured: true, rollback_on_refusal: true }
}

/// A policy with `h(1)` (3 objects) on disk, accepted by the app.
fn settled(rules: Rules) -> Policy {
    let mut policy = Policy::new(rules);
    policy.adopt(h(1), 3);
    policy
}

#[test]
fn decide_table() {
    // (case, policy, rendered hash, objects, decision)
    let blocked = {
        let mut p = settled(rules());
        p.refused_before_swap(h(2));
        p
    };
    let pending = {
        let mut p = settled(rules());
        assert_eq!(p.decide(h(2), 3), Decision::Swap);
        assert_eq!(p.swapped(h(2), 3), AfterSwap::Reload);
        assert_eq!(p.reloaded(h(2), &Verdict::Superseded), AfterReload::Pending);
        p
    };
    let empty_at_start = Policy::new(rules());
    let allow_empty = settled(Rules { allow_empty: true, ..rules() });
    let cases: Vec<(&str, Policy, ContentHash, u64, Decision)> = vec![
        ("same content", settled(rules()), h(1), 3, Decision::UpToDate),
        ("new content", settled(rules()), h(2), 3, Decision::Swap),
        ("same content, reload owed", pending.clone(), h(2), 3, Decision::Reload),
        ("refused content unchanged", blocked.clone(), h(2), 3, Decision::Hold(Hold::Blocked)),
        ("refused content changed again", blocked, h(3), 3, Decision::Swap),
        ("every object deleted", settled(rules()), h(9), 0, Decision::Hold(Hold::EmptySelection)),
        ("empty at start", empty_at_start, h(9), 0, Decision::Hold(Hold::EmptySelection)),
        ("empty allowed", allow_empty, h(9), 0, Decision::Swap),
        ("some objects deleted", settled(rules()), h(4), 1, Decision::Swap),
    ];
    for (case, mut policy, hash, objects, want) in cases {
        assert_eq!(policy.decide(hash, objects), want, "{case}");
    }
}

#[test]
fn an_empty_snapshot_on_disk_does_not_hold_another_empty_one() {
    let mut policy = Policy::new(Rules { allow_empty: true, ..rules() });
    assert_eq!(policy.decide(h(9), 0), Decision::Swap);
    policy.swapped(h(9), 0);
    let mut strict = Policy { rules: rules(), ..policy };
    assert_eq!(strict.decide(h(8), 0), Decision::Swap, "nothing to protect: the files are empty already");
}

#[test]
fn after_swap_table() {
    // (case, rules, app had files, after)
    let cases = [
        ("first snapshot: the app reads it at start", rules(), false, AfterSwap::Good),
        ("later snapshot", rules(), true, AfterSwap::Reload),
        (
            "first snapshot with --reload-on-start",
            Rules { reload_on_start: true, ..rules() },
            false,
            AfterSwap::Reload,
        ),
        ("no reload method", Rules { reload_configured: false, ..rules() }, true, AfterSwap::Good),
    ];
    for (case, rules, had_files, want) in cases {
        let mut policy = Policy::new(rules);
        if had_files {
            policy.adopt(h(1), 1);
        }
        assert_eq!(policy.decide(h(2), 1), Decision::Swap, "{case}");
        assert_eq!(policy.swapped(h(2), 1), want, "{case}");
        assert_eq!(policy.last_good() == Some(h(2)), want == AfterSwap::Good, "{case}");
    }
}

#[test]
fn reload_verdict_table() {
    // (case, rules, verdict, after, blocked afterwards, reload still owed)
    let no_rollback = Rules { rollback_on_refusal: false, ..rules() };
    let cases = [
        ("accepted", rules(), Verdict::Accepted, AfterReload::Good, false, false),
        ("superseded", rules(), Verdict::Superseded, AfterReload::Pending, false, true),
        ("unreachable", rules(), Verdict::Unreachable, AfterReload::Retry, false, true),
        ("refused", rules(), Verdict::Refused, AfterReload::RollBack(h(1)), true, false),
        ("refused, rollback off", no_rollback, Verdict::Refused, AfterReload::Pending, false, true),
    ];
    for (case, rules, verdict, want, blocked, owed) in cases {
        let mut policy = settled(rules);
        policy.decide(h(2), 3);
        policy.swapped(h(2), 3);
        assert_eq!(policy.reloaded(h(2), &verdict), want, "{case}");
        assert_eq!(policy.blocked == Some(h(2)), blocked, "{case}");
        assert_eq!(policy.pending_reload() == Some(h(2)), owed, "{case}");
    }
}

#[test]
fn a_refusal_with_nothing_good_to_return_to_blocks_and_keeps_the_files() {
    let mut policy = Policy::new(Rules { reload_on_start: true, ..rules() });
    policy.decide(h(2), 1);
    assert_eq!(policy.swapped(h(2), 1), AfterSwap::Reload);
    assert_eq!(policy.reloaded(h(2), &Verdict::Refused), AfterReload::Blocked);
    assert_eq!(policy.current(), Some(h(2)));
    assert_eq!(policy.decide(h(3), 1), Decision::Swap, "a change unblocks");
}

#[test]
fn a_rollback_is_reloaded_and_the_bad_content_stays_blocked_until_it_changes() {
    let mut policy = settled(rules());
    policy.decide(h(2), 3);
    policy.swapped(h(2), 3);
    assert_eq!(policy.reloaded(h(2), &Verdict::Refused), AfterReload::RollBack(h(1)));
    policy.rolled_back(h(1), 3);
    assert_eq!(policy.pending_reload(), Some(h(1)), "the app must hear about the rollback");
    assert_eq!(policy.reloaded(h(1), &Verdict::Accepted), AfterReload::Good);
    assert_eq!(policy.decide(h(2), 3), Decision::Hold(Hold::Blocked));
    assert_eq!(policy.decide(h(1), 3), Decision::UpToDate);
    assert_eq!(policy.decide(h(3), 3), Decision::Swap);
}

#[test]
fn validation_refusals_block_until_the_content_changes() {
    let mut policy = settled(rules());
    assert_eq!(policy.decide(h(2), 3), Decision::Swap);
    policy.refused_before_swap(h(2));
    assert_eq!(policy.decide(h(2), 3), Decision::Hold(Hold::Blocked));
    assert_eq!(policy.current(), Some(h(1)));
    assert_eq!(policy.decide(h(1), 3), Decision::UpToDate, "back to what is on disk");
}

#[test]
fn a_restart_rolls_back_to_the_known_good_copy_not_to_what_is_on_disk() {
    let mut policy = Policy::new(rules());
    policy.adopt(h(2), 3);
    policy.known_good(h(1));
    policy.decide(h(3), 3);
    policy.swapped(h(3), 3);
    assert_eq!(policy.reloaded(h(3), &Verdict::Refused), AfterReload::RollBack(h(1)));
}
