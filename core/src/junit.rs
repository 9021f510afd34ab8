//! JUnit XML for CI systems: one `<testsuite>` per scenario run, one `<testcase>` per
//! threshold expression. A failed threshold is a `<failure>`; an invalid run is an
//! `<error>` on every case (it could not be judged).

use crate::html::esc as escape;
use crate::verdict::{Outcome, Verdict};

/// One judged run, as JUnit needs it.
pub struct SuiteInput<'a> {
    pub scenario: &'a str,
    pub run_id: &'a str,
    pub seconds: f64,
    pub verdict: &'a Verdict,
    /// A capacity search's knee, one line ([`crate::capacity::Knee::summary`]).
    pub capacity: Option<&'a str>,
}

fn observed(v: Option<f64>) -> String {
    match v {
        None => "no samples".to_owned(),
        Some(x) if x.is_infinite() => "inf".to_owned(),
        Some(x) => format!("{x}"),
    }
}

/// The whole document for one or more runs.
pub fn render(suites: &[SuiteInput<'_>]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"sfu-harness\">\n",
    );
    for suite in suites {
        let v = suite.verdict;
        let invalid = match &v.outcome {
            Outcome::Invalid { reason } => Some(reason.as_str()),
            _ => None,
        };
        let failures = if invalid.is_some() {
            0
        } else {
            v.thresholds.iter().filter(|t| !t.pass).count()
        };
        let errors = if invalid.is_some() {
            v.thresholds.len().max(1)
        } else {
            0
        };
        s.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">\n",
            escape(suite.scenario),
            v.thresholds.len().max(1),
            suite.seconds
        ));
        let knee = suite.capacity.map_or(String::new(), |k| {
            format!("<property name=\"capacity\" value=\"{}\"/>", escape(k))
        });
        s.push_str(&format!(
            "    <properties><property name=\"run-id\" value=\"{}\"/>{knee}</properties>\n",
            escape(suite.run_id)
        ));
        if v.thresholds.is_empty() {
            s.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"run\">",
                escape(suite.scenario)
            ));
            if let Some(reason) = invalid {
                s.push_str(&format!(
                    "<error message=\"run invalid: {}\"/>",
                    escape(reason)
                ));
            }
            s.push_str("</testcase>\n");
        }
        for t in &v.thresholds {
            let name = format!(
                "{} {}{}",
                t.key,
                t.expr,
                if t.expected_to_fail {
                    " (expected to fail)"
                } else {
                    ""
                }
            );
            s.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\">",
                escape(suite.scenario),
                escape(&name)
            ));
            if let Some(reason) = invalid {
                s.push_str(&format!(
                    "<error message=\"run invalid: {}\"/>",
                    escape(reason)
                ));
            } else if !t.pass {
                let note = t
                    .note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "<failure message=\"{} {}: observed {}{}\"/>",
                    escape(&t.key),
                    escape(&t.expr),
                    escape(&observed(t.observed)),
                    escape(&note)
                ));
            }
            s.push_str("</testcase>\n");
        }
        s.push_str("  </testsuite>\n");
    }
    s.push_str("</testsuites>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::ThresholdResult;

    fn result(key: &str, pass: bool, observed: Option<f64>) -> ThresholdResult {
        ThresholdResult {
            key: key.into(),
            metric: key.into(),
            expr: "min >= 0.99".into(),
            observed,
            pass,
            expected_to_fail: false,
            note: None,
        }
    }

    #[test]
    fn one_case_per_threshold_and_failures_carry_the_observation() {
        let v = Verdict {
            outcome: Outcome::Fail,
            thresholds: vec![
                result("continuity", false, Some(0.5)),
                result("gap<&>", true, Some(1.0)),
            ],
        };
        let xml = render(&[SuiteInput {
            scenario: "smoke",
            run_id: "r1",
            seconds: 12.5,
            verdict: &v,
            capacity: None,
        }]);
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"sfu-harness\">\n  \
<testsuite name=\"smoke\" tests=\"2\" failures=\"1\" errors=\"0\" time=\"12.500\">\n    \
<properties><property name=\"run-id\" value=\"r1\"/></properties>\n    \
<testcase classname=\"smoke\" name=\"continuity min &gt;= 0.99\"><failure message=\"continuity min &gt;= 0.99: observed 0.5\"/></testcase>\n    \
<testcase classname=\"smoke\" name=\"gap&lt;&amp;&gt; min &gt;= 0.99\"></testcase>\n  </testsuite>\n</testsuites>\n"
        );
    }

    #[test]
    fn an_invalid_run_is_an_error_not_a_failure() {
        let v = Verdict {
            outcome: Outcome::Invalid {
                reason: "interrupted".into(),
            },
            thresholds: vec![result("continuity", true, Some(1.0))],
        };
        let xml = render(&[SuiteInput {
            scenario: "s",
            run_id: "r",
            seconds: 1.0,
            verdict: &v,
            capacity: None,
        }]);
        assert!(xml.contains("failures=\"0\" errors=\"1\""), "{xml}");
        assert!(
            xml.contains("<error message=\"run invalid: interrupted\"/>"),
            "{xml}"
        );
    }
}
