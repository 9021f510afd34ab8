//! The metric store: series of samples keyed by metric name and exact tags.
//!
//! Exact series keep every sample (they are small: one per bot, pair or bin); histogram
//! series hold what bots already summarised as HdrHistograms (per-packet latency) and
//! merge exactly. [`MetricStore::aggregate`] treats both as one weighted, sorted sample
//! list, so a metric may mix them and percentiles stay nearest-rank over the union.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

use super::{Aggregation, TagFilter, Tags, Unit, lookup};

/// Histograms are created with this precision (3 significant figures: 0.1 % error).
const SIGFIG: u8 = 3;

/// The samples of one series.
#[derive(Debug, Clone)]
pub enum Values {
    /// Every sample, in the metric's base unit (seconds for durations); may hold `+inf`
    /// for "never happened".
    Exact(Vec<f64>),
    /// Merged histograms; durations in microseconds, other units as recorded.
    Histogram(Histogram<u64>),
}

impl Values {
    /// How many samples the series holds.
    pub fn len(&self) -> u64 {
        match self {
            Values::Exact(v) => v.len() as u64,
            Values::Histogram(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Exact and histogram series with the same tags are kept apart (one key each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Exact,
    Histogram,
}

/// All series of one metric.
#[derive(Debug, Clone)]
pub struct Metric {
    unit: Unit,
    series: BTreeMap<(Tags, Kind), Values>,
}

impl Metric {
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// Every series, ordered by tags (exact before histogram for equal tags).
    pub fn series(&self) -> impl Iterator<Item = (&Tags, &Values)> {
        self.series.iter().map(|((tags, _), v)| (tags, v))
    }
}

/// Samples by metric name, then by tags.
#[derive(Debug, Clone, Default)]
pub struct MetricStore {
    metrics: BTreeMap<String, Metric>,
    merged: MergeCache,
}

/// The histogram series a (metric, filter) selects, added into one: a report asks the
/// same selection for several aggregates (min, median, p95, max), and a capacity run has
/// tens of thousands of series. Emptied by every change to the store.
#[derive(Default)]
struct MergeCache(Mutex<BTreeMap<(String, Tags), Merged>>);

/// The merged histogram of a selection; `None` when it selects no histogram.
type Merged = Arc<Option<Histogram<u64>>>;

impl Clone for MergeCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for MergeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MergeCache")
    }
}

/// One sample, or one histogram bucket standing for `n` samples.
struct Sample {
    lo: f64,
    mid: f64,
    hi: f64,
    n: u64,
}

impl MetricStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn metric_mut(&mut self, metric: &str) -> &mut Metric {
        self.merged
            .0
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.metrics.entry(metric.to_owned()).or_insert_with(|| {
            // Only a bug in the measuring code records an unknown name: thresholds and
            // reports could never see it. Release builds keep it as a count.
            debug_assert!(
                lookup(metric).is_some(),
                "metric `{metric}` is not in the catalogue"
            );
            Metric {
                unit: lookup(metric).map_or(Unit::Count, |e| e.unit),
                series: BTreeMap::new(),
            }
        })
    }

    /// Appends `value` (base unit: seconds for durations) to the exact series of
    /// `metric` with exactly these tags.
    pub fn record(&mut self, metric: &str, tags: Tags, value: f64) {
        let values = self
            .metric_mut(metric)
            .series
            .entry((tags, Kind::Exact))
            .or_insert(Values::Exact(Vec::new()));
        if let Values::Exact(v) = values {
            v.push(value);
        }
    }

    /// Merges `h` (microseconds for durations) into the histogram series of `metric`
    /// with exactly these tags.
    pub fn record_histogram(&mut self, metric: &str, tags: Tags, h: &Histogram<u64>) {
        let values = self
            .metric_mut(metric)
            .series
            .entry((tags, Kind::Histogram))
            .or_insert_with(|| {
                Values::Histogram(
                    Histogram::new(SIGFIG)
                        .expect("3 significant figures is a valid histogram precision"),
                )
            });
        if let Values::Histogram(mine) = values {
            // Ours auto-resizes, so adding any histogram fits.
            mine.add(h)
                .expect("an auto-resizing histogram accepts any other");
        }
    }

    /// Every metric that has at least one series, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Metric)> {
        self.metrics.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn get(&self, metric: &str) -> Option<&Metric> {
        self.metrics.get(metric)
    }

    /// The series of `metric` (none if it was never recorded).
    pub fn series(&self, metric: &str) -> impl Iterator<Item = (&Tags, &Values)> {
        self.metrics
            .get(metric)
            .into_iter()
            .flat_map(Metric::series)
    }

    /// `agg` over every sample of `metric` in a series `filter` selects; `None` when
    /// there is none. Durations come back in seconds. `run_seconds` is only used by
    /// `rate`. Definitions: module doc of [`crate::metrics`].
    pub fn aggregate(
        &self,
        metric: &str,
        filter: &TagFilter,
        agg: &Aggregation,
        run_seconds: f64,
    ) -> Option<f64> {
        let m = self.metrics.get(metric)?;
        let scale = if m.unit == Unit::Duration { 1e-6 } else { 1.0 };
        let mut samples = Vec::new();
        for ((tags, _), values) in &m.series {
            if let (true, Values::Exact(v)) = (filter.matches(tags), values) {
                samples.extend(v.iter().map(|&x| Sample {
                    lo: x,
                    mid: x,
                    hi: x,
                    n: 1,
                }));
            }
        }
        let merged = self.merged_histograms(metric, m, filter);
        if let Some(h) = merged.as_ref() {
            samples.extend(h.iter_recorded().map(|it| {
                let v = it.value_iterated_to();
                Sample {
                    lo: h.lowest_equivalent(v) as f64 * scale,
                    mid: h.median_equivalent(v) as f64 * scale,
                    hi: h.highest_equivalent(v) as f64 * scale,
                    n: it.count_at_value(),
                }
            }));
        }
        let n: u64 = samples.iter().map(|s| s.n).sum();
        if n == 0 {
            return None;
        }
        let count = || match m.unit {
            Unit::Count => samples.iter().map(|s| s.mid * s.n as f64).sum(),
            Unit::Duration | Unit::Ratio | Unit::Cores | Unit::Bytes | Unit::Bitrate => n as f64,
        };
        Some(match agg {
            Aggregation::Count => count(),
            Aggregation::Rate => count() / run_seconds,
            Aggregation::Min => samples.iter().map(|s| s.lo).min_by(f64::total_cmp)?,
            Aggregation::Max => samples.iter().map(|s| s.hi).max_by(f64::total_cmp)?,
            Aggregation::Avg => samples.iter().map(|s| s.mid * s.n as f64).sum::<f64>() / n as f64,
            Aggregation::Med => nearest_rank(&mut samples, n, 50.0),
            Aggregation::Percentile(p) => nearest_rank(&mut samples, n, *p),
        })
    }
}

impl MetricStore {
    /// Every histogram series of `m` that `filter` selects, added into one (cached).
    /// They all have the store's precision, so their buckets line up and the merged one
    /// yields the same samples, bucket by bucket, with the counts summed; what it saves
    /// is a sample per bucket per series, and sorting them.
    fn merged_histograms(&self, metric: &str, m: &Metric, filter: &TagFilter) -> Merged {
        let key = (metric.to_owned(), filter.tags.clone());
        let mut cache = self.merged.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = cache.get(&key) {
            return Arc::clone(h);
        }
        let mut merged: Option<Histogram<u64>> = None;
        for ((tags, _), values) in &m.series {
            if let (true, Values::Histogram(h)) = (filter.matches(tags), values) {
                match &mut merged {
                    Some(all) => all
                        .add(h)
                        .expect("an auto-resizing histogram accepts any other"),
                    None => merged = Some(h.clone()),
                }
            }
        }
        let merged = Arc::new(merged);
        cache.insert(key, Arc::clone(&merged));
        merged
    }
}

/// The smallest sample with at least `p`% of all `n` samples at or below it.
fn nearest_rank(samples: &mut [Sample], n: u64, p: f64) -> f64 {
    samples.sort_by(|a, b| {
        a.hi.total_cmp(&b.hi)
            .then(a.lo.partial_cmp(&b.lo).unwrap_or(Ordering::Equal))
    });
    // `as` saturates: NaN gives 0, which the clamp turns into rank 1.
    let rank = ((p / 100.0 * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for s in samples.iter() {
        seen += s.n;
        if seen >= rank {
            return s.hi;
        }
    }
    samples.last().map_or(f64::NAN, |s| s.hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(group: &str, bot: &str) -> Tags {
        Tags::from([("group".into(), group.into()), ("bot".into(), bot.into())])
    }

    fn agg(store: &MetricStore, metric: &str, filter: &TagFilter, a: Aggregation) -> Option<f64> {
        store.aggregate(metric, filter, &a, 10.0)
    }

    /// Histogram series are merged before aggregating: every aggregate over many series
    /// equals the one over a single series holding all their values, and a series
    /// recorded after an aggregate (the cache) counts in the next one.
    #[test]
    fn many_histogram_series_aggregate_as_one_and_later_records_count() {
        let hist = |values: std::ops::Range<u64>| {
            let mut h = Histogram::<u64>::new(SIGFIG).unwrap();
            for v in values {
                h.record(v * 37).unwrap();
            }
            h
        };
        let (mut many, mut one) = (MetricStore::new(), MetricStore::new());
        for (i, r) in [(0, 1..400), (1, 400..401), (2, 401..2000)] {
            many.record_histogram("latency.oneway", tags("a", &format!("a-{i}")), &hist(r));
        }
        one.record_histogram("latency.oneway", tags("a", "a-0"), &hist(1..2000));
        let all = TagFilter::default();
        for a in [
            Aggregation::Min,
            Aggregation::Max,
            Aggregation::Med,
            Aggregation::Percentile(95.0),
            Aggregation::Count,
        ] {
            assert_eq!(
                agg(&many, "latency.oneway", &all, a),
                agg(&one, "latency.oneway", &all, a),
                "{a:?}"
            );
        }
        let max = agg(&many, "latency.oneway", &all, Aggregation::Max).unwrap();
        many.record_histogram("latency.oneway", tags("a", "a-3"), &hist(5000..5001));
        assert!(agg(&many, "latency.oneway", &all, Aggregation::Max).unwrap() > max);
        assert_eq!(
            agg(&many, "latency.oneway", &all, Aggregation::Count),
            Some(2000.0)
        );
    }

    #[test]
    fn exact_percentiles_use_nearest_rank() {
        let mut s = MetricStore::new();
        for i in 1..=100 {
            s.record(
                "connect.media",
                tags("a", &format!("a-{i}")),
                f64::from(i) / 100.0,
            );
        }
        let all = TagFilter::all();
        assert_eq!(
            agg(&s, "connect.media", &all, Aggregation::Percentile(95.0)),
            Some(0.95)
        );
        assert_eq!(
            agg(&s, "connect.media", &all, Aggregation::Percentile(99.9)),
            Some(1.0)
        );
        assert_eq!(
            agg(&s, "connect.media", &all, Aggregation::Percentile(0.001)),
            Some(0.01)
        );
        assert_eq!(agg(&s, "connect.media", &all, Aggregation::Med), Some(0.5));
        assert_eq!(agg(&s, "connect.media", &all, Aggregation::Min), Some(0.01));
        assert_eq!(agg(&s, "connect.media", &all, Aggregation::Max), Some(1.0));
        assert_eq!(
            agg(&s, "connect.media", &all, Aggregation::Count),
            Some(100.0)
        );
        assert_eq!(
            agg(&s, "connect.media", &all, Aggregation::Rate),
            Some(10.0)
        );
        let avg = agg(&s, "connect.media", &all, Aggregation::Avg).unwrap();
        assert!((avg - 0.505).abs() < 1e-12, "{avg}");
    }

    #[test]
    fn no_matching_sample_is_none_not_zero() {
        let mut s = MetricStore::new();
        s.record("continuity", tags("a", "a-1"), 1.0);
        assert_eq!(
            agg(
                &s,
                "continuity",
                &TagFilter::all().with("group", "b"),
                Aggregation::Count
            ),
            None
        );
        assert_eq!(agg(&s, "gap", &TagFilter::all(), Aggregation::Max), None);
    }

    #[test]
    fn filter_selects_series_by_tags() {
        let mut s = MetricStore::new();
        s.record("continuity", tags("a", "a-1"), 0.5);
        s.record("continuity", tags("b", "b-1"), 1.0);
        s.record("continuity", tags("b", "b-1"), 0.9);
        let b = TagFilter::all().with("group", "b");
        assert_eq!(agg(&s, "continuity", &b, Aggregation::Min), Some(0.9));
        assert_eq!(
            agg(&s, "continuity", &TagFilter::all(), Aggregation::Min),
            Some(0.5)
        );
        assert_eq!(s.series("continuity").count(), 2);
    }

    #[test]
    fn never_happened_is_infinite_and_dominates_max() {
        let mut s = MetricStore::new();
        s.record("connect.media", tags("a", "a-1"), 0.3);
        s.record("connect.media", tags("a", "a-2"), f64::INFINITY);
        assert_eq!(
            agg(&s, "connect.media", &TagFilter::all(), Aggregation::Max),
            Some(f64::INFINITY)
        );
        assert_eq!(
            agg(&s, "connect.media", &TagFilter::all(), Aggregation::Min),
            Some(0.3)
        );
    }

    #[test]
    fn count_metrics_count_the_sum_of_their_samples() {
        let mut s = MetricStore::new();
        s.record("reconnects", tags("a", "a-1"), 0.0);
        s.record("reconnects", tags("a", "a-2"), 3.0);
        assert_eq!(
            agg(&s, "reconnects", &TagFilter::all(), Aggregation::Count),
            Some(3.0)
        );
        assert_eq!(
            agg(&s, "reconnects", &TagFilter::all(), Aggregation::Rate),
            Some(0.3)
        );
        assert_eq!(
            agg(&s, "reconnects", &TagFilter::all(), Aggregation::Max),
            Some(3.0)
        );
    }

    #[test]
    fn histograms_merge_and_come_back_in_seconds() {
        let mut s = MetricStore::new();
        let mut h1 = Histogram::<u64>::new(3).unwrap();
        let mut h2 = Histogram::<u64>::new(3).unwrap();
        for _ in 0..90 {
            h1.record(10_000).unwrap(); // 10 ms
        }
        for _ in 0..10 {
            h2.record(200_000).unwrap(); // 200 ms
        }
        s.record_histogram("latency.oneway", tags("a", "a-1"), &h1);
        s.record_histogram("latency.oneway", tags("a", "a-1"), &h2);
        assert_eq!(s.series("latency.oneway").count(), 1);
        let all = TagFilter::all();
        let p90 = agg(&s, "latency.oneway", &all, Aggregation::Percentile(90.0)).unwrap();
        let p91 = agg(&s, "latency.oneway", &all, Aggregation::Percentile(91.0)).unwrap();
        assert!((p90 - 0.010).abs() < 0.010 * 1e-3, "{p90}");
        assert!((p91 - 0.200).abs() < 0.200 * 1e-3, "{p91}");
        assert_eq!(
            agg(&s, "latency.oneway", &all, Aggregation::Count),
            Some(100.0)
        );
    }

    #[test]
    fn exact_and_histogram_series_mix_in_one_ranking() {
        let mut s = MetricStore::new();
        let mut h = Histogram::<u64>::new(3).unwrap();
        h.record_n(1_000, 3).unwrap(); // three samples of 1 ms
        s.record_histogram("latency.oneway", tags("a", "a-1"), &h);
        s.record("latency.oneway", tags("a", "a-2"), 0.5);
        let all = TagFilter::all();
        assert_eq!(
            agg(&s, "latency.oneway", &all, Aggregation::Count),
            Some(4.0)
        );
        assert_eq!(agg(&s, "latency.oneway", &all, Aggregation::Max), Some(0.5));
        let p75 = agg(&s, "latency.oneway", &all, Aggregation::Percentile(75.0)).unwrap();
        assert!((p75 - 0.001).abs() < 1e-6, "{p75}");
        assert_eq!(s.series("latency.oneway").count(), 2);
    }
}
