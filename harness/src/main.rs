//! `sfu-harness`: run, check and plan scenario files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use harness::exit;
use harness::run::{RunOptions, run};
use harness_core::plan;
use harness_core::scenario;
use harness_core::verdict::Outcome;

#[derive(Parser)]
#[command(
    name = "sfu-harness",
    version,
    about = "Bots and faults against a real SFU in containers; thresholds decide."
)]
#[command(
    after_help = "Exit codes: 0 pass, 1 thresholds failed, 2 invalid scenario or usage, 3 environment or provisioning failed, 4 run invalid (harness overloaded, interrupted)."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run scenario files against a real SFU and judge their thresholds.
    Run {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where run directories go: <DIR>/<scenario>/<run-id>/.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// No progress lines, only the summary.
        #[arg(long, short)]
        quiet: bool,
        /// Also write one JUnit file covering every scenario of this command.
        #[arg(long)]
        junit: Option<PathBuf>,
    },
    /// Validate scenario files; prints every problem as file:line:col.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the compiled plan of a scenario: joins, thresholds, SFU.
    Plan { file: PathBuf },
    /// Rebuild the reports of a run directory from its events.jsonl (also after a
    /// killed run) and print the summary; exit code as for `run`.
    Report { dir: PathBuf },
    /// What this machine supports (engine, image, nftables, namespaces, netem) and what
    /// each missing piece disables. Exit 0 when a basic run is possible, else 3.
    Doctor,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::INVALID_INPUT as u8
            } else {
                0
            });
        }
    };
    let code = match cli.command {
        Cmd::Check { files } => check(&files),
        Cmd::Plan { file } => match load(&file) {
            Ok(spec) => {
                print!("{}", plan::render(&plan::compile(&spec)));
                exit::PASS
            }
            Err(code) => code,
        },
        Cmd::Run {
            files,
            reports,
            quiet,
            junit,
        } => run_files(&files, reports, quiet, junit),
        Cmd::Doctor => doctor(),
        Cmd::Report { dir } => report(&dir),
    };
    ExitCode::from(code as u8)
}

fn load(file: &std::path::Path) -> Result<scenario::ScenarioSpec, i32> {
    scenario::load(file).map_err(|errors| {
        eprintln!("{:?}", miette::Report::new(errors));
        exit::INVALID_INPUT
    })
}

fn check(files: &[PathBuf]) -> i32 {
    let mut code = exit::PASS;
    for f in files {
        match scenario::load(f) {
            Ok(_) => println!("{}: ok", f.display()),
            Err(errors) => {
                eprintln!("{:?}", miette::Report::new(errors));
                code = exit::INVALID_INPUT;
            }
        }
    }
    code
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            None
        }
    }
}

fn doctor() -> i32 {
    let Some(rt) = runtime() else {
        return exit::ENVIRONMENT;
    };
    let checks = rt.block_on(harness::doctor::run());
    print!("{}", harness::doctor::render(&checks));
    let basic = checks
        .iter()
        .filter(|c| c.name == "docker engine" || c.name == "livekit image")
        .all(|c| c.ok);
    if basic { exit::PASS } else { exit::ENVIRONMENT }
}

fn report(dir: &std::path::Path) -> i32 {
    let spec = match load(&dir.join(harness::run::SCENARIO_COPY)) {
        Ok(spec) => spec,
        Err(code) => return code,
    };
    match harness::run::rerender(dir, &plan::compile(&spec)) {
        Ok(outcome) => {
            print!("{}", outcome.summary);
            exit_code(&outcome.verdict.outcome)
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INVALID_INPUT
        }
    }
}

fn exit_code(outcome: &Outcome) -> i32 {
    match outcome {
        Outcome::Pass => exit::PASS,
        Outcome::Fail => exit::FAIL,
        Outcome::Invalid { .. } => exit::RUN_INVALID,
    }
}

fn run_files(files: &[PathBuf], reports: PathBuf, quiet: bool, junit: Option<PathBuf>) -> i32 {
    // Validate everything before running anything.
    let mut plans = Vec::new();
    for f in files {
        match load(f) {
            Ok(spec) => plans.push((plan::compile(&spec), f)),
            Err(code) => return code,
        }
    }
    let Some(runtime) = runtime() else {
        return exit::ENVIRONMENT;
    };
    let opts = RunOptions {
        reports_dir: reports,
        progress: !quiet,
    };
    let mut worst = exit::PASS;
    let mut done = Vec::new();
    for (plan, file) in &plans {
        if !quiet {
            eprintln!(
                "running {} ({} bots, {:?})",
                plan.name,
                plan.bots.len(),
                plan.duration
            );
        }
        let started = std::time::Instant::now();
        let code = match runtime.block_on(run(plan, file, &opts)) {
            Ok(outcome) => {
                print!("{}", outcome.summary);
                let code = exit_code(&outcome.verdict.outcome);
                let knee = outcome
                    .measurements
                    .capacity
                    .as_ref()
                    .map(|c| c.knee.summary.clone());
                done.push((
                    outcome.scenario,
                    outcome.run_id,
                    started.elapsed().as_secs_f64(),
                    outcome.verdict,
                    code,
                    knee,
                ));
                code
            }
            Err(e) => {
                eprintln!("error: {}: {e}", plan.name);
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    eprintln!("  caused by: {s}");
                    source = s.source();
                }
                exit::ENVIRONMENT
            }
        };
        worst = worst.max(code);
    }
    if plans.len() > 1 {
        let word = |c: i32| match c {
            exit::PASS => "pass",
            exit::FAIL => "FAIL",
            exit::RUN_INVALID => "INVALID",
            _ => "ERROR",
        };
        println!("\n{} scenarios:", plans.len());
        for (scenario, run_id, _, _, code, _) in &done {
            println!("  {:<8} {scenario} ({run_id})", word(*code));
        }
        let errored = plans.len() - done.len();
        if errored > 0 {
            println!("  {errored} could not run (environment or provisioning error)");
        }
    }
    if let Some(path) = junit {
        let suites: Vec<_> = done
            .iter()
            .map(
                |(scenario, run_id, secs, verdict, _, knee)| harness_core::junit::SuiteInput {
                    scenario,
                    run_id,
                    seconds: *secs,
                    verdict,
                    capacity: knee.as_deref(),
                },
            )
            .collect();
        if let Err(e) = std::fs::write(&path, harness_core::junit::render(&suites)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return worst.max(exit::ENVIRONMENT);
        }
    }
    worst
}
