//! Tests of flag parsing and validation.

use super::*;

fn parse(args: &[&str]) -> Result<Config, String> {
    let argv = std::iter::once("configsnap").chain(args.iter().copied());
    let parsed = Args::try_parse_from(argv).map_err(|e| e.to_string())?;
    parsed.into_config().map_err(|e| e.to_string())
}

#[test]
fn defaults_follow_the_design() {
    let config = parse(&["--dir", "/config"]).expect("valid");
    assert_eq!(config.debounce.quiet, Duration::from_millis(100));
    assert_eq!(config.debounce.max_wait, Duration::from_secs(1));
    assert_eq!(config.output.render.file_mode, 0o644);
    assert_eq!(config.output.render.layout, Layout::ByName);
    assert_eq!(config.reload.signal, nix::sys::signal::Signal::SIGHUP);
    assert_eq!(config.admin.listen.to_string(), "0.0.0.0:9403");
    assert_eq!(config.safety.startup_timeout, Duration::from_secs(5));
    assert_eq!(config.source.watch_idle_timeout, Duration::from_secs(120), "about two bookmark intervals");
    assert!(config.reload.target.is_none());
}

#[test]
fn bad_values_are_refused_with_the_flag_named() {
    let cases: &[(&[&str], &str)] = &[
        (&["--dir", "/c", "--selector", "app in prod"], "label selector"),
        (&["--dir", "/c", "--debounce", "5"], "needs a unit"),
        (&["--dir", "/c", "--file-mode", "999"], "octal"),
        (&["--dir", "/c", "--file-mode", "0777"], "writable by every user"),
        (&["--dir", "/c", "--file-mode", "0666"], "writable by every user"),
        (&["--dir", "/c", "--file-mode", "0"], "nobody could read"),
        (&["--dir", "/c", "--file-mode", "4755"], "setuid"),
        (&["--dir", "/c", "--max-wait", "5124095576030432h"], "too long"),
        (&["--dir", "/c", "--debounce", "99999999999999999999999ms"], "too long"),
        (&["--dir", "/c", "--startup-timeout", "367d"], "unknown unit"),
        (&["--dir", "/c", "--startup-timeout", "8785h"], "limit of 366 days"),
        (&["--dir", "/c", "--startup-timeout", "ms"], "not a duration"),
        (&["--dir", "/c", "--signal", "NOPE"], "signal name"),
        (&["--dir", "/c", "--layout", "tree"], "tree"),
        (&["--dir", "/c", "--webhook-url", "ftp://x/reload"], "only http:// and https://"),
        (&["--dir", "/c", "--namespace", "a,b"], "configsnap watches one"),
        (&["--dir", "/c", "--namespace", "Team_A"], "not a namespace name"),
        (&["--dir", "/c", "--namespace=a-"], "not a namespace name"),
        (&["--dir", "/c", "--debounce", "1m30"], "needs a unit"),
        (&["--dir", "/c", "--debounce", "1d"], "unknown unit"),
        (&["--dir", "/c", "--debounce=-5s"], "not a duration"),
        (&["--dir", "/c", "--debounce", "600000000000h"], "too long"),
        (&["--dir", "/c", "--webhook-status-code", "42"], "100..599"),
        (&["--dir", "/c", "--log-level", "loud"], "loud"),
        (&["--dir", "/c", "--process-name", "nginx", "--pid-file", "/p"], "cannot be used together"),
        (&["--dir", "/c", "--debounce", "2s", "--max-wait", "1s"], "--max-wait"),
        (&["--selector", "a=b"], "--dir"),
        (&["--dir", "/c", "--watch-idle-timeout", "0"], "--watch-idle-timeout"),
        (&["--dir", "/c", "--watch-idle-timeout", "5m"], "--watch-idle-timeout"),
    ];
    for (args, needle) in cases {
        let err = parse(args).expect_err("must fail");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn values_parse_in_their_usual_spellings() {
    assert_eq!("250ms".parse::<DurationArg>(), Ok(DurationArg(Duration::from_millis(250))));
    assert_eq!("0".parse::<DurationArg>(), Ok(DurationArg(Duration::ZERO)));
    assert_eq!("2m".parse::<DurationArg>(), Ok(DurationArg(Duration::from_secs(120))));
    let go: &[(&str, Duration)] = &[
        ("1m30s", Duration::from_secs(90)),
        ("1h2m3.5s", Duration::from_millis(3_723_500)),
        ("1.5h", Duration::from_secs(5400)),
        (".5s", Duration::from_millis(500)),
        ("10us", Duration::from_micros(10)),
        ("10\u{b5}s", Duration::from_micros(10)),
        ("7ns", Duration::from_nanos(7)),
        ("0s", Duration::ZERO),
    ];
    for (text, want) in go {
        assert_eq!(text.parse::<DurationArg>(), Ok(DurationArg(*want)), "{text}");
    }
    assert_eq!("8784h".parse::<DurationArg>(), Ok(DurationArg(MAX_DURATION)));
    assert!("8785h".parse::<DurationArg>().is_err());
    for name in ["HUP", "sighup", "SIGHUP", "1"] {
        assert_eq!(name.parse::<SignalName>().map(|s| s.0), Ok(nix::sys::signal::Signal::SIGHUP), "{name}");
    }
    assert_eq!("usr1".parse::<SignalName>().map(|s| s.0), Ok(nix::sys::signal::Signal::SIGUSR1));
}

#[test]
fn webhook_credentials_are_not_echoed_in_errors() {
    let err = parse(&["--dir", "/c", "--webhook-url", "ftp://user:s3cret@host/x"]).expect_err("must fail");
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn repeatable_flags_collect_every_value() {
    let config = parse(&[
        "--dir",
        "/c",
        "--name",
        "a",
        "--name",
        "b",
        "--webhook-url",
        "http://127.0.0.1:1/a",
        "--webhook-url",
        "http://127.0.0.1:1/b",
    ])
    .expect("valid");
    assert_eq!(config.source.names, ["a", "b"]);
    assert_eq!(config.reload.webhooks.len(), 2);
}

#[test]
fn configmap_reload_flags_are_accepted_as_aliases() {
    let config = parse(&[
        "--dir",
        "/c",
        "--volume-dir",
        "/etc/config",
        "--webhook-url",
        "https://127.0.0.1:9/-/reload",
        "--webhook-method",
        "post",
        "--webhook-status-code",
        "200",
        "--webhook-retries",
        "2",
    ])
    .expect("valid");
    assert_eq!(config.source.from_dirs, [PathBuf::from("/etc/config")]);
    assert_eq!(config.reload.webhooks[0].scheme_str(), Some("https"));
    assert_eq!(config.reload.webhook_status, Some(200));
    assert_eq!(config.reload.webhook_retries, 2);
}

#[test]
fn log_level_defaults_to_info() {
    let config = parse(&["--dir", "/c"]).expect("valid");
    assert_eq!(config.admin.log_level, LevelFilter::INFO);
    let config = parse(&["--dir", "/c", "--log-level", "debug"]).expect("valid");
    assert_eq!(config.admin.log_level, LevelFilter::DEBUG);
}
