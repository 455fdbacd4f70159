//! Reading secrets: from the terminal without echo, or one line from stdin (`--password-stdin`,
//! `--token-stdin`). Secrets read here are never printed.

use crate::exit::usage;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// Whether the user can be asked (stdin and stderr are a terminal).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks on stderr and reads a line from stdin (echoed: for names).
pub fn ask(question: &str) -> anyhow::Result<String> {
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// Asks on stderr and reads a line from the terminal with echo off.
#[cfg(unix)]
pub fn ask_secret(question: &str) -> anyhow::Result<String> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    eprint!("{question}");
    std::io::stderr().flush()?;
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).map_err(|e| usage(format!("cannot use the terminal: {e}")))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)
        .map_err(|e| usage(format!("cannot turn off echo: {e}")))?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    read?;
    Ok(strip_newline(line))
}

#[cfg(not(unix))]
pub fn ask_secret(_question: &str) -> anyhow::Result<String> {
    Err(usage(
        "cannot read a password without echo here; use --password-stdin",
    ))
}

/// The first line of stdin without its line ending (a password may hold spaces).
pub fn stdin_line(what: &str) -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = strip_newline(line);
    if line.is_empty() {
        return Err(usage(format!("no {what} on stdin")));
    }
    Ok(line)
}

/// Reads `n` lines from stdin (e.g. the current and the new password).
pub fn stdin_lines(what: &[&str]) -> anyhow::Result<Vec<String>> {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    let mut out = Vec::new();
    for w in what {
        let mut line = String::new();
        lock.read_line(&mut line)?;
        let line = strip_newline(line);
        if line.is_empty() {
            return Err(usage(format!(
                "expected {} on stdin, one per line; {w} is missing",
                what.join(" and ")
            )));
        }
        out.push(line);
    }
    Ok(out)
}

fn strip_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// Asks for a new password twice on the terminal; `None` if the first answer is empty.
pub fn new_password(question: &str) -> anyhow::Result<Option<String>> {
    let first = ask_secret(question)?;
    if first.is_empty() {
        return Ok(None);
    }
    let again = ask_secret("Repeat it: ")?;
    if again != first {
        return Err(usage("the two passwords differ"));
    }
    Ok(Some(first))
}
