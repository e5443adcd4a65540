//! Tests of running commands with and without a shell.

use super::*;

#[tokio::test]
async fn env_is_passed_and_output_returned() {
    let env = [("CONFIGSNAP_HASH", OsString::from("sha256:abc"))];
    let out = run("exec", "echo hash=$CONFIGSNAP_HASH", &env, Duration::from_secs(5)).await;
    assert_eq!(out.as_deref(), Ok("hash=sha256:abc"));
}

#[tokio::test]
async fn non_zero_exit_is_an_error_with_the_code_and_last_line() {
    let err = run("exec", "echo first; echo oops >&2; exit 3", &[], Duration::from_secs(5))
        .await
        .expect_err("exit 3");
    assert!(err.message.contains("exited with 3") && err.message.contains("oops"), "{err}");
    assert!(err.refused, "a command that ran and said no refuses the content");
}

#[tokio::test]
async fn timeout_kills_the_command_and_its_children() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pid_file = tmp.path().join("child.pid");
    // The child would outlive the test: only the 300 ms timeout can end the run.
    let command = format!("sleep 3600 & echo $! > {}; wait", pid_file.display());
    let err =
        tokio::time::timeout(Duration::from_secs(60), run("exec", &command, &[], Duration::from_millis(300)))
            .await
            .expect("the timeout must end the run, not the command")
            .expect_err("timeout");
    assert!(err.message.contains("timed out"), "{err}");
    assert!(!err.refused, "a timeout says nothing about the content");
    let pid = std::fs::read_to_string(&pid_file).expect("child pid").trim().to_owned();
    // Gone, or a zombie waiting for its new parent to reap it: not running either way.
    let running = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    };
    for _ in 0..200 {
        if !running() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the command's child {pid} outlived the timeout");
}

fn words(command: &str) -> Option<Vec<String>> {
    let env = [
        ("CONFIGSNAP_STAGED_DIR", OsString::from("/tmp/st")),
        ("CONFIGSNAP_HASH", OsString::from("sha256:1")),
    ];
    argv(command, &env).map(|w| w.into_iter().map(|w| w.into_string().expect("utf-8")).collect())
}

#[test]
fn plain_words_and_configsnap_variables_run_without_a_shell() {
    let cases: &[(&str, &[&str])] = &[
        (
            "promtool check config $CONFIGSNAP_STAGED_DIR/p/prometheus.yml",
            &["promtool", "check", "config", "/tmp/st/p/prometheus.yml"],
        ),
        ("/tools/check  --hash=${CONFIGSNAP_HASH} -x", &["/tools/check", "--hash=sha256:1", "-x"]),
        (
            r#"["/bin/my tool", "a b", "$CONFIGSNAP_STAGED_DIR", "$HOME|x"]"#,
            &["/bin/my tool", "a b", "/tmp/st", "$HOME|x"],
        ),
    ];
    for (command, want) in cases {
        assert_eq!(
            words(command).as_deref(),
            Some(&want.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>()[..]),
            "{command}"
        );
    }
}

#[test]
fn shell_syntax_goes_through_sh() {
    for command in [
        "nginx -t && echo ok",
        "check > /dev/null",
        "echo \"quoted\"",
        "ls *.yml",
        "FOO=1 check",
        "echo $HOME",
        "echo $(id)",
        "a; b",
        "[not json",
        "exit 0",
        "cd /tmp",
        "",
    ] {
        assert_eq!(words(command), None, "{command:?}");
    }
}

#[tokio::test]
async fn a_missing_program_is_named_in_the_error() {
    let err = run("validation", "/nonexistent/promtool check config x", &[], Duration::from_secs(5))
        .await
        .expect_err("cannot start");
    assert!(err.message.contains("\"/nonexistent/promtool\" could not start"), "{err}");
}
