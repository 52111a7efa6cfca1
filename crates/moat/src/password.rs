//! `moat password`: make a password hash for `admin_password_bcrypt`.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use moat_proxy::admin_password::{COST, random_password};

pub fn run(prompt: bool) -> anyhow::Result<ExitCode> {
    if !prompt {
        let plain = random_password();
        let hash = bcrypt::hash(&plain, COST)?;
        println!("password: {plain}");
        println!("bcrypt:   {hash}");
        eprintln!(
            "Put the bcrypt line's hash in [security] admin_password_bcrypt; keep the password somewhere safe."
        );
        return Ok(ExitCode::SUCCESS);
    }
    let stdin = std::io::stdin();
    let plain = if stdin.is_terminal() {
        let first = read_hidden("Password: ")?;
        let again = read_hidden("Again: ")?;
        if first != again {
            eprintln!("moat: the two passwords differ; nothing was hashed");
            return Ok(ExitCode::from(1));
        }
        first
    } else {
        // Piped in (scripts, tests): one line, not echoed anywhere.
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if plain.is_empty() {
        eprintln!("moat: the password is empty; nothing was hashed");
        return Ok(ExitCode::from(1));
    }
    if plain.len() > 72 {
        // bcrypt only reads the first 72 bytes; refuse rather than
        // silently ignore the rest.
        eprintln!("moat: bcrypt uses at most 72 bytes of a password; choose a shorter one");
        return Ok(ExitCode::from(1));
    }
    println!("{}", bcrypt::hash(&plain, COST)?);
    Ok(ExitCode::SUCCESS)
}

/// Reads a line from the terminal with echo turned off.
fn read_hidden(prompt: &str) -> std::io::Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data; tcgetattr fills it for a valid fd.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: setting attributes read from the same fd, echo bits changed.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    let mut line = String::new();
    let result = std::io::stdin().lock().read_line(&mut line);
    // SAFETY: restores what tcgetattr returned.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    result?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}
