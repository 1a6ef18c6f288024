//! `guildhall plugins test [DIR]`: builds the project, then runs each `tests/*.toml`
//! scenario against the built component in-process, with the harness's in-memory platform.

use std::path::Path;

use guildhall_harness::scenario;

use super::BuildOptions;
use crate::config::Config;

/// Builds and tests the project in `dir`; fails when any scenario fails.
pub(crate) async fn test(
    config: &Config,
    dir: Option<&Path>,
    no_build: bool,
) -> anyhow::Result<()> {
    let project = super::project_dir(dir)?;
    let dist = if no_build {
        project.join("dist")
    } else {
        super::build(config, Some(&project), BuildOptions { quiet: true })
            .await?
            .dist
    };
    let files = scenario::files(&project)?;
    if files.is_empty() {
        anyhow::bail!(
            "{} has no scenarios: write tests/*.toml (see the plugin author guide)",
            project.join("tests").display()
        );
    }
    let mut failed = 0;
    let mut steps = 0;
    for file in &files {
        let report = scenario::run_file_with(&dist, file, &config.runtime).await;
        let shown = file
            .strip_prefix(&project)
            .unwrap_or(file)
            .display()
            .to_string();
        steps += report.steps.len();
        if report.passed() {
            println!(
                "ok    {shown}: {} ({} steps)",
                report.name,
                report.steps.len()
            );
            continue;
        }
        failed += 1;
        println!("FAIL  {shown}: {}", report.name);
        if let Some(error) = &report.error {
            println!("      {error}");
        }
        for step in &report.steps {
            if step.failures.is_empty() {
                println!("      ok    {}", step.name);
            } else {
                println!("      FAIL  {}", step.name);
                for failure in &step.failures {
                    println!("            {failure}");
                }
            }
        }
    }
    println!(
        "{} scenarios, {steps} steps: {} passed, {failed} failed",
        files.len(),
        files.len() - failed
    );
    if failed > 0 {
        anyhow::bail!("{failed} of {} scenarios failed", files.len());
    }
    Ok(())
}
