//! The `gatehouse` operator CLI; see [`gatehouse::cli`].

fn main() -> std::process::ExitCode {
    gatehouse::cli::main()
}
