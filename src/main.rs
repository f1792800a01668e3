fn main() -> std::process::ExitCode {
    baton_azure_delta::cli::main()
}
