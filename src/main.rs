//! The `baton-azure-delta` program: the command line in `cli`, everything else in the library.

/// mimalloc instead of the system allocator. Set by the program, not the library, so that what
/// links the library chooses its own. sled and the projection allocate and free small blocks at
/// a high rate; with glibc's malloc over half the CPU of a full store snapshot went to
/// `_int_malloc`, `malloc_consolidate` and `free` (perf, benches/store_apply.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    baton_azure_delta::cli::main()
}
