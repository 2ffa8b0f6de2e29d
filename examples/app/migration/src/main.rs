fn main() -> std::process::ExitCode {
    gatehouse_migration::cli::run::<example_app_migration::AppMigrator>()
}
