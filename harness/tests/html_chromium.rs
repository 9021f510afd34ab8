//! report.html opens in a real browser: headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) parses it, finds the timeline, and takes a screenshot.

use std::path::Path;
use std::process::Command;

fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("which")
            .arg(c)
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!("no chromium on PATH: `apt-get install chromium` (.ci/run installs it)");
}

fn headless(args: &[&str]) -> std::process::Output {
    let profile = tempdir("chromium-profile");
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.display()),
        ])
        .args(args)
        .output()
        .expect("chromium runs")
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/html-chromium")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn report_html_renders_in_headless_chromium_with_its_timeline() {
    let report = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../core/tests/fixtures/report.html")
        .canonicalize()
        .unwrap();
    let url = format!("file://{}", report.display());
    let dom = headless(&["--dump-dom", &url]);
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("Timeline") && dom.contains("<svg"),
        "the browser's DOM has the timeline"
    );
    assert!(
        dom.contains("ws-drop at 8.00 s"),
        "fault windows are labelled"
    );

    let shot = tempdir("shot").join("report.png");
    let out = headless(&[
        "--window-size=1200,1600",
        &format!("--screenshot={}", shot.display()),
        &url,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // A blank page compresses to a few KB; a page with plots and tables does not.
    assert!(
        png.len() > 30_000,
        "screenshot is {} bytes: nothing drawn?",
        png.len()
    );
}
