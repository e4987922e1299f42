//! A dump's grouped callsites (perf-layer's `group_by`) as callsites of
//! their own, so that every report, diff and history sees a row per route:
//! `request{http.route=/export}` is found, ranked and compared like any
//! span, and the plan points at it.
//!
//! Each group's spans are a part of its callsite's, and the parts add up to
//! the whole, so replacing the callsite by its groups leaves every total of
//! the run unchanged. The dump's group edges say which group of a callsite
//! a child ran under (`compress_json` under `request{uri=/export}`); the
//! part of an edge they do not account for (a parent opened on another
//! thread, a dump without them) is divided in proportion to each group's
//! share of the callsite's busy time (of its calls, for the edge's call
//! count), an estimate. The live heap is per callsite: it goes to the
//! group that allocated the most bytes in its own time (`heap_group`),
//! where live bytes can come from.

use std::collections::{HashMap, HashSet};

use perf_layer::dump::{CallEdge, CallsiteStats, Dump, GroupEdge};

/// `dump` with every grouped callsite replaced by its groups, named
/// `name{field=value,...}` (or `name{other}`), ids renumbered in order.
/// A dump without groups is returned as it is.
pub fn expand(mut dump: Dump) -> Dump {
    if dump.callsites.iter().all(|c| c.groups.is_empty()) {
        return dump;
    }
    // Old id -> the new ids and each one's share of busy time and calls.
    let mut parts: HashMap<u32, Vec<(u32, f64, f64)>> = HashMap::new();
    let mut grouped: HashSet<u32> = HashSet::new();
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
        grouped.insert(old);
        let busy: f64 = groups.iter().map(|g| g.stats.busy_ns.sum as f64).sum();
        let calls: f64 = groups.iter().map(|g| g.stats.calls as f64).sum();
        let (heaviest, _) = heap_group(&groups);
        let mut shares = Vec::with_capacity(groups.len());
        let heap = cs.heap.take();
        for (i, group) in groups.into_iter().enumerate() {
            let label = shown_label(&group);
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
    // Open spans' parent by its new id; a grouped parent's group is not
    // known (a group's figures have no open spans: the layer keeps them by
    // callsite).
    for cs in &mut callsites {
        if let Some(open) = &mut cs.open {
            open.parent = open
                .parent
                .and_then(|old| match parts.get(&old).map(Vec::as_slice) {
                    Some([(id, _, _)]) if !grouped.contains(&old) => Some(*id),
                    _ => None,
                });
        }
    }
    // An end's callsites after expansion: its group's alone when the dump
    // says which (a group edge), else every group with its share.
    let ends = |old: u32, group: Option<u32>| -> Option<Vec<(u32, f64, f64)>> {
        let all = parts.get(&old)?;
        match group.filter(|_| grouped.contains(&old)) {
            Some(g) => all.get(g as usize).map(|&(id, _, _)| vec![(id, 1.0, 1.0)]),
            None => Some(all.clone()),
        }
    };
    // Each edge's calls and busy time, duplicates added; what its group
    // edges do not account for is split by share.
    let mut order: Vec<(u32, u32)> = Vec::new();
    let mut rest: HashMap<(u32, u32), (u64, u64, u64)> = HashMap::new();
    for e in &dump.edges {
        let sum = rest.entry((e.parent, e.child)).or_insert_with(|| {
            order.push((e.parent, e.child));
            (0, 0, 0)
        });
        sum.0 = sum.0.saturating_add(e.calls);
        sum.1 = sum.1.saturating_add(e.child_busy_ns);
        sum.2 = sum.2.saturating_add(e.outlived);
    }
    // The share of an edge's calls that outlived their parent, which its
    // groups' edges do not keep.
    let outlived: HashMap<(u32, u32), f64> = rest
        .iter()
        .map(|(&key, &(calls, _, outlived))| {
            (
                key,
                crate::stats::ratio(outlived as f64, calls as f64).min(1.0),
            )
        })
        .collect();
    let mut edges = Edges::default();
    for g in &dump.group_edges {
        let Some(left) = rest.get_mut(&(g.parent, g.child)) else {
            continue;
        };
        let (calls, busy) = (g.calls.min(left.0), g.child_busy_ns.min(left.1));
        left.0 -= calls;
        left.1 -= busy;
        if let (Some(parents), Some(children)) =
            (ends(g.parent, g.parent_group), ends(g.child, g.child_group))
        {
            edges.split(
                &parents,
                &children,
                (calls, busy),
                outlived[&(g.parent, g.child)],
            );
        }
    }
    for key in order {
        let (calls, busy, _) = rest[&key];
        if calls == 0 && busy == 0 {
            continue;
        }
        if let (Some(parents), Some(children)) = (ends(key.0, None), ends(key.1, None)) {
            edges.split(&parents, &children, (calls, busy), outlived[&key]);
        }
    }
    let edges = edges.list;
    dump.callsites = callsites;
    dump.edges = edges;
    // Spent: their ids and group indices are the unexpanded dump's.
    dump.group_edges = Vec::new();
    dump
}

/// A group's label in its row's name: its fields' values, or `other`.
pub(crate) fn shown_label(group: &perf_layer::dump::CallsiteGroup) -> String {
    if group.other {
        "other".to_owned()
    } else {
        group.label()
    }
}

/// The group of a callsite its live heap goes to: the one that allocated
/// the most bytes in its own time, where live bytes can come from (a fresh
/// service's `/upload` kept a tenth of its bodies; given to the group with
/// the most busy time, the leak was `/report`'s, which kept nothing);
/// without allocation figures, the one with the most busy time. Its index,
/// and its share of the bytes the groups allocated in their own time (0
/// without allocation figures).
pub(crate) fn heap_group(groups: &[perf_layer::dump::CallsiteGroup]) -> (usize, f64) {
    let own = |g: &perf_layer::dump::CallsiteGroup| g.stats.alloc.map_or(0, |a| a.self_alloc_bytes);
    let Some((at, on)) = groups
        .iter()
        .enumerate()
        .max_by_key(|(_, g)| (own(g), g.stats.busy_ns.sum))
    else {
        return (0, 0.0);
    };
    // In f64: a hostile dump's byte counts may add up past u64.
    let all: f64 = groups.iter().map(|g| own(g) as f64).sum();
    let share = if all > 0.0 { own(on) as f64 / all } else { 0.0 };
    (at, share)
}

/// A group edge of one dump in another's callsite ids and group indices:
/// `from` finds a callsite of the first by id, `id` maps its ids to the
/// second's, `to` finds a callsite of the second. Groups are matched by
/// label. `None` when an end has no counterpart.
pub(crate) fn translate<'a, 'b>(
    edge: &GroupEdge,
    from: impl Fn(u32) -> Option<&'a CallsiteStats>,
    id: impl Fn(u32) -> Option<u32>,
    to: impl Fn(u32) -> Option<&'b CallsiteStats>,
) -> Option<GroupEdge> {
    let end = |old: u32, group: Option<u32>| -> Option<(u32, Option<u32>)> {
        let new = id(old)?;
        let Some(group) = group else {
            return Some((new, None));
        };
        let g = from(old)?.groups.get(group as usize)?;
        let label = (g.other, g.label());
        let index = to(new)?
            .groups
            .iter()
            .position(|g| g.other == label.0 && g.label() == label.1)?;
        Some((new, Some(index as u32)))
    };
    let (parent, parent_group) = end(edge.parent, edge.parent_group)?;
    let (child, child_group) = end(edge.child, edge.child_group)?;
    Some(GroupEdge {
        parent,
        parent_group,
        child,
        child_group,
        ..*edge
    })
}

/// Group edges added up by their ends, in the order first seen.
#[derive(Default)]
pub(crate) struct GroupEdges {
    list: Vec<GroupEdge>,
    at: HashMap<(u32, Option<u32>, u32, Option<u32>), usize>,
}

impl GroupEdges {
    /// Adds `e`'s calls and busy time to the edge with its ends.
    pub(crate) fn add(&mut self, e: GroupEdge) {
        let key = (e.parent, e.parent_group, e.child, e.child_group);
        match self.at.get(&key) {
            Some(&i) => {
                let mine = &mut self.list[i];
                mine.calls = mine.calls.saturating_add(e.calls);
                mine.child_busy_ns = mine.child_busy_ns.saturating_add(e.child_busy_ns);
            }
            None => {
                self.at.insert(key, self.list.len());
                self.list.push(e);
            }
        }
    }

    /// The edge with `e`'s ends, if any.
    pub(crate) fn get(&self, e: &GroupEdge) -> Option<&GroupEdge> {
        let key = (e.parent, e.parent_group, e.child, e.child_group);
        self.at.get(&key).map(|&i| &self.list[i])
    }

    /// The edges, in the order first seen.
    pub(crate) fn into_vec(self) -> Vec<GroupEdge> {
        self.list
    }
}

/// Expanded edges, one per parent and child, in the order first seen.
#[derive(Default)]
struct Edges {
    list: Vec<CallEdge>,
    at: HashMap<(u32, u32), usize>,
}

impl Edges {
    /// `calls` and `busy` of one edge, over every pair of its ends' parts:
    /// calls by the parent's share of busy time and the child's of calls,
    /// busy time by both shares of busy time; of the calls, `outlived`'s
    /// share outlived their parent (the whole edge's).
    fn split(
        &mut self,
        parents: &[(u32, f64, f64)],
        children: &[(u32, f64, f64)],
        (calls, busy_ns): (u64, u64),
        outlived: f64,
    ) {
        for &(parent, parent_busy, _) in parents {
            for &(child, child_busy, child_calls) in children {
                let busy = parent_busy * child_busy;
                let calls = (calls as f64 * parent_busy * child_calls).round() as u64;
                let outlived = (calls as f64 * outlived).round() as u64;
                if busy <= 0.0 && calls == 0 {
                    continue;
                }
                let busy = (busy_ns as f64 * busy).round() as u64;
                let i = *self.at.entry((parent, child)).or_insert_with(|| {
                    self.list.push(CallEdge {
                        parent,
                        child,
                        calls: 0,
                        child_busy_ns: 0,
                        outlived: 0,
                    });
                    self.list.len() - 1
                });
                let e = &mut self.list[i];
                e.calls = e.calls.saturating_add(calls);
                e.child_busy_ns = e.child_busy_ns.saturating_add(busy);
                e.outlived = e.outlived.saturating_add(outlived);
            }
        }
    }
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
