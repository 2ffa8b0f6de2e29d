fn main() -> std::process::ExitCode {
    gatehouse_migration::cli::main()
}
