//! Privileged tests of `gantry_runtime::container` with real runc, real namespaces and real
//! cgroups. This binary is also the shim and the pause process: started with a marker
//! argument it dispatches to them, as `gantry shim` / `gantry pause` would.
//! A tiny harness runs the cases in parallel threads (each with its own tokio runtime) and
//! ends with the `N passed, N failed` line; pass a substring to run only matching cases.

mod cases;
mod support;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some(support::SHIM_MARKER) => return gantry_runtime::container::shim::main(args),
        Some(support::PAUSE_MARKER) => return gantry_runtime::container::sandbox::pause_main(),
        _ => {}
    }
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if let Err(e) = support::ensure_packages() {
        eprintln!("cannot prepare the test machine: {e:#}");
        return ExitCode::FAILURE;
    }
    let selected: Vec<(&'static str, cases::Case)> = cases::ALL
        .iter()
        .copied()
        .filter(|(name, _)| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str())))
        .collect();
    let queue = Arc::new(Mutex::new(selected));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let passed = Arc::new(Mutex::new(0usize));
    // Two cores: a few cases at once keeps runc busy without starving the machine.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (queue, failed, passed) =
                (Arc::clone(&queue), Arc::clone(&failed), Arc::clone(&passed));
            std::thread::spawn(move || loop {
                let next = queue.lock().expect("queue lock").pop();
                let Some((name, case)) = next else { return };
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let started = std::time::Instant::now();
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(case())))
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")));
                match outcome {
                    Ok(()) => {
                        eprintln!(
                            "test {name} ... ok ({:.1}s)",
                            started.elapsed().as_secs_f32()
                        );
                        *passed.lock().expect("passed lock") += 1;
                    }
                    Err(e) => {
                        eprintln!("test {name} ... FAILED: {e:#}");
                        failed.lock().expect("failed lock").push(name);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let failed = failed.lock().expect("failed lock").clone();
    let passed = *passed.lock().expect("passed lock");
    println!("{passed} passed, {} failed", failed.len());
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("failed: {failed:?}");
        ExitCode::FAILURE
    }
}
