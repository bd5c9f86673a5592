//! Project automation, run as `cargo xtask <task>`.
//!
//! `cargo xtask ci` runs exactly what CI runs: formatting, clippy with warnings denied, the docs with
//! warnings denied and the whole test suite. It stops at the first failing step, names it, and exits
//! non-zero. Its last line is the test totals, `tests: N passed, N failed, N skipped`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::Instant;

mod agents;
mod bench;
mod e2e;
mod e2e_plugin;
mod record;
mod vendor_xterm;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench::run(&args[1..]),
        Some("e2e") => e2e::run(&args[1..]),
        Some("record") => record::run(&args[1..]),
        Some("vendor-xterm") => vendor_xterm::run(),
        Some("help" | "--help" | "-h") | None => {
            print_help();
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("xtask: unknown task `{other}`");
            print_help();
            ExitCode::from(2)
        }
    }
}

fn print_help() {
    eprintln!(
        "usage: cargo xtask <task>\n\n\
         tasks:\n  \
         ci     fmt --check, clippy -D warnings, docs, tests (exactly what CI runs)\n  \
         bench  pty-bench-driver vs a raw PTY reader: throughput ratios, idle sessions\n  \
         e2e    [--agent NAME]... every pinned agent CLI runs an offline turn through the\n         \
                orchestrator plugin (pins: xtask/agents.toml)\n  \
         record --agent NAME --scenario S [--size COLSxROWS] [--out DIR]: record a fixture\n  \
         vendor-xterm  fetch xterm.js + fit addon from npm into crates/pty-console/assets/vendor"
    );
}

/// One step of the CI run: a display name, the cargo arguments and extra environment.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const CI_STEPS: &[Step] = &[
    Step {
        name: "fmt",
        args: &["fmt", "--all", "--check"],
        env: &[],
    },
    Step {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        env: &[],
    },
    Step {
        name: "doc",
        args: &["doc", "--workspace", "--no-deps", "--locked"],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
    },
    // Last, so that the run's output ends with the test summary.
    Step {
        name: "test",
        args: &["test", "--workspace", "--locked"],
        env: &[],
    },
];

fn ci() -> ExitCode {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    let mut totals = None;
    let code = run_steps(&cargo, &mut totals);
    if code == ExitCode::SUCCESS {
        eprintln!(
            "xtask ci: all steps passed in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    // The run's closing line, as test runners and CI logs expect it.
    if let Some(t) = totals {
        println!(
            "tests: {} passed, {} failed, {} skipped",
            t.passed, t.failed, t.ignored
        );
    }
    code
}

fn run_steps(cargo: &str, totals: &mut Option<Totals>) -> ExitCode {
    for step in CI_STEPS {
        let step_started = Instant::now();
        eprintln!(
            "xtask ci: == {} == cargo {}",
            step.name,
            step.args.join(" ")
        );
        let mut cmd = Command::new(cargo);
        cmd.args(step.args).envs(step.env.iter().copied());
        let status = if step.name == "test" {
            run_tests(cmd).map(|(status, t)| {
                *totals = Some(t);
                status
            })
        } else {
            cmd.status()
        };
        match status {
            Ok(s) if s.success() => eprintln!(
                "xtask ci: {} ok in {:.1}s",
                step.name,
                step_started.elapsed().as_secs_f64()
            ),
            Ok(s) => {
                eprintln!("xtask ci: step `{}` failed ({s})", step.name);
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("xtask ci: step `{}` could not run cargo: {e}", step.name);
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Totals over every `test result:` line the test runner printed.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Totals {
    /// Adds one `test result: ok. 3 passed; 0 failed; 1 ignored; …` line; other lines are ignored.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match label {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs `cargo test`, streaming its output through while adding up the runner's summary lines.
fn run_tests(mut cmd: Command) -> std::io::Result<(ExitStatus, Totals)> {
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let mut totals = Totals::default();
    if let Some(out) = child.stdout.take() {
        let stdout = std::io::stdout();
        for line in BufReader::new(out).lines() {
            let line = line?;
            totals.add_line(&line);
            writeln!(stdout.lock(), "{line}")?;
        }
    }
    Ok((child.wait()?, totals))
}

#[cfg(test)]
mod tests {
    use super::Totals;

    #[test]
    fn totals_add_up_runner_summary_lines() {
        let mut t = Totals::default();
        t.add_line("test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.add_line(
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
        );
        t.add_line("running 3 tests");
        assert_eq!(
            t,
            Totals {
                passed: 5,
                failed: 1,
                ignored: 1
            }
        );
    }
}
