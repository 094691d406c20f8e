//! Routes in the kernel over time, one line per daemon: the CSV of the
//! samples and a PNG drawn from it by gnuplot (installed with apt when it
//! is missing, as the labs install their peers).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One line of the plot: (seconds, routes) samples.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, usize)>,
}

/// Writes `<dir>/<stem>.csv` (`name,seconds,routes`) and, with gnuplot,
/// `<dir>/<stem>.png`. Returns the files written, or why the PNG is not.
pub fn routes_over_time(
    dir: &Path,
    stem: &str,
    title: &str,
    series: &[Series],
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let csv = dir.join(format!("{stem}.csv"));
    let mut text = String::from("name,seconds,routes\n");
    for s in series {
        for (t, n) in &s.points {
            let _ = writeln!(text, "{},{t:.3},{n}", s.name);
        }
    }
    std::fs::write(&csv, text).map_err(|e| format!("{}: {e}", csv.display()))?;
    let mut written = vec![csv];
    if !has_gnuplot() {
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-qq", "gnuplot-nox"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    if !has_gnuplot() {
        return Err("gnuplot is not installed (apt-get install gnuplot-nox): no PNG".into());
    }
    let png = dir.join(format!("{stem}.png"));
    let mut script = String::new();
    let _ = writeln!(script, "set terminal pngcairo size 1000,600 noenhanced");
    let _ = writeln!(script, "set output '{}'", png.display());
    let _ = writeln!(script, "set title \"{}\"", title.replace('"', ""));
    let _ = writeln!(script, "set xlabel 'seconds from the start'");
    let _ = writeln!(script, "set ylabel 'routes in the kernel'");
    let _ = writeln!(script, "set format y '%.0f'");
    let _ = writeln!(script, "set key right bottom");
    let _ = writeln!(script, "set grid");
    let mut data = String::new();
    let plots: Vec<String> = series
        .iter()
        .map(|s| {
            for (t, n) in &s.points {
                let _ = writeln!(data, "{t:.3} {n}");
            }
            data.push_str("e\n");
            format!(
                "'-' using 1:2 with lines linewidth 2 title '{}'",
                s.name.replace('\'', "")
            )
        })
        .collect();
    let _ = writeln!(script, "plot {}", plots.join(", "));
    script.push_str(&data);
    let gp = dir.join(format!("{stem}.gnuplot"));
    std::fs::write(&gp, &script).map_err(|e| format!("{}: {e}", gp.display()))?;
    let out = Command::new("gnuplot")
        .arg(&gp)
        .output()
        .map_err(|e| format!("gnuplot: {e}"))?;
    if !out.status.success() {
        return Err(format!("gnuplot: {}", String::from_utf8_lossy(&out.stderr)));
    }
    written.push(png);
    Ok(written)
}

fn has_gnuplot() -> bool {
    Command::new("gnuplot")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}
