//! Running commands from tests (after ripgrep's `TestCommand`): when a command
//! does not end the way the test expects, the failure shows the command line, its
//! exit status, its stdout and its stderr.

use std::ffi::OsStr;
use std::process::{Command, Output};

use anyhow::{bail, Context, Result};

/// A command that a test runs and checks.
#[derive(Debug)]
pub struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    /// A command that runs `program`.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            cmd: Command::new(program),
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable for the command.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.cmd.env(key, value);
        self
    }

    /// The underlying [`Command`], for anything else.
    pub fn cmd(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// Runs the command to the end and collects its output, whatever its exit
    /// status; an error only when it cannot be started.
    pub fn output(&mut self) -> Result<Output> {
        self.cmd
            .output()
            .with_context(|| format!("cannot run {:?}", self.cmd))
    }

    /// `out` (an output of this command) if it succeeded; otherwise an error
    /// with the report.
    pub fn check(&self, out: Output) -> Result<Output> {
        if !out.status.success() {
            bail!("command failed:{}", self.report(&out));
        }
        Ok(out)
    }

    /// Runs the command; its output if it succeeded, otherwise an error with
    /// the report.
    pub fn run(&mut self) -> Result<Output> {
        let out = self.output()?;
        self.check(out)
    }

    /// Runs the command and panics with the report unless it succeeded.
    #[track_caller]
    pub fn assert_success(&mut self) -> Output {
        let out = self.started();
        if !out.status.success() {
            panic!(
                "command failed but was expected to succeed:{}",
                self.report(&out)
            );
        }
        out
    }

    /// Runs the command and panics with the report if it succeeded.
    #[track_caller]
    pub fn assert_failure(&mut self) -> Output {
        let out = self.started();
        if out.status.success() {
            panic!(
                "command succeeded but was expected to fail:{}",
                self.report(&out)
            );
        }
        out
    }

    /// Runs the command and panics with the report unless it exited with `code`.
    #[track_caller]
    pub fn assert_exit_code(&mut self, code: i32) -> Output {
        let out = self.started();
        if out.status.code() != Some(code) {
            panic!(
                "command was expected to exit with {code}:{}",
                self.report(&out)
            );
        }
        out
    }

    /// Runs the command, panics with the report unless it succeeded, and returns
    /// its stdout (lossily UTF-8).
    #[track_caller]
    pub fn stdout(&mut self) -> String {
        String::from_utf8_lossy(&self.assert_success().stdout).into_owned()
    }

    /// The command line, exit status, stdout and stderr of `out`, an output of
    /// this command, one to a paragraph.
    pub fn report(&self, out: &Output) -> String {
        report(&self.cmd, out)
    }

    #[track_caller]
    fn started(&mut self) -> Output {
        match self.output() {
            Ok(out) => out,
            Err(e) => panic!("{e:#}"),
        }
    }
}

impl From<Command> for TestCommand {
    fn from(cmd: Command) -> Self {
        Self { cmd }
    }
}

/// The command line of `cmd` and the exit status, stdout and stderr of `out`,
/// one to a paragraph.
pub fn report(cmd: &Command, out: &Output) -> String {
    format!(
        "\n\ncommand: {cmd:?}\n\nstatus: {}\n\nstdout: {}\n\nstderr: {}\n",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> TestCommand {
        let mut c = TestCommand::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn success_failure_and_exit_codes() {
        assert_eq!(sh("echo hi").stdout(), "hi\n");
        let out = sh("echo oops >&2; exit 2").assert_exit_code(2);
        assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
        sh("exit 1").assert_failure();
        assert!(sh("exit 0").run().is_ok());
    }

    #[test]
    fn a_failure_reports_the_command_status_and_output() {
        let err = sh("echo out; echo err >&2; exit 3")
            .run()
            .expect_err("exit 3");
        let text = format!("{err:#}");
        for needle in [
            "\"sh\" \"-c\"",
            "exit status: 3",
            "stdout: out",
            "stderr: err",
        ] {
            assert!(text.contains(needle), "{needle:?} in {text}");
        }
        assert!(TestCommand::new("/no/such/program").output().is_err());
    }

    #[test]
    #[should_panic(expected = "expected to succeed")]
    fn assert_success_panics_on_failure() {
        sh("exit 1").assert_success();
    }
}
