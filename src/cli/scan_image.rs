//! `agentless scan-image`: run the guest agent's disk scan on a local image, printing the OS and
//! package table (the same reader the scanner instances run).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct ScanImageArgs {
    /// A raw disk image file or block device, opened read-only.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// Print the inventory report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Scan the image and print the result; exit 0 complete, 1 partial, 2 not scanned.
pub fn run(args: &ScanImageArgs) -> ExitCode {
    match scanner_ami::scan::scan_image(&args.image, scanner_ami::scan::ScanOptions::default()) {
        Ok(report) => {
            if args.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("agentless: error: cannot serialise the report: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                println!("os: {}", report.os.as_ref().map_or_else(|| "not found".to_owned(), |o| o.distro()));
                for p in &report.packages {
                    println!(
                        "{}\t{}\t{}",
                        p.name.escape_debug(),
                        p.full_version().escape_debug(),
                        p.arch.as_deref().unwrap_or("-")
                    );
                }
                println!("{} packages", report.packages.len());
            }
            for e in &report.errors {
                eprintln!("agentless: warning: {}", e.escape_debug());
            }
            ExitCode::from(if report.is_complete() { 0 } else { 1 })
        }
        Err(e) => {
            eprintln!("agentless: error: {e}");
            ExitCode::from(2)
        }
    }
}
