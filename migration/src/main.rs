fn main() -> std::process::ExitCode {
    migration::cli::main()
}
