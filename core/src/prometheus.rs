//! SFU-side metrics: LiveKit's Prometheus endpoint, read during a run.
//!
//! [`parse`] reads the text exposition format (what `GET /metrics` returns) and
//! [`summarize`] reduces a scrape to the few series a report shows, summed over the
//! labels a harness run does not care about (node id, country, transmission kind).
//! Names are LiveKit v1.13.5's, checked by scraping the real server:
//!
//! | series | from |
//! |---|---|
//! | `participants` | `livekit_participant_total` |
//! | `rooms` | `livekit_room_total` |
//! | `packets.in`, `packets.out` | `livekit_packet_total` by `direction` (all transmissions) |
//! | `bytes.in`, `bytes.out` | `livekit_packet_bytes` by `direction` |
//! | `packets.retransmitted` | `livekit_packet_total{transmission="retransmit"}` |
//! | `nacks` | `livekit_nack_total` (exported once the first NACK is counted) |
//! | `packet-loss.percent` | mean of `livekit_packet_loss_percent` (its `_sum` / `_count`) |
//! | `join-latency.ms` | mean of `livekit_session_join_latency_ms` |
//!
//! A series the server has not exported yet is absent from the summary, not zero.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the text exposition format. Comments and blank lines are skipped; a line that
/// is not a sample is an error naming its number (1-based).
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        out.push(sample(line).ok_or_else(|| format!("metrics line {} is not a sample", i + 1))?);
    }
    Ok(out)
}

fn sample(line: &str) -> Option<Sample> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => break i,
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '"' => break,
                            '\\' => value.push(match chars.next()?.1 {
                                'n' => '\n',
                                c => c,
                            }),
                            c => value.push(c),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                c => key.push(c),
            }
        };
        rest = &body[end + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    (!name.is_empty()).then(|| Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The report's series from one scrape (see the module table).
pub fn summarize(samples: &[Sample]) -> BTreeMap<String, f64> {
    let sum = |name: &str, keep: &dyn Fn(&Sample) -> bool| -> Option<f64> {
        let mut it = samples
            .iter()
            .filter(|s| s.name == name && keep(s))
            .peekable();
        it.peek()?;
        Some(it.map(|s| s.value).sum())
    };
    let label = |key: &'static str, want: &'static str| {
        move |s: &Sample| s.labels.get(key).is_some_and(|v| v == want)
    };
    let all = |_: &Sample| true;
    let mean = |base: &str| -> Option<f64> {
        let n = sum(&format!("{base}_count"), &all)?;
        (n > 0.0).then(|| sum(&format!("{base}_sum"), &all).unwrap_or(0.0) / n)
    };
    let series = [
        ("participants", sum("livekit_participant_total", &all)),
        ("rooms", sum("livekit_room_total", &all)),
        (
            "packets.in",
            sum("livekit_packet_total", &label("direction", "incoming")),
        ),
        (
            "packets.out",
            sum("livekit_packet_total", &label("direction", "outgoing")),
        ),
        (
            "packets.retransmitted",
            sum("livekit_packet_total", &label("transmission", "retransmit")),
        ),
        (
            "bytes.in",
            sum("livekit_packet_bytes", &label("direction", "incoming")),
        ),
        (
            "bytes.out",
            sum("livekit_packet_bytes", &label("direction", "outgoing")),
        ),
        ("nacks", sum("livekit_nack_total", &all)),
        ("packet-loss.percent", mean("livekit_packet_loss_percent")),
        ("join-latency.ms", mean("livekit_session_join_latency_ms")),
    ];
    series
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = r#"# HELP livekit_participant_total
# TYPE livekit_participant_total gauge
livekit_participant_total{node_id="ND_1",node_type="SERVER"} 4
livekit_room_total{node_id="ND_1",node_type="SERVER"} 1
livekit_packet_total{country="",direction="incoming",node_id="ND_1",transmission="initial"} 1534
livekit_packet_total{country="",direction="incoming",node_id="ND_1",transmission="retransmit"} 6
livekit_packet_total{country="",direction="outgoing",node_id="ND_1",transmission="initial"} 1548
livekit_packet_loss_percent_sum{direction="incoming",type="AUDIO"} 3
livekit_packet_loss_percent_count{direction="incoming",type="AUDIO"} 6
livekit_session_join_latency_ms_sum{protocol_version="17"} 38
livekit_session_join_latency_ms_count{protocol_version="17"} 2
livekit_session_join_latency_ms_bucket{le="+Inf",protocol_version="17"} 2
weird_escape{path="a\"b\\c"} 1.5e3 1700000000
"#;

    #[test]
    fn a_livekit_scrape_is_summarized_into_the_report_series() {
        let samples = parse(SCRAPE).unwrap();
        assert_eq!(samples.len(), 11);
        assert_eq!(samples[10].labels["path"], "a\"b\\c");
        assert_eq!(samples[10].value, 1500.0);
        assert_eq!(samples[9].labels["le"], "+Inf");
        let s = summarize(&samples);
        let want: BTreeMap<String, f64> = [
            ("participants", 4.0),
            ("rooms", 1.0),
            ("packets.in", 1540.0),
            ("packets.out", 1548.0),
            ("packets.retransmitted", 6.0),
            ("packet-loss.percent", 0.5),
            ("join-latency.ms", 19.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(s, want, "nacks is absent: never exported, not zero");
    }

    #[test]
    fn a_line_that_is_not_a_sample_is_an_error_with_its_number() {
        assert_eq!(
            parse("ok 1\nbroken{a=\"x\" 2\n").unwrap_err(),
            "metrics line 2 is not a sample"
        );
        assert_eq!(
            parse("x{a=b} 1").unwrap_err(),
            "metrics line 1 is not a sample"
        );
        assert!(parse("x NaN").unwrap()[0].value.is_nan());
    }
}
