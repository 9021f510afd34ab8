//! Metrics: the catalogue of what a run measures, and the store that holds the samples.
//!
//! Contract:
//! - The [`catalogue`] is the closed set of metric names thresholds and reports may use;
//!   each name has one [`Unit`]. Durations are always seconds (`f64`) at this API.
//! - A [`MetricStore`] holds *series*: samples of one metric with one exact set of
//!   [`Tags`]. Series are either exact (`Vec<f64>`, base unit) or HDR histograms
//!   (microseconds for durations, 3 significant figures), and both kinds may coexist for
//!   one metric.
//! - [`MetricStore::aggregate`] answers one [`Aggregation`] over every series a
//!   [`TagFilter`] selects. Definitions (also what thresholds mean):
//!   - `min`, `max`, `avg`: over all samples; `med` is `p(50)`.
//!   - `p(N)`: nearest rank: the smallest sample `x` such that at least `N`% of the
//!     samples are `<= x` (rank `ceil(N/100 · n)`, at least 1). Exact series give exact
//!     answers; a histogram sample stands for its bucket's highest equivalent value
//!     (HdrHistogram's own `value_at_quantile` convention), its lowest for `min` and its
//!     median for `avg`.
//!   - `count`: for [`Unit::Count`] metrics the *sum* of the samples (one sample per bot
//!     holding its count and one sample of 1 per occurrence mean the same thing, as
//!     k6 counters do); for durations and ratios the number of samples.
//!   - `rate`: `count` per second of the run's measured duration (`run_seconds`).
//!   - No matching sample: `None` (a verdict treats that as "no samples", never a pass).
//!
//! Ordered maps throughout, so iteration (and every report built from it) is byte-stable.

mod aggregation;
mod catalogue;
mod store;

use std::collections::BTreeMap;

pub use aggregation::{Aggregation, TagFilter};
pub use catalogue::{CatalogueEntry, FILTER_TAGS, Unit, catalogue, lookup};
pub use store::{Metric, MetricStore, Values};

/// The tags of one series: `group`, `bot`, `pair`, `fault`, `phase`, `track`, ...
pub type Tags = BTreeMap<String, String>;
