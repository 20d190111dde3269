//! The validator: what must hold before a flow may run.
//!
//! - every target names a node of the flow (a dangling `goto` is reported where it is
//!   written, with the nearest node id when it looks like a typo);
//! - every node is reachable from the start node;
//! - no loop passes only through nodes that do not wait for the customer (`say`,
//!   `hours`, `set`, `branch`, `callback`'s fallback): such a loop would spin forever;
//! - no loop passes only through those and the `on_failure` paths of menus and
//!   collects: a customer who never answers must reach an outcome;
//! - the tenant is known, and every queue, skill and calendar it names exists (queues
//!   and skills against the [`Catalog`], calendars in the flow's `calendars`).
//!
//! [`load`] parses and checks in one call: what the registry and `hotline ivr check` use.

use std::collections::HashSet;

use crate::catalog::Catalog;
use crate::diag::{Diagnostic, FlowErrors, did_you_mean, list};
use crate::flow::{self, Flow, NodeKind};

/// Parses `text` and checks it against `catalog`; every problem found is returned.
pub fn load(text: &str, file: &str, catalog: &Catalog) -> Result<Flow, FlowErrors> {
    let flow = flow::parse(text, file)?;
    let diagnostics = check(&flow, catalog);
    if diagnostics.is_empty() {
        Ok(flow)
    } else {
        Err(FlowErrors::new(file, diagnostics))
    }
}

/// Every problem with a parsed flow, in no particular order.
pub fn check(flow: &Flow, catalog: &Catalog) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    targets(flow, &mut out);
    reachable(flow, &mut out);
    loops(flow, &mut out);
    names(flow, catalog, &mut out);
    out
}

fn node_ids(flow: &Flow) -> impl Iterator<Item = &str> {
    flow.nodes.iter().map(|n| n.id.as_str())
}

/// Targets that name no node.
fn targets(flow: &Flow, out: &mut Vec<Diagnostic>) {
    if flow.node(&flow.start.node).is_none() {
        out.push(Diagnostic::new(
            flow.start.pos,
            format!(
                "`start` names {:?}, which is not a node of this flow{}",
                flow.start.node,
                did_you_mean(&flow.start.node, node_ids(flow))
            ),
        ));
    }
    for node in &flow.nodes {
        for (field, t) in node.kind.targets() {
            if flow.node(&t.node).is_none() {
                out.push(Diagnostic::new(
                    t.pos,
                    format!(
                        "node {:?}: `{field}` goes to {:?}, which is not a node of this flow{}",
                        node.id,
                        t.node,
                        did_you_mean(&t.node, node_ids(flow))
                    ),
                ));
            }
        }
    }
}

/// Nodes no path from the start reaches.
fn reachable(flow: &Flow, out: &mut Vec<Diagnostic>) {
    let mut seen = vec![false; flow.nodes.len()];
    let mut stack: Vec<usize> = flow.index_of(&flow.start.node).into_iter().collect();
    while let Some(i) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        for (_, t) in flow.nodes[i].kind.targets() {
            if let Some(j) = flow.index_of(&t.node)
                && !seen[j]
            {
                stack.push(j);
            }
        }
    }
    if flow.index_of(&flow.start.node).is_none() {
        return; // already reported; everything would look unreachable
    }
    for (node, seen) in flow.nodes.iter().zip(seen) {
        if !seen {
            out.push(flow::at_node(
                node,
                format!(
                    "node {:?} is never reached from the start node {:?}; send a contact to it from another node, or delete it",
                    node.id, flow.start.node
                ),
            ));
        }
    }
}

/// Loops a contact can go round without answering anything: through nodes that never
/// wait for input (a spin), or through the failure paths of menus and collects (a
/// customer who stays silent, or answers nonsense, would be asked forever).
fn loops(flow: &Flow, out: &mut Vec<Diagnostic>) {
    let waits = |i: usize| flow.nodes[i].kind.waits_for_input();
    let resolve = |t: &flow::Target| flow.index_of(&t.node);
    // Edges taken without any input at all.
    let spin: Vec<Vec<usize>> = flow
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| match waits(i) {
            true => vec![],
            false => n
                .kind
                .targets()
                .iter()
                .filter_map(|(_, t)| resolve(t))
                .collect(),
        })
        .collect();
    for cycle in cycles(&spin) {
        out.push(flow::at_node(
            &flow.nodes[cycle[0]],
            format!(
                "nodes {} loop without waiting for input, so a contact would go round forever; put a menu or collect in the loop, or send one of them elsewhere",
                path_names(flow, &cycle)
            ),
        ));
    }
    // Those plus the failure paths: what a customer who never answers follows.
    let silent: Vec<Vec<usize>> = flow
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| match &n.kind {
            NodeKind::Menu(m) => resolve(&m.on_failure).into_iter().collect(),
            NodeKind::Collect(c) => resolve(&c.on_failure).into_iter().collect(),
            _ => spin[i].clone(),
        })
        .collect();
    for cycle in cycles(&silent) {
        let Some(&first) = cycle.iter().find(|&&k| waits(k)) else {
            continue; // a spin, reported above
        };
        out.push(flow::at_node(
            &flow.nodes[first],
            format!(
                "a customer who never answers would go round {} forever through `on_failure`; send the `on_failure` of one of them to a node that ends the flow (a queue, voicemail or end)",
                path_names(flow, &cycle)
            ),
        ));
    }
}

/// `"a" → "b" → "a"`.
fn path_names(flow: &Flow, cycle: &[usize]) -> String {
    let mut names: Vec<String> = cycle
        .iter()
        .map(|&k| format!("{:?}", flow.nodes[k].id))
        .collect();
    names.push(format!("{:?}", flow.nodes[cycle[0]].id));
    names.join(" → ")
}

/// Cycles in a graph, each as the nodes from where it closes, found by an iterative
/// depth-first search in node order; a cycle sharing a node with one already found is
/// left out, so each loop is reported once.
fn cycles(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    // 0 unvisited, 1 on the current path, 2 done.
    let mut color = vec![0u8; edges.len()];
    let mut seen: HashSet<usize> = HashSet::new();
    let mut found = Vec::new();
    for root in 0..edges.len() {
        if color[root] != 0 {
            continue;
        }
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = 1;
        while let Some(&mut (i, ref mut next)) = path.last_mut() {
            let Some(&j) = edges[i].get(*next) else {
                color[i] = 2;
                path.pop();
                continue;
            };
            *next += 1;
            match color[j] {
                0 => {
                    color[j] = 1;
                    path.push((j, 0));
                }
                1 => {
                    let from = path.iter().position(|&(k, _)| k == j).unwrap_or(0);
                    let cycle: Vec<usize> = path[from..].iter().map(|&(k, _)| k).collect();
                    if cycle.iter().all(|k| !seen.contains(k)) {
                        seen.extend(cycle.iter().copied());
                        found.push(cycle);
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// Tenant, queues, skills and calendars that do not exist.
fn names(flow: &Flow, catalog: &Catalog, out: &mut Vec<Diagnostic>) {
    let tenant = catalog.tenant(&flow.tenant);
    if tenant.is_none() {
        let known: Vec<String> = catalog.tenants().map(|t| t.to_string()).collect();
        out.push(Diagnostic::new(
            flow.tenant_pos,
            format!(
                "tenant {:?} is not in the site configuration (its tenants: {}){}; check the spelling or the `--config` file",
                flow.tenant.as_str(),
                list(known.iter().map(String::as_str)),
                did_you_mean(flow.tenant.as_str(), known.iter().map(String::as_str))
            ),
        ));
    }
    for node in &flow.nodes {
        let queue_refs = match &node.kind {
            NodeKind::Queue { queue, .. } | NodeKind::Callback { queue, .. } => vec![queue],
            NodeKind::Voicemail { queue, .. } => queue.iter().collect(),
            _ => vec![],
        };
        if let Some(t) = tenant {
            for q in queue_refs {
                if !t.queues.contains_key(&q.value) {
                    let known = t.queues.keys().map(|k| k.as_str());
                    out.push(unknown(
                        flow,
                        &node.id,
                        "queue",
                        q.value.as_str(),
                        q.pos,
                        known,
                    ));
                }
            }
            if let NodeKind::Queue { skills, .. } = &node.kind {
                for s in skills {
                    if !t.skills.contains(&s.value) {
                        let known = t.skills.iter().map(|k| k.as_str());
                        out.push(unknown(
                            flow,
                            &node.id,
                            "skill",
                            s.value.as_str(),
                            s.pos,
                            known,
                        ));
                    }
                }
            }
        }
        if let NodeKind::Hours { calendar, .. } = &node.kind
            && !flow.calendars.contains_key(&calendar.value)
        {
            let known = flow.calendars.keys().map(String::as_str);
            out.push(Diagnostic::new(
                calendar.pos,
                format!(
                    "node {:?}: calendar {:?} is not defined under `calendars` (defined: {}){}",
                    node.id,
                    calendar.value,
                    list(known.clone()),
                    did_you_mean(&calendar.value, known)
                ),
            ));
        }
    }
}

/// A queue or skill the tenant does not have, with what it has and the likely typo.
fn unknown<'a>(
    flow: &Flow,
    node: &str,
    kind: &str,
    value: &str,
    pos: crate::diag::Pos,
    known: impl Iterator<Item = &'a str> + Clone,
) -> Diagnostic {
    Diagnostic::new(
        pos,
        format!(
            "node {node:?}: {kind} {value:?} is not a {kind} of tenant {} (its {kind}s: {}){}",
            flow.tenant,
            list(known.clone()),
            did_you_mean(value, known)
        ),
    )
}
