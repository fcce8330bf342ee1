//! `nudge compile`: the compiled bundle (`--emit bundle`, versioned JSON
//! bytes, the default), its readable disassembly (`--emit disasm`) or the
//! bundle pretty-printed (`--emit json`), to stdout or `-o FILE`.

use super::Outcome;
use super::args::{CompileArgs, Emit};
use super::build;
use super::error::CliError;
use nudge_compiler::bundle::disasm;

pub fn run(args: &CompileArgs) -> Result<Outcome, CliError> {
    let bundle = match build::bundle(&args.path)? {
        Ok(b) => b,
        Err(report) => {
            return Ok(Outcome {
                stdout: String::new(),
                stderr: report,
                failed: true,
            });
        }
    };
    let text = match args.emit {
        Emit::Bundle => String::from_utf8_lossy(&bundle.to_bytes()?).into_owned(),
        Emit::Json => bundle.to_pretty_json()? + "\n",
        Emit::Disasm => disasm::disasm_bundle(&bundle),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text.as_bytes()).map_err(|e| CliError::Write {
                path: path.clone(),
                source: e,
            })?;
            Ok(Outcome {
                stdout: String::new(),
                stderr: format!(
                    "wrote {} (bundle {})\n",
                    path.display(),
                    &bundle.hash()?[..12]
                ),
                failed: false,
            })
        }
        None => Ok(Outcome {
            stdout: text,
            stderr: String::new(),
            failed: false,
        }),
    }
}
