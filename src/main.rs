use std::process::ExitCode;

fn main() -> ExitCode {
    vhod::cli::main()
}
