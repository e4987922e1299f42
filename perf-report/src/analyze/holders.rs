//! The span that held what a waiting span waited for, read from the order
//! in which their long spans closed (the dump's `long_spans`).
//!
//! A task that holds a `tokio::sync::Mutex` guard (or a permit, or a
//! pooled connection) across a slow `.await` makes every task that needs
//! it wait out its wait, and each of those waits ends just after the
//! holder's span closes. A waiting span's findings said it waited and
//! listed the lock among five fixes; the holder, idle itself, had none. A
//! fresh service whose `refresh_config` held the config's lock across a
//! 30 ms fetch every 100 ms: `handle` was a critical wait whose first step
//! was to add spans around its awaits; fetching before locking served 44%
//! more requests.
//!
//! A wait (one of the waiter's longest long spans, idle at least half its
//! wall time) is tied to a holder's span when the holder's span was open
//! when the wait began and closed before it ended, within the waiter's own
//! busy time and [`SLACK_NS`] (or, where that ties too few, [`STRETCH`] of
//! its idle time more). Chance ties are counted too: the holder's spans close at
//! some rate, and a window of that length after any one of them catches a
//! random close that often. A holder is named when at least half the
//! waits are tied, four times what chance gives, and few waits end just
//! before one of its spans closes instead (two tasks woken by the same
//! event close in either order; a waiter released by a holder closes
//! after it).
//!
//! A holder whose spans each release several waits holds something the
//! waiters share (a lock); one whose spans each end one wait hands
//! something over (a producer sending on a channel, a task's result), and
//! the fix is to have it sooner, not to release it. A consumer awaiting a
//! producer's pages first read "`produce` holds what they wait for";
//! four producers processed 3.4 times the pages.

use perf_layer::dump::{CallsiteStats, LongSpan, LongSpans};

use crate::analyze::context::Context;
use crate::analyze::finding::Evidence;
use crate::units::{self, Unit};

/// A long span is a wait when idle at least this share of its wall time.
const MIN_IDLE: f64 = 0.5;

/// A tied wait ends at most this long after the holder's span closed, past
/// its own busy time (the waiter's wake-up and its turn on a worker; a
/// queue of waiters each taking the lock in turn), ns.
const SLACK_NS: u64 = 1_000_000;

/// Waits released by each of the holder's spans, on average, from which
/// it holds something its waiters share (a lock); under it, each of its
/// spans ends one wait, a hand-off (1.5).
const MIN_SHARED: f64 = 1.5;

/// A child of the callsite that tied the most, with at least this share
/// of its ties, is what it awaited while holding (0.5): open when the
/// waits began, it closed before them (its close is further from theirs
/// than its parent's, so its narrow window ties fewer under load).
const CHILD_TIES: f64 = 0.5;

/// A parent of the callsite that tied the most, with at least this share
/// of its ties, is the holder, holding across it (0.5).
const PARENT_TIES: f64 = 0.5;

/// Where the window of [`SLACK_NS`] past a wait's busy time ties too few,
/// this share of its idle time is added to it: a lock's waiter whose span
/// sleeps on a 1 ms timer tick after the lock ended 2.2 to 2.7 ms after a
/// 6.4 ms holder closed, 8.9 ms into its wait (0.25).
const STRETCH: f64 = 0.25;

/// Bounds on what one reading takes in, so that a hostile dump's
/// thousands of callsites and spans cannot make it run for minutes: the
/// candidates with long spans read (in the dump's order), the spans and
/// waits of each read (perf-layer writes at most 256 and 320), and the
/// holder's spans looked at in one wait's window (more than that close
/// in it by chance alone).
const MAX_CANDIDATES: usize = 1_024;
/// Waiting spans a report reads a holder for.
pub(crate) const MAX_READS: usize = 32;
const MAX_SPANS: usize = 512;
const MAX_IN_WINDOW: usize = 16;

/// Fewest waits a holder is read from.
const MIN_WAITS: usize = 8;

/// At least this share of the waits tied to one holder...
const MIN_TIED: f64 = 0.5;

/// ...at least this many times the ties chance would give...
const MIN_OVER_CHANCE: f64 = 4.0;

/// ...and waits that ended just before one of its spans closed at most
/// this share of the tied ones.
const MAX_BEFORE: f64 = 0.25;

/// A callsite whose spans held what another's waited for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Holder {
    /// Its index in the dump.
    pub(crate) index: usize,
    /// The callsite whose closes the waits ended after: the holder, or
    /// its child awaited while holding (`across`).
    pub(crate) tied_on: usize,
    /// The waits that ended just after one of its spans closed...
    pub(crate) tied: usize,
    /// ...of the waiter's long waits read...
    pub(crate) waits: usize,
    /// ...its longest over the run, or else its latest too.
    pub(crate) longest: bool,
    /// Its spans those waits ended after: fewer than the waits where each
    /// released several (a lock's waiters), as many where each handed
    /// over one thing (a channel's item, a task's result).
    pub(crate) released: usize,
    /// The ties chance would give.
    pub(crate) by_chance: f64,
    /// Its child that tied at least half as many: what it awaited while
    /// holding.
    pub(crate) across: Option<usize>,
    /// Why it holds, where its spans end one wait a span ([`Queued`]).
    pub(crate) queued: Option<Queued>,
    /// The holder's own holder, where the holder waits too and its waits
    /// end after a span that holds what it waits for ([`Holder::behind`]):
    /// where the queue begins.
    pub(crate) behind: Option<Box<Holder>>,
}

/// Why a holder whose spans end one of a waiter's waits a span holds what
/// it waits for, not hands it over ([`Holder::queued_on`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Queued {
    /// Its spans end several waits a span of another waiting callsite (by
    /// index), this many.
    HoldsForOthers(usize, f64),
    /// The waiter itself holds what another waiting callsite (by index)
    /// waits for: it waits to take a lock, in its queue.
    WaiterHolds(usize),
}

/// The holder of what callsite `waiter`'s waits waited for, where one
/// callsite's long spans account for them.
///
/// A holder's child that it awaits while holding (`fetch_config` inside
/// `refresh_config`) was open when the waits began and closed just before
/// its parent, so it ties as many, or more: a holder preempted between
/// releasing the lock (or sending the item) and its span's close closes
/// after the waiter it woke. The callsite that tied the most gives the
/// figures; its parent, when it tied at least [`PARENT_TIES`] as many, is
/// the holder, holding across it. Else its child that tied at least
/// [`CHILD_TIES`] as many is what it awaited. A child that takes the lock
/// itself releases it at its own close, well before a parent that works
/// on, which then ties none.
pub(crate) fn of(cx: &Context<'_>, waiter: usize) -> Option<Holder> {
    let w = cx.dump.callsites.get(waiter)?.long_spans.as_ref()?;
    let ancestors = ancestors(cx, waiter);
    let all: Vec<(usize, Ties)> = cx
        .callsites()
        .filter(|&(i, _, _)| i != waiter && !ancestors.contains(&i))
        .filter_map(|(i, cs, _)| cs.long_spans.as_ref().map(|h| (i, h)))
        .take(MAX_CANDIDATES)
        .map(|(i, h)| {
            let narrow = ties(w, h, 0.0, 0.0);
            // A waiter whose own waits go on after the release (a timer,
            // a second await) ends later: the window widens with its wait,
            // and chance with it.
            (
                i,
                if tied_enough(&narrow) {
                    narrow
                } else {
                    ties(w, h, STRETCH, 0.0)
                },
            )
        })
        .collect();
    let &(best, t) = all
        .iter()
        .filter(|(_, t)| tied_enough(t))
        .max_by_key(|(_, t)| t.tied)?;
    let id = |i: usize| cx.dump.callsites[i].id;
    let is_edge =
        |parent: usize, child: usize| cx.edges_into(id(child)).any(|e| e.parent == id(parent));
    // The candidate that tied the most of those `linked` to `best`, with
    // at least `share` of its ties.
    let most_tied = |share: f64, linked: &dyn Fn(usize) -> bool| {
        all.iter()
            .filter(|&&(c, ct)| ct.tied as f64 >= share * t.tied as f64 && linked(c))
            .max_by_key(|(_, ct)| ct.tied)
            .map(|&(c, _)| c)
    };
    let (index, across) = match most_tied(PARENT_TIES, &|p| is_edge(p, best)) {
        Some(parent) => (parent, Some(best)),
        None => (best, most_tied(CHILD_TIES, &|c| is_edge(best, c))),
    };
    Some(Holder {
        index,
        tied_on: best,
        across,
        tied: t.tied,
        waits: t.waits,
        longest: t.longest,
        released: t.released,
        by_chance: t.by_chance,
        queued: None,
        behind: None,
    })
}

/// A span stalling a worker may open this share of a wait's idle time
/// into it ([`tied_late`]): it holds the worker through the rest.
const STALL_LATE: f64 = 0.5;

/// The long spans of `sources` read as one (a runtime's workers, each of
/// which one of them may hold): whole from the latest of their
/// `complete_after_ns`, so they are every long span of each from there
/// on; `None` when none has long spans.
pub(crate) fn merged(cx: &Context<'_>, sources: &[usize]) -> Option<LongSpans> {
    let held: Vec<&LongSpans> = sources
        .iter()
        .filter_map(|&i| cx.dump.callsites.get(i)?.long_spans.as_ref())
        .collect();
    let complete_after_ns = held.iter().map(|h| h.complete_after_ns).max()?;
    Some(LongSpans {
        threshold_ns: held.iter().map(|h| h.threshold_ns).min().unwrap_or(0),
        complete_after_ns,
        spans: held
            .iter()
            .flat_map(|h| h.spans.iter().copied())
            .filter(|s| s.closed_ns > complete_after_ns)
            .collect(),
        longest_waits: Vec::new(),
    })
}

/// How many of `waiter`'s long waits ended just after one of `held`'s
/// long spans closed that held it through them ([`merged`] spans; each
/// may open up to [`STALL_LATE`] of the wait's idle time into it), when
/// enough did to say so (the bars a holder's ties clear); `None` else.
/// Returns the waits read, those tied, and what chance would tie.
pub(crate) fn tied_late(
    cx: &Context<'_>,
    waiter: usize,
    held: &LongSpans,
) -> Option<(usize, usize, f64)> {
    let w = cx.dump.callsites.get(waiter)?.long_spans.as_ref()?;
    let narrow = ties(w, held, 0.0, STALL_LATE);
    let t = if tied_enough(&narrow) {
        narrow
    } else {
        ties(w, held, STRETCH, STALL_LATE)
    };
    tied_enough(&t).then_some((t.waits, t.tied, t.by_chance))
}

/// The callsites above `waiter` in the call graph. A waiter's parent
/// closes after it, but another call's parent may close just before it
/// ends (the waiter ahead in the lock's queue, its parent closing at once):
/// a holder among the waiter's own callers would name the queue, not what
/// holds it.
fn ancestors(cx: &Context<'_>, waiter: usize) -> Vec<usize> {
    let mut found = vec![waiter];
    let mut next = 0;
    while next < found.len() && found.len() <= MAX_ANCESTORS {
        let id = cx.dump.callsites[found[next]].id;
        for e in cx.edges_into(id) {
            if let Some(i) = cx.index_of(e.parent).filter(|i| !found.contains(i)) {
                found.push(i);
            }
        }
        next += 1;
    }
    found.remove(0);
    found
}

/// Callers read above a waiter, at most (a bound on a hostile dump's graph).
const MAX_ANCESTORS: usize = 64;

/// How a waiter's long waits ended against a candidate's long spans.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ties {
    /// The waits read are the waiter's longest (else its latest too).
    longest: bool,
    waits: usize,
    tied: usize,
    /// The holder's spans the tied waits ended after.
    released: usize,
    before: usize,
    by_chance: f64,
}

fn tied_enough(t: &Ties) -> bool {
    t.waits >= MIN_WAITS
        && t.tied as f64 >= MIN_TIED * t.waits as f64
        && t.tied as f64 >= MIN_OVER_CHANCE * t.by_chance
        && t.before as f64 <= MAX_BEFORE * t.tied as f64
}

/// `stretch`: the share of each wait's idle time added to its window;
/// `late`: the share of it into the wait the holder's span may open (0: a
/// lock's holder holds before the wait begins; a span stalling a runtime
/// worker may begin after a task's own timer did, and still hold its
/// wake-up past it).
fn ties(waiter: &LongSpans, holder: &LongSpans, stretch: f64, late: f64) -> Ties {
    // The holder's every long span that closed after this is known; the
    // waiter's waits are a sample, which a wait left out does not bias.
    let complete = holder.complete_after_ns;
    let mut spans: Vec<&LongSpan> = holder
        .spans
        .iter()
        .filter(|h| h.closed_ns > complete && h.opened_ns <= h.closed_ns)
        .collect();
    spans.sort_unstable_by_key(|h| h.closed_ns);
    // perf-layer writes at most 256; a hostile dump's more are not read.
    let spans = &spans[spans.len().saturating_sub(MAX_SPANS)..];
    let is_wait = |w: &&LongSpan| {
        let wall = w.closed_ns.saturating_sub(w.opened_ns);
        w.opened_ns > complete
            && wall > 0
            && w.idle_ns as f64 >= MIN_IDLE * wall as f64
            && w.idle_ns <= wall
    };
    // Its longest waits over the run, the ones a holder would lengthen;
    // its latest too where too few of those fall in the part of the run
    // the holder's spans are known for. A callsite whose every call is
    // long (a 1 ms timer tick) has latest waits that are its usual ones:
    // a lock's victims were 32 of 141.
    let mut waits: Vec<&LongSpan> = waiter.longest_waits.iter().filter(is_wait).collect();
    let longest = waits.len() >= MIN_WAITS;
    if !longest {
        waits.extend(waiter.spans.iter().filter(is_wait));
    }
    // A wait both among the latest and the longest counts once.
    waits.sort_unstable_by_key(|w| (w.closed_ns, w.opened_ns, w.idle_ns));
    waits.dedup();
    waits.truncate(MAX_SPANS);
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return Ties {
            longest,
            waits: waits.len(),
            tied: 0,
            released: 0,
            before: 0,
            by_chance: 0.0,
        };
    };
    // The holder's spans close this often, a ns, over the part of the run
    // its spans are known for.
    let end = last
        .closed_ns
        .max(waits.iter().map(|w| w.closed_ns).max().unwrap_or(0));
    let from = complete.max(first.opened_ns.min(first.closed_ns));
    let rate = spans.len() as f64 / end.saturating_sub(from).max(1) as f64;
    let (mut tied, mut before, mut by_chance) = (0, 0, 0.0);
    // The holder's spans that ended a wait.
    let mut released = vec![false; spans.len()];
    for w in &waits {
        let busy = w.closed_ns - w.opened_ns - w.idle_ns;
        let window = busy
            .saturating_add(SLACK_NS)
            .saturating_add((stretch * w.idle_ns as f64) as u64);
        // The last of the holder's spans open when the wait began that
        // closed in `lo..=hi`.
        let closes_in = |lo: u64, hi: u64| {
            let start = spans.partition_point(|h| h.closed_ns < lo);
            (start..spans.len())
                .take(MAX_IN_WINDOW)
                .take_while(|&k| spans[k].closed_ns <= hi)
                .filter(|&k| {
                    let by = w.opened_ns.saturating_add((late * w.idle_ns as f64) as u64);
                    spans[k].opened_ns < by && spans[k].closed_ns > by
                })
                .last()
        };
        if let Some(k) = closes_in(
            w.closed_ns.saturating_sub(window).max(w.opened_ns + 1),
            w.closed_ns,
        ) {
            tied += 1;
            released[k] = true;
        } else if closes_in(
            w.closed_ns.saturating_add(1),
            w.closed_ns.saturating_add(window),
        )
        .is_some()
        {
            before += 1;
        }
        by_chance += (rate * window as f64).min(1.0);
    }
    Ties {
        longest,
        waits: waits.len(),
        tied,
        released: released.iter().filter(|&&r| r).count(),
        before,
        by_chance,
    }
}

impl Holder {
    /// Whether its spans each released several waits: it holds something
    /// they share (a lock), not one thing handed to each.
    pub(crate) fn shared(&self) -> bool {
        self.queued.is_some() || self.per_span() >= MIN_SHARED
    }

    /// Reads it as holding what this waiter waits for where its spans end
    /// one wait a span but `other` (another waiter's reading, `other_waiter`
    /// by index; `waiter`, this one's) says it holds something shared: its
    /// spans end several of another waiter's waits a span, or this waiter
    /// itself holds what another waits for. One waiter task in a lock's
    /// queue has one wait a holder span to end, whatever it waits for. A
    /// fresh service's `export_snapshot` held a `tokio::sync::RwLock`'s
    /// read guard across a 20 ms upload: sixteen clients' `lookup` waits
    /// tied to it, four a span (or, in other runs, to the writer queued
    /// behind it), and the one writer task's `update_price`, one a span,
    /// read "it waits for what `export_snapshot` hands over as it ends (a
    /// channel's item, a task's result)", its fix more producers.
    pub(crate) fn queued_on(&mut self, other: &Holder, other_waiter: usize, waiter: usize) {
        if self.shared() || !other.shared() {
            return;
        }
        if other.index == self.index {
            self.queued = Some(Queued::HoldsForOthers(other_waiter, other.per_span()));
        } else if other.index == waiter {
            self.queued = Some(Queued::WaiterHolds(other_waiter));
        }
    }

    /// Names the holder's own holder, `of_holder` (the reading of the
    /// holder as a waiter; `waiter`, this reading's, by index), where it
    /// holds something shared: the holder waits in the same queue, and
    /// what the first in it holds is the fix. The readers of a
    /// `tokio::sync::RwLock` waited behind a writer that waited behind a
    /// read guard held across an upload: "`update_price` holds what they
    /// wait for", with the writer's fix (release it before it waits), where
    /// the writer waits before it takes the lock.
    pub(crate) fn behind(&mut self, of_holder: &Holder, waiter: usize) {
        // A cycle (the holder's holder is the waiter, or itself) names no
        // root.
        if self.shared()
            && of_holder.shared()
            && of_holder.index != self.index
            && of_holder.index != waiter
        {
            let mut root = of_holder.clone();
            root.behind = None;
            self.behind = Some(Box::new(root));
        }
    }

    /// The waits its spans ended, a span.
    fn per_span(&self) -> f64 {
        self.tied as f64 / self.released.max(1) as f64
    }

    /// The finding's summary of it: "; 32 of its 32 longest waits over
    /// 1.00 ms ended just after a `refresh_config` span closed that was
    /// open when they began, 4.6 a span (chance would tie 0.3):
    /// `refresh_config` holds what they wait for, across `fetch_config`
    /// (31.1 ms a call)".
    pub(crate) fn clause(&self, cx: &Context<'_>) -> String {
        let ties = format!(
            "; {} of its {} {} waits over {} ended just after a `{}` span closed that was open when they began{}",
            self.tied,
            self.waits,
            if self.longest { "longest" } else { "latest" },
            units::ns(self.threshold_ns(cx) as f64),
            cx.rows[self.tied_on].location.label,
            if self.tied_on == self.index {
                String::new()
            } else {
                format!(" (inside `{}`)", self.label(cx))
            },
        );
        let behind = self.behind.as_ref().map_or(String::new(), |root| {
            format!(
                ", and waits itself for what `{}` holds{}",
                root.label(cx),
                root.across_clause(cx)
            )
        });
        match self.queued {
            Some(Queued::HoldsForOthers(other, per_span)) => format!(
                "{ties}, one a span (chance would tie {:.1}), as it ends {per_span:.1} of `{}`'s a span: `{}` holds what they wait for{}{behind}",
                self.by_chance,
                cx.rows[other].location.label,
                self.label(cx),
                self.across_clause(cx),
            ),
            Some(Queued::WaiterHolds(other)) => format!(
                "{ties}, one a span (chance would tie {:.1}), where it holds what `{}` waits for itself, so it waits to take it: `{}` holds what they wait for{}{behind}",
                self.by_chance,
                cx.rows[other].location.label,
                self.label(cx),
                self.across_clause(cx),
            ),
            None => self.unqueued_clause(cx, &ties, &behind),
        }
    }

    fn unqueued_clause(&self, cx: &Context<'_>, ties: &str, behind: &str) -> String {
        if self.shared() {
            format!(
                "{ties}, {:.1} a span (chance would tie {:.1}): `{}` holds what they wait for{}{behind}",
                self.per_span(),
                self.by_chance,
                self.label(cx),
                self.across_clause(cx),
            )
        } else {
            format!(
                "{ties}, one a span (chance would tie {:.1}): it waits for what `{}` hands over as it ends (a channel's item, a task's result){}",
                self.by_chance,
                self.label(cx),
                self.across.map_or(String::new(), |c| format!(
                    ", once its `{}` ({} a call) is done",
                    cx.rows[c].location.label,
                    units::ns(mean_wall_ns(&cx.dump.callsites[c]))
                )),
            )
        }
    }

    /// The finding's evidence of it.
    pub(crate) fn evidence(&self) -> Evidence {
        Evidence::new(
            "its long waits that ended just after a span of the holder closed",
            self.tied as f64 / self.waits.max(1) as f64,
            Unit::Share,
            Some(MIN_TIED),
        )
    }

    /// The first fix: release what the holder holds before it waits, or
    /// have what it hands over sooner.
    pub(crate) fn fix(&self, cx: &Context<'_>) -> String {
        if let Some(root) = &self.behind {
            return root.fix(cx);
        }
        let cs = &cx.dump.callsites[self.index];
        let label = self.label(cx);
        let its_wait = self.across.map_or_else(
            || {
                format!(
                    "it is idle {} of its {} a call",
                    units::pct(idle_share(cs)),
                    units::ns(mean_wall_ns(cs)),
                )
            },
            |c| {
                format!(
                    "it awaits `{}`, {} a call, and is idle {} of its {} a call",
                    cx.rows[c].location.label,
                    units::ns(mean_wall_ns(&cx.dump.callsites[c])),
                    units::pct(idle_share(cs)),
                    units::ns(mean_wall_ns(cs)),
                )
            },
        );
        if self.shared() && idle_share(cs) < MIN_IDLE {
            // It holds while it computes, not while it waits.
            format!(
                "Do `{label}`'s work outside what it holds (it is busy {} of its {} a call): build the new value before taking the lock's guard (a `tokio::sync::Mutex` included) and take it only to swap the value in; a long computation inside an async task also stalls its runtime worker (`tokio::task::spawn_blocking`)",
                units::pct(1.0 - idle_share(cs)),
                units::ns(mean_wall_ns(cs)),
            )
        } else if self.shared() {
            format!(
                "Release what `{label}` holds before it waits ({its_wait}): a lock's guard (a `tokio::sync::Mutex` included), a semaphore permit or a pooled connection held across its `.await`s makes every task that needs it wait out its wait; await the slow call first and take the lock only to write, or copy what you need and drop the guard"
            )
        } else {
            format!(
                "Have what `{label}` hands over sooner ({its_wait}): start its work earlier or run more of it side by side (more producers, the next item fetched while this one is processed, a `buffered(n)` stream); its own findings are this wait's"
            )
        }
    }

    /// The step before the fixes.
    pub(crate) fn prerequisite(&self, cx: &Context<'_>, waiter: &str) -> String {
        if let Some(root) = &self.behind {
            return format!(
                "Find what `{}` holds that `{}` and {waiter} take (a lock, a permit, a connection)",
                root.label(cx),
                self.label(cx)
            );
        }
        if self.shared() {
            format!(
                "Find what `{}` holds that {waiter} takes (a lock, a permit, a connection)",
                self.label(cx)
            )
        } else {
            format!(
                "Find what {waiter} awaits that `{}` sends or completes (a channel, a oneshot, a task's `JoinHandle`)",
                self.label(cx)
            )
        }
    }

    /// ", across `fetch_config` (31.2 ms a call)", or nothing.
    fn across_clause(&self, cx: &Context<'_>) -> String {
        self.across.map_or(String::new(), |c| {
            format!(
                ", across `{}` ({} a call)",
                cx.rows[c].location.label,
                units::ns(mean_wall_ns(&cx.dump.callsites[c]))
            )
        })
    }

    fn label<'c>(&self, cx: &'c Context<'_>) -> &'c str {
        &cx.rows[self.index].location.label
    }

    fn threshold_ns(&self, cx: &Context<'_>) -> u64 {
        cx.dump.callsites[self.tied_on]
            .long_spans
            .as_ref()
            .map_or(1_000_000, |l| l.threshold_ns)
    }
}

fn mean_wall_ns(cs: &CallsiteStats) -> f64 {
    cs.wall_ns.sum as f64 / cs.calls.max(1) as f64
}

fn idle_share(cs: &CallsiteStats) -> f64 {
    crate::stats::share(cs.idle_ns.sum as f64, cs.wall_ns.sum as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn long(spans: &[(u64, u64, u64)]) -> LongSpans {
        LongSpans {
            threshold_ns: MS,
            complete_after_ns: 0,
            longest_waits: Vec::new(),
            spans: spans
                .iter()
                .map(|&(opened_ns, closed_ns, idle_ns)| LongSpan {
                    opened_ns,
                    closed_ns,
                    idle_ns,
                })
                .collect(),
        }
    }

    /// A holder opening every 100 ms for 30 ms (a config refresh holding
    /// the lock across its fetch), and two waiters a cycle that began
    /// inside it and ended 50 µs and 120 µs after it.
    fn lock_held_across_an_await() -> (LongSpans, LongSpans) {
        let mut holder = Vec::new();
        let mut waits = Vec::new();
        for cycle in 0..10 {
            let start = cycle * 100 * MS;
            holder.push((start, start + 30 * MS, 29 * MS));
            for (began, after) in [(5 * MS, 50_000), (20 * MS, 120_000)] {
                let end = start + 30 * MS + after;
                waits.push((start + began, end, end - start - began - 40_000));
            }
        }
        waits.sort_by_key(|w| w.1);
        (long(&waits), long(&holder))
    }

    #[test]
    fn waits_that_end_just_after_the_holder_are_tied_to_it() {
        let (waiter, holder) = lock_held_across_an_await();
        let t = ties(&waiter, &holder, 0.0, 0.0);
        assert_eq!((t.waits, t.tied, t.before, t.released), (20, 20, 0, 10));
        // Ten closes in a second, a window of 1.04 ms after each: about a
        // hundredth of a wait.
        assert!(t.by_chance < 0.5, "{t:?}");
        assert!(tied_enough(&t));
    }

    /// A waiter that sleeps a timer's tick after taking the lock ends
    /// 2.5 ms after the holder: past the narrow window, inside the
    /// stretched one (a quarter of its 8.5 ms idle time).
    #[test]
    fn a_waiter_with_its_own_wait_after_the_lock_is_tied_in_the_stretched_window() {
        let mut holder = Vec::new();
        let mut waits = Vec::new();
        for cycle in 0..20 {
            let start = cycle * 46 * MS;
            holder.push((start, start + 6 * MS + 400_000, 0));
            let opened = start + 300_000;
            let closed = start + 6 * MS + 400_000 + 2_500_000;
            waits.push((opened, closed, 8_500_000));
        }
        let (waiter, holder) = (long(&waits), long(&holder));
        assert_eq!(ties(&waiter, &holder, 0.0, 0.0).tied, 0);
        let t = ties(&waiter, &holder, STRETCH, 0.0);
        assert_eq!(t.tied, 20, "{t:?}");
        assert!(tied_enough(&t), "{t:?}");
    }

    /// A span stalling a runtime worker 30 ms every 100 ms, and tasks whose
    /// 1 ms timer began 1.5 ms before each stall and whose wake-up waited
    /// it out: not a lock's holder (it opened after the waits began), but
    /// tied with [`STALL_LATE`]; waits that began before the stall by more
    /// than half their idle time are not.
    #[test]
    fn a_stall_that_opens_into_a_wait_and_holds_its_wake_up_is_tied_late() {
        let with_lead = |lead: u64| {
            let mut stall = Vec::new();
            let mut waits = Vec::new();
            for cycle in 0..10 {
                let start = cycle * 100 * MS + 50 * MS;
                stall.push((start, start + 30 * MS, 0));
                for k in 0..2 {
                    let opened = start - lead - k * 10_000;
                    let closed = start + 30 * MS + 300_000;
                    waits.push((opened, closed, closed - opened - 20_000));
                }
            }
            waits.sort_by_key(|w| w.1);
            (long(&waits), long(&stall))
        };
        let (waiter, stall) = with_lead(1_500_000);
        assert_eq!(ties(&waiter, &stall, 0.0, 0.0).tied, 0);
        let t = ties(&waiter, &stall, 0.0, STALL_LATE);
        assert_eq!(t.tied, 20, "{t:?}");
        assert!(tied_enough(&t), "{t:?}");
        let (waiter, stall) = with_lead(40 * MS);
        assert_eq!(ties(&waiter, &stall, 0.0, STALL_LATE).tied, 0);
    }

    /// A producer's spans each hand one item to a consumer waiting on a
    /// channel: tied one wait a span, a hand-off, not a lock.
    #[test]
    fn one_wait_ended_by_each_span_is_a_hand_off() {
        let mut produce = Vec::new();
        let mut waits = Vec::new();
        for i in 0..40 {
            let start = i * 6 * MS;
            produce.push((start, start + 5 * MS, 5 * MS - 20_000));
            // The consumer waits from just after the last item until 30 µs
            // after this one's span closed.
            let opened = start + 100_000;
            let closed = start + 5 * MS + 30_000;
            waits.push((opened, closed, closed - opened - 10_000));
        }
        let t = ties(&long(&waits), &long(&produce), 0.0, 0.0);
        assert_eq!((t.waits, t.tied, t.released), (40, 40, 40));
        assert!(tied_enough(&t));
        let (waiter, holder) = lock_held_across_an_await();
        let lock = ties(&waiter, &holder, 0.0, 0.0);
        assert_eq!((lock.tied, lock.released), (20, 10));
    }

    /// Two tasks woken by one event (a broadcast, a shared timer) close
    /// in either order: half the waits end just before the other's span.
    #[test]
    fn spans_woken_together_are_not_a_holder() {
        let mut other = Vec::new();
        let mut waits = Vec::new();
        for cycle in 0..20 {
            let start = cycle * 50 * MS;
            other.push((start, start + 10 * MS, 9 * MS));
            let end = if cycle % 2 == 0 {
                start + 10 * MS + 100_000
            } else {
                start + 10 * MS - 100_000
            };
            waits.push((start + MS, end, end - start - MS - 50_000));
        }
        let t = ties(&long(&waits), &long(&other), 0.0, 0.0);
        assert_eq!((t.waits, t.tied, t.before), (20, 10, 10));
        assert!(!tied_enough(&t));
    }

    /// A parent closes after its waiting child, and a span opened after
    /// the wait began cannot hold what it waits for.
    #[test]
    fn a_parent_or_a_later_span_is_not_a_holder() {
        let (mut waiter, _) = lock_held_across_an_await();
        // One wait a cycle: another wait's parent closing just before this
        // one ends would tie (a waiter before it in the lock's queue).
        waiter.spans.retain(|w| w.opened_ns % (100 * MS) == 5 * MS);
        let parent = long(
            &waiter
                .spans
                .iter()
                .map(|w| (w.opened_ns - 100, w.closed_ns + 10_000, 0))
                .collect::<Vec<_>>(),
        );
        assert_eq!(ties(&waiter, &parent, 0.0, 0.0).tied, 0);
        let later = long(
            &waiter
                .spans
                .iter()
                .map(|w| (w.opened_ns + 10, w.closed_ns - 10_000, 0))
                .collect::<Vec<_>>(),
        );
        assert_eq!(ties(&waiter, &later, 0.0, 0.0).tied, 0);
    }

    /// A holder closing every 2 ms ties most waits by chance alone.
    #[test]
    fn a_holder_closing_all_the_time_ties_by_chance_only() {
        let (waiter, _) = lock_held_across_an_await();
        let busy = long(
            &(0..500)
                .map(|i| (i * 2 * MS, i * 2 * MS + 1_900_000, 0))
                .collect::<Vec<_>>(),
        );
        let t = ties(&waiter, &busy, 0.0, 0.0);
        assert!(t.by_chance > 5.0, "{t:?}");
        assert!(!tied_enough(&t), "{t:?}");
    }

    /// A hostile dump's spans (closing before they open, idle past their
    /// wall time, at the clock's end) are read without a panic, and name
    /// no holder.
    #[test]
    fn spans_out_of_order_or_at_the_clock_s_end_tie_nothing() {
        let odd = long(&[
            (5 * MS, MS, 0),
            (0, 2 * MS, 3 * MS),
            (u64::MAX - 1, u64::MAX, 1),
            (0, u64::MAX, u64::MAX),
        ]);
        let t = ties(&odd, &odd, 0.0, 0.0);
        assert!(t.waits < MIN_WAITS && !tied_enough(&t), "{t:?}");
    }

    /// A hostile dump's tens of thousands of identical spans are read up
    /// to the bounds, not each against each.
    #[test]
    fn a_hostile_dump_s_spans_are_read_up_to_the_bounds() {
        let many = long(
            &(0..20_000)
                .map(|i| (i, i + 10 * MS, 9 * MS))
                .collect::<Vec<_>>(),
        );
        let t = ties(&many, &many, STRETCH, 0.0);
        assert_eq!(t.waits, MAX_SPANS, "{t:?}");
    }

    /// Waits before the part of the run the holder's spans are whole for
    /// (its ring overwrote them) are not read.
    #[test]
    fn waits_before_what_both_hold_whole_are_left_out() {
        let (waiter, mut holder) = lock_held_across_an_await();
        holder.complete_after_ns = 500 * MS;
        let t = ties(&waiter, &holder, 0.0, 0.0);
        assert_eq!(t.waits, 10);
        assert_eq!(t.tied, 10);
    }
}
