//! Reading secrets: from a hidden prompt in a terminal, otherwise one line
//! of stdin each, so they never appear in argv, the shell history or `ps`.

use std::io::{BufRead, IsTerminal};

use secrecy::SecretString;

use super::Failure;

/// Reads one secret. In a terminal it prompts with `prompt` without echo
/// (twice when `confirm`); otherwise it takes the next line of stdin
/// (without its line ending).
///
/// # Errors
/// [`Failure::Usage`] when stdin is empty or the two entries differ.
pub fn secret(prompt: &str, confirm: bool) -> Result<SecretString, Failure> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{prompt}: "))
            .map_err(|err| Failure::Usage(format!("cannot read {prompt}: {err}")))?;
        if confirm {
            let again = rpassword::prompt_password(format!("{prompt} (again): "))
                .map_err(|err| Failure::Usage(format!("cannot read {prompt}: {err}")))?;
            if again != first {
                return Err(Failure::Usage(format!(
                    "the two entries of the {prompt} differ; nothing was changed"
                )));
            }
        }
        return Ok(first.into());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|err| Failure::Usage(format!("cannot read {prompt} from stdin: {err}")))?;
    let trimmed = line.strip_suffix('\n').unwrap_or(&line);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(Failure::Usage(format!(
            "no {prompt} on stdin; pipe it in (one line, e.g. `printf '%s\\n' \"$VALUE\" | gatehouse ...`) \
             or run in a terminal to be prompted"
        )));
    }
    Ok(trimmed.to_owned().into())
}
