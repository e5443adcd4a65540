//! Which failed syncs the pipeline retries on its own, with no new change.

use super::Error;
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
