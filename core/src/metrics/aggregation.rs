//! What to compute over a metric's samples ([`Aggregation`]) and which series to take
//! them from ([`TagFilter`]). Both print in threshold syntax, so a threshold's parts
//! display the way a user writes them.

use std::fmt;

use super::Tags;

/// One number computed over samples; see the module doc of [`crate::metrics`] for the
/// exact definitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    Min,
    Max,
    Avg,
    /// `p(50)`.
    Med,
    /// `p(N)`, `0 < N <= 100`, nearest rank.
    Percentile(f64),
    Count,
    /// `count` per second of the run's measured duration.
    Rate,
}

impl fmt::Display for Aggregation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Aggregation::Min => f.write_str("min"),
            Aggregation::Max => f.write_str("max"),
            Aggregation::Avg => f.write_str("avg"),
            Aggregation::Med => f.write_str("med"),
            // `{}` on f64 is the shortest text that parses back to the same value.
            Aggregation::Percentile(n) => write!(f, "p({n})"),
            Aggregation::Count => f.write_str("count"),
            Aggregation::Rate => f.write_str("rate"),
        }
    }
}

/// Selects series by tags: a series matches when it has every tag of the filter with the
/// same value (other tags are ignored). The empty filter matches every series.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagFilter {
    pub tags: Tags,
}

impl TagFilter {
    /// The filter that matches every series.
    pub fn all() -> Self {
        Self::default()
    }

    /// This filter, also requiring `tag = value`.
    pub fn with(mut self, tag: &str, value: &str) -> Self {
        self.tags.insert(tag.to_owned(), value.to_owned());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    pub fn matches(&self, tags: &Tags) -> bool {
        self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
    }
}

/// `{group=a,bot=a-1}` (tags in name order), or nothing for the empty filter.
impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.tags.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (k, v)) in self.tags.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v}")?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_matches_subsets_of_tags() {
        let tags = Tags::from([("group".into(), "a".into()), ("bot".into(), "a-1".into())]);
        assert!(TagFilter::all().matches(&tags));
        assert!(TagFilter::all().with("group", "a").matches(&tags));
        assert!(!TagFilter::all().with("group", "b").matches(&tags));
        assert!(!TagFilter::all().with("fault", "x").matches(&tags));
    }

    #[test]
    fn aggregations_display_in_threshold_syntax() {
        let shown: Vec<String> = [
            Aggregation::Min,
            Aggregation::Med,
            Aggregation::Percentile(95.0),
            Aggregation::Percentile(99.9),
            Aggregation::Rate,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(shown, ["min", "med", "p(95)", "p(99.9)", "rate"]);
        assert_eq!(
            TagFilter::all()
                .with("group", "a")
                .with("bot", "a-1")
                .to_string(),
            "{bot=a-1,group=a}"
        );
    }
}
