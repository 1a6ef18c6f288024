//! The `guildhall` binary.

fn main() -> std::process::ExitCode {
    guildhall::cli::main()
}
