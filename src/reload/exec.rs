//! Running a user command (`--exec`, `--validate-cmd`) with a time limit, its output sent
//! to the log. The shipped image has no shell, so a command runs *directly* when it needs
//! none (see [`argv`]); only a command with shell syntax goes through `sh -c`.

use super::Failure;
use std::ffi::OsString;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// Longest output kept for the log, per stream.
const OUTPUT_LIMIT: usize = 4096;

/// Characters that mean the command needs a shell (quoting, redirection, pipes, globs,
/// expansions other than the plain `$CONFIGSNAP_*` references [`argv`] expands itself).
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~', '{', '}',
    '\n',
];

/// First words only a shell understands: special builtins and keywords with no program of
/// the same name in `/usr/bin` (`exit 0` must keep working the way users wrote it).
const SHELL_WORDS: &[&str] = &[
    "!", ".", ":", "alias", "break", "case", "cd", "continue", "eval", "exec", "exit", "export", "for",
    "function", "if", "read", "readonly", "return", "set", "shift", "source", "trap", "ulimit", "umask",
    "unset", "until", "wait", "while",
];

/// The argv to run `command` with, without a shell; `None` when it needs `sh -c`.
///
/// - A JSON array of strings (`["promtool", "check", "config", "$CONFIGSNAP_STAGED_DIR/p.yml"]`)
///   is the argv itself: use it for arguments with spaces or shell characters.
/// - Otherwise a command of plain words separated by spaces is split on the spaces.
///
/// In both, `$NAME` and `${NAME}` are replaced by the value of `NAME` from `env` (the
/// `CONFIGSNAP_*` variables configsnap sets), anywhere in a word. Anything else a shell
/// would interpret (quotes, `|`, `>`, `*`, other `$` uses, a leading `VAR=`, a builtin
/// such as `exit` or `cd` first) means `None`.
#[must_use]
pub(crate) fn argv(command: &str, env: &[(&str, OsString)]) -> Option<Vec<OsString>> {
    let trimmed = command.trim();
    if trimmed.starts_with('[') {
        let words: Vec<String> = serde_json::from_str(trimmed).ok()?;
        return (!words.is_empty())
            .then(|| words.iter().map(|w| expand(w, env, false)).collect::<Option<_>>())?;
    }
    let words: Vec<&str> = trimmed.split_ascii_whitespace().collect();
    let first = *words.first()?;
    if first.contains('=') || SHELL_WORDS.contains(&first) {
        return None;
    }
    words.iter().map(|w| expand(w, env, true)).collect()
}

/// `word` with `$NAME`/`${NAME}` of `env` replaced; `None` (in `strict` mode) when it holds
/// any other shell syntax.
fn expand(word: &str, env: &[(&str, OsString)], strict: bool) -> Option<OsString> {
    let mut out = OsString::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        let (before, after) = rest.split_at(at);
        if strict && before.contains(SHELL_SYNTAX) {
            return None;
        }
        out.push(before);
        let after = &after[1..];
        let (name, tail) = match after.strip_prefix('{') {
            Some(braced) => braced.split_once('}')?,
            None => after.split_at(
                after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len()),
            ),
        };
        match env.iter().find(|(key, _)| *key == name) {
            Some((_, value)) => out.push(value),
            None if strict => return None,
            None => out.push(&rest[at..rest.len() - tail.len()]),
        }
        rest = tail;
    }
    if strict && rest.contains(SHELL_SYNTAX) {
        return None;
    }
    out.push(rest);
    Some(out)
}

/// Runs `command` (directly when [`argv`] can split it, else `sh -c`) with extra
/// environment, killing it after `timeout`.
/// Returns its (truncated) combined output on exit 0; a readable cause otherwise.
pub(crate) async fn run(
    purpose: &'static str,
    command: &str,
    env: &[(&str, OsString)],
    timeout: Duration,
) -> Result<String, Failure> {
    let direct = argv(command, env);
    let mut cmd = match &direct {
        Some(words) => {
            let mut cmd = Command::new(&words[0]);
            cmd.args(&words[1..]);
            cmd
        }
        None => {
            let mut cmd = Command::new("sh");
            cmd.arg("-c").arg(command);
            cmd
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout or a newer snapshot ends the command's
        // children too, not only `sh`.
        .process_group(0)
        .kill_on_drop(true);
    for (key, value) in env {
        cmd.env(key, value);
    }
    let child = cmd.spawn().map_err(|e| {
        Failure::unreachable(match &direct {
            Some(words) => format!("{purpose} command {:?} could not start: {e}", words[0]),
            None => format!(
                "{purpose} command uses shell syntax, so it runs with sh -c, and sh could not start: {e} \
                 (the configsnap image has no shell: write plain words or a JSON array)"
            ),
        })
    })?;
    let mut group = child.id().map(ProcessGroup);
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => {
            // Finished: its pid may be reused from now on, so never signal that group.
            std::mem::forget(group.take());
            output
        }
        Ok(Err(e)) => return Err(Failure::unreachable(format!("{purpose} command failed: {e}"))),
        Err(_) => {
            return Err(Failure::unreachable(format!(
                "{purpose} command timed out after {timeout:?} and was killed"
            )));
        }
    };
    let text = combine(&output.stdout, &output.stderr);
    let code = output.status.code();
    match code {
        Some(exit_code) => tracing::info!(purpose, exit_code, output = %text, "command finished"),
        None => tracing::info!(purpose, killed_by_signal = true, output = %text, "command finished"),
    }
    // A command that ran and exited non-zero said no: a refusal. Killed by a signal (an
    // OOM kill, say) says nothing about the content.
    match code {
        Some(0) => Ok(text),
        Some(code) => {
            Err(Failure::refused(format!("{purpose} command exited with {code}: {}", last_line(&text))))
        }
        None => Err(Failure::unreachable(format!(
            "{purpose} command was killed by a signal: {}",
            last_line(&text)
        ))),
    }
}

/// Kills a whole process group when dropped: on timeout, or when a newer snapshot cancels
/// the command while it runs.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Ok(pgid) = i32::try_from(self.0) {
            let _ =
                nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
        }
    }
}

fn combine(stdout: &[u8], stderr: &[u8]) -> String {
    let clip = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(OUTPUT_LIMIT)]).trim().to_owned();
    match (clip(stdout), clip(stderr)) {
        (out, err) if err.is_empty() => out,
        (out, err) if out.is_empty() => err,
        (out, err) => format!("{out}\n{err}"),
    }
}

fn last_line(text: &str) -> &str {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)")
}

#[cfg(test)]
#[path = "exec/tests.rs"]
mod tests;
