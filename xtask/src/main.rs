//! `cargo xtask <task>`: the common commands of this project in one place,
//! so nobody has to remember environment variables and flags. Each task
//! runs the same command CONTRIBUTING.md shows.

use std::process::{Command, ExitCode};

struct Task {
    name: &'static str,
    help: &'static str,
    /// Program, arguments, environment.
    run: fn(&[String]) -> Vec<Step>,
}

struct Step {
    program: &'static str,
    args: Vec<String>,
    env: Vec<(&'static str, &'static str)>,
}

fn step(program: &'static str, args: &[&str]) -> Step {
    Step {
        program,
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec![],
    }
}

fn with_extra(mut s: Step, extra: &[String]) -> Step {
    s.args.extend(extra.iter().cloned());
    s
}

const TASKS: &[Task] = &[
    Task {
        name: "app",
        help: "run the app in your browser (release build, data in your data dir)",
        run: |extra| {
            vec![with_extra(
                step(
                    "cargo",
                    &["run", "--release", "--bin", "flowkeep", "--", "ui"],
                ),
                extra,
            )]
        },
    },
    Task {
        name: "test",
        help:
            "every test, installing what they need (scripts/test.sh); extra args go to cargo test",
        run: |extra| vec![with_extra(step("bash", &["scripts/test.sh"]), extra)],
    },
    Task {
        name: "rust-tests",
        help: "only the Rust tests; e.g. `cargo xtask rust-tests -p flowkeep-app --lib cursor`",
        run: |extra| {
            let all: &[&str] = if extra.is_empty() {
                &["--workspace"]
            } else {
                &[]
            };
            vec![with_extra(
                with_extra(
                    step("cargo", &["test", "--locked"]),
                    &all.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                ),
                extra,
            )]
        },
    },
    Task {
        name: "ui-tests",
        help: "the web UI's type check and unit tests (Vitest)",
        run: |_| {
            vec![
                step("npm", &["--prefix", "desktop/ui", "run", "-s", "typecheck"]),
                step("npm", &["--prefix", "desktop/ui", "test"]),
            ]
        },
    },
    Task {
        name: "screenshots",
        help: "the browser tests, which write target/ui-screenshots/*.png",
        run: |_| {
            vec![
                step(
                    "cargo",
                    &[
                        "build",
                        "--bin",
                        "flowkeep",
                        "--bin",
                        "flowkeep-sync-server",
                    ],
                ),
                step("bash", &["-c", SCREENSHOTS]),
            ]
        },
    },
    Task {
        name: "bindings",
        help: "rewrite desktop/ui/src/generated/bindings.ts from the Rust types",
        run: |_| {
            vec![Step {
                env: vec![("FLOWKEEP_UPDATE_BINDINGS", "1")],
                ..step(
                    "cargo",
                    &["test", "-p", "flowkeep-app", "--lib", "bindings"],
                )
            }]
        },
    },
    Task {
        name: "bench",
        help: "the benchmarks (release); prints the tables the README quotes",
        run: |extra| {
            vec![with_extra(
                step("cargo", &["bench", "-p", "flowkeep-app"]),
                extra,
            )]
        },
    },
    Task {
        name: "lint",
        help: "what CI checks besides tests: rustfmt and clippy with warnings as errors",
        run: |_| {
            vec![
                step("cargo", &["fmt", "--all", "--check"]),
                step(
                    "cargo",
                    &[
                        "clippy",
                        "--workspace",
                        "--all-targets",
                        "--locked",
                        "--",
                        "-D",
                        "warnings",
                    ],
                ),
            ]
        },
    },
    Task {
        name: "deb",
        help: "build the .deb (scripts/build-deb.sh)",
        run: |_| vec![step("bash", &["scripts/build-deb.sh"])],
    },
    Task {
        name: "ci",
        help: "everything CI runs (.ci/run)",
        run: |_| vec![step("bash", &[".ci/run"])],
    },
];

/// The browser tests against the debug binaries of the current target dir.
const SCREENSHOTS: &str = r#"target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
cd desktop/ui && FLOWKEEP_BIN="$target_dir/debug/flowkeep" npm run -s e2e"#;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        return help(ExitCode::from(2));
    };
    if name == "help" || name == "--help" || name == "-h" {
        return help(ExitCode::SUCCESS);
    }
    let Some(task) = TASKS.iter().find(|t| t.name == name) else {
        eprintln!("xtask: no task named `{name}`");
        return help(ExitCode::from(2));
    };
    // Tasks run from the workspace root, wherever cargo was called from.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace");
    for s in (task.run)(&args[1..]) {
        eprintln!("xtask: {} {}", s.program, s.args.join(" "));
        let status = Command::new(s.program)
            .args(&s.args)
            .envs(s.env.iter().copied())
            .current_dir(root)
            .status();
        match status {
            Ok(st) if st.success() => {}
            Ok(st) => return ExitCode::from(st.code().unwrap_or(1).clamp(1, 255) as u8),
            Err(e) => {
                eprintln!("xtask: cannot run {}: {e}", s.program);
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn help(code: ExitCode) -> ExitCode {
    eprintln!("cargo xtask <task> [args]\n");
    for t in TASKS {
        eprintln!("  {:12} {}", t.name, t.help);
    }
    code
}
