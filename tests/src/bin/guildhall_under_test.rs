//! The `guildhall` entry point, built inside the test package so that black-box tests can
//! start real server processes (signals, replicas) through `CARGO_BIN_EXE_guildhall-under-test`.

fn main() -> std::process::ExitCode {
    guildhall::cli::main()
}
