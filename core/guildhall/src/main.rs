//! The `guildhall` binary.

/// mimalloc rather than the C library's allocator: a request's memory is often freed on
/// another worker thread than the one that allocated it, which glibc's arenas serialise
/// behind a lock (BENCHMARKS.md has the side-by-side figures).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    guildhall::cli::main()
}
