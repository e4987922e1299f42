//! A dump's grouped callsites (perf-layer's `group_by`) as callsites of
//! their own, so that every report, diff and history sees a row per route:
//! `request{http.route=/export}` is found, ranked and compared like any
//! span, and the plan points at it.
//!
//! Each group's spans are a part of its callsite's, and the parts add up to
//! the whole, so replacing the callsite by its groups leaves every total of
//! the run unchanged. What the dump does not say is how the call edges
//! split between the groups; they are divided in proportion to each
//! group's share of the callsite's busy time (of its calls, for the edge's
//! call count), which the flame graph and the parent-child findings read
//! as an estimate. The live heap is per callsite: it goes to the group
//! with the most busy time.

use std::collections::HashMap;

use perf_layer::dump::{CallEdge, CallsiteStats, Dump};

/// `dump` with every grouped callsite replaced by its groups, named
/// `name{field=value,...}` (or `name{other}`), ids renumbered in order.
/// A dump without groups is returned as it is.
pub fn expand(mut dump: Dump) -> Dump {
    if dump.callsites.iter().all(|c| c.groups.is_empty()) {
        return dump;
    }
    // Old id -> the new ids and each one's share of busy time and calls.
    let mut parts: HashMap<u32, Vec<(u32, f64, f64)>> = HashMap::new();
    let mut callsites = Vec::with_capacity(dump.callsites.len());
    for mut cs in std::mem::take(&mut dump.callsites) {
        let old = cs.id;
        let groups = std::mem::take(&mut cs.groups);
        if groups.is_empty() {
            cs.id = callsites.len() as u32;
            parts.insert(old, vec![(cs.id, 1.0, 1.0)]);
            callsites.push(cs);
            continue;
        }
        let busy: f64 = groups.iter().map(|g| g.stats.busy_ns.sum as f64).sum();
        let calls: f64 = groups.iter().map(|g| g.stats.calls as f64).sum();
        let heaviest = groups
            .iter()
            .enumerate()
            .max_by_key(|(_, g)| g.stats.busy_ns.sum)
            .map_or(0, |(i, _)| i);
        let mut shares = Vec::with_capacity(groups.len());
        let heap = cs.heap.take();
        for (i, group) in groups.into_iter().enumerate() {
            let label = if group.other {
                "other".to_owned()
            } else {
                group.label()
            };
            let mut stats: CallsiteStats = group.stats;
            stats.id = callsites.len() as u32;
            stats.name = format!("{}{{{label}}}", cs.name);
            if i == heaviest {
                stats.heap.clone_from(&heap);
            }
            let share = |part: f64, whole: f64| if whole > 0.0 { part / whole } else { 0.0 };
            shares.push((
                stats.id,
                share(stats.busy_ns.sum as f64, busy),
                share(stats.calls as f64, calls),
            ));
            callsites.push(stats);
        }
        parts.insert(old, shares);
    }
    let of = |id: u32| parts.get(&id);
    let mut edges = Vec::with_capacity(dump.edges.len());
    for e in &dump.edges {
        let (Some(parents), Some(children)) = (of(e.parent), of(e.child)) else {
            continue;
        };
        for &(parent, parent_busy, _) in parents {
            for &(child, child_busy, child_calls) in children {
                let busy = parent_busy * child_busy;
                let calls = (e.calls as f64 * parent_busy * child_calls).round() as u64;
                if busy <= 0.0 && calls == 0 {
                    continue;
                }
                edges.push(CallEdge {
                    parent,
                    child,
                    calls,
                    child_busy_ns: (e.child_busy_ns as f64 * busy).round() as u64,
                });
            }
        }
    }
    dump.callsites = callsites;
    dump.edges = edges;
    dump
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_without_groups_is_unchanged() {
        let dump = Dump::empty("x");
        assert_eq!(expand(dump.clone()), dump);
    }
}
