//! What a plan step says to do: each detector writes the advice for its own
//! findings as it scores them, and the finding carries it; the plan only
//! orders the steps.

use crate::label::labelled;

labelled! {
    /// How much work or how much risk a step carries.
    pub enum Effort {
        /// A local change.
        Low = "low",
        /// A change across a module or an API.
        Medium = "medium",
        /// A design change.
        High = "high",
    }
}

/// A detector's advice for one of its findings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Advice {
    /// The expected gain as a sentence.
    pub(crate) statement: String,
    /// Concrete changes to try, most likely first.
    pub(crate) fixes: Vec<String>,
    /// What to have in place before changing code.
    pub(crate) prerequisites: Vec<String>,
    /// What must change in the re-run's report, completing
    /// "In `perf-report after.json`, ...".
    pub(crate) check: String,
    /// How much work the change is.
    pub(crate) complexity: Effort,
    /// How likely it is to break something.
    pub(crate) risk: Effort,
}

impl Advice {
    /// No advice yet: a finding's until its detector has written it from
    /// the scored finding (`Draft::score`), never seen outside.
    pub(crate) const PENDING: Advice = Advice {
        statement: String::new(),
        fixes: Vec::new(),
        prerequisites: Vec::new(),
        check: String::new(),
        complexity: Effort::Low,
        risk: Effort::Low,
    };
}

/// Owned copies of a list of our own sentences.
pub(crate) fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// `a 2.0x speed-up of` style phrase for a recoverable share `r = 1 - 1/S`.
pub(crate) fn speedup_phrase(r: f64) -> String {
    if (r - 0.5).abs() < 1e-9 {
        "halving".to_owned()
    } else if r >= 1.0 {
        "removing".to_owned()
    } else {
        format!("a {:.1}x speed-up of", 1.0 / (1.0 - r))
    }
}
