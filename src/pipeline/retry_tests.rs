//! Which failed syncs the pipeline retries on its own, with no new change, and how often.

use super::{Error, FIRST_RETRY, MAX_RETRY, next_retry_delay};
use crate::source::{ObjectId, SourceKind};
use crate::writer;
use std::time::Duration;

fn write_error() -> writer::Error {
    writer::Error::Io { action: "write a file".into(), source: std::io::Error::other("disk") }
}

#[test]
fn a_failed_write_and_an_unreachable_app_are_retried() {
    let object = ObjectId { kind: SourceKind::ConfigMap, name: "web".into() };
    let retried = [
        Error::Write(write_error()),
        Error::NoRoom { object, error: write_error() },
        Error::Reload { message: "connection refused".into(), retry: true },
    ];
    for error in retried {
        assert!(error.retryable(), "{error}: the same content may land later");
    }
}

#[test]
fn refused_held_and_sourceless_syncs_wait_for_a_new_change() {
    // Retrying these would run the validator on, or signal the app with, content it has
    // already refused, every backoff step, until someone edits the object.
    let waiting = [
        Error::Refused(crate::validate::Error::Command("exit status 1".into())),
        Error::Reload { message: "the app answered 500".into(), retry: false },
        Error::Held("the selection is empty".into()),
        Error::NoSource { waited: Duration::from_secs(1) },
    ];
    for error in waiting {
        assert!(!error.retryable(), "{error}: only a new change can help");
    }
}

#[test]
fn retries_back_off_doubling_from_half_a_second_up_to_thirty_seconds() {
    let mut delays = vec![FIRST_RETRY];
    while delays.len() < 10 {
        delays.push(next_retry_delay(*delays.last().expect("one")));
    }
    let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000]);
    assert_eq!(MAX_RETRY, Duration::from_secs(30));
}
