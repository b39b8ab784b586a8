//! Rebuilding a graph node by node with a value substitution.
//!
//! A [`ValueId`] is a node index, so removing or replacing a node renumbers
//! every later value. Every pass therefore builds a fresh graph with a
//! [`Rewriter`]: it visits the old nodes in definition order and, for each,
//! keeps it (operands and `from` origin remapped), rewrites it in place
//! (new op and operands, same type, location and origin), replaces it by a
//! value already in the new graph, or drops it. Node order is preserved, so
//! the result is in SSA order whenever the pass only substitutes earlier
//! values; outputs are remapped at the end. The renumbering itself is
//! [`Graph::rebuild`]'s.
//!
//! A use of a dropped value that was given no replacement becomes a dangling
//! operand (`%4294967295`) rather than a panic, so the verifier run after
//! every pass reports the faulty pass by name.

use crate::ir::graph::{Rebuild, DANGLING};
use crate::ir::{Graph, Op, Type, ValueId};

/// Builds a new graph from an old one, one old node at a time, in order.
pub struct Rewriter<'a> {
    rebuild: Rebuild<'a>,
    /// The next old node to visit.
    next: usize,
}

impl<'a> Rewriter<'a> {
    /// An empty rewrite of `old` (same name and mode, no nodes yet).
    pub fn new(old: &'a Graph) -> Rewriter<'a> {
        Rewriter { rebuild: old.rebuild(&[]), next: 0 }
    }

    /// The graph being rewritten.
    pub fn old(&self) -> &'a Graph {
        self.rebuild.old()
    }

    /// The new graph built so far (the images of the visited nodes).
    pub fn graph(&self) -> &Graph {
        self.rebuild.graph()
    }

    /// The new value standing for old value `v`, if `v` was visited and not
    /// dropped without replacement.
    pub fn value(&self, v: ValueId) -> Option<ValueId> {
        self.rebuild.value(v)
    }

    /// The operands of old node `id`, as new values.
    pub fn args(&self, id: ValueId) -> Vec<ValueId> {
        self.rebuild.args(id)
    }

    /// Moves past the next old node, which must be `id`.
    fn visit(&mut self, id: ValueId) {
        debug_assert_eq!(id.index(), self.next, "nodes are visited in order");
        self.next += 1;
    }

    /// Copies the next old node `id`, remapping its operands and origin.
    pub fn keep(&mut self, id: ValueId) -> ValueId {
        self.visit(id);
        self.rebuild.copy(id)
    }

    /// Replaces the next old node `id` by `op` applied to the new values
    /// `args`, keeping its type, location and (remapped) origin. The caller
    /// guarantees that `op` of `args` has that type.
    pub fn keep_as(&mut self, id: ValueId, op: Op, args: Vec<ValueId>) -> ValueId {
        self.visit(id);
        self.rebuild.push(id, op, args)
    }

    /// Appends a new node before the next old node: `op` of the new values
    /// `args`, of type `ty`, located where old node `like` is. The caller
    /// guarantees that `op` of `args` has type `ty`.
    pub fn insert(&mut self, like: ValueId, op: Op, args: Vec<ValueId>, ty: Type) -> ValueId {
        self.rebuild.insert(like, op, args, ty)
    }

    /// Substitutes the new value `v` for every use of the next old node `id`.
    pub fn replace(&mut self, id: ValueId, v: ValueId) {
        self.visit(id);
        self.rebuild.alias(id, v);
    }

    /// Removes the next old node `id`; it must have no remaining uses.
    pub fn drop(&mut self, id: ValueId) {
        self.visit(id);
    }

    /// The type of new value `v` (`None` for a dangling value).
    pub fn ty(&self, v: ValueId) -> Option<&Type> {
        self.graph().nodes.get(v.index()).map(|n| &n.ty)
    }

    /// The finished graph: outputs are remapped; nodes not visited count as
    /// dropped.
    pub fn finish(self) -> Graph {
        self.rebuild.finish().0
    }
}

/// Rebuilds `graph` with a substitution: `subst[i]` says what becomes of
/// node `i` — `Some(j)` with `j <= i` maps every use of `%i` to (the image
/// of) `%j` and removes `%i` unless `j == i`; `None` drops `%i`, which must
/// then be unused. Kept nodes keep their location and their (remapped)
/// origin; an origin pointing at a dropped node is cleared. Missing entries
/// mean "keep".
pub fn substitute(graph: &Graph, subst: &[Option<ValueId>]) -> Graph {
    let mut rw = Rewriter::new(graph);
    for i in 0..graph.nodes.len() {
        let id = ValueId(i as u32);
        match subst.get(i).copied().unwrap_or(Some(id)) {
            Some(j) if j == id => {
                rw.keep(id);
            }
            Some(j) if j < id => {
                let v = rw.value(j).unwrap_or(DANGLING);
                rw.replace(id, v);
            }
            _ => rw.drop(id),
        }
    }
    rw.finish()
}

/// Whether two graphs are identical, comparing constants by their bits (so
/// that a graph holding a NaN constant equals itself).
pub fn same_graph(a: &Graph, b: &Graph) -> bool {
    a.name == b.name
        && a.mode == b.mode
        && a.outputs == b.outputs
        && a.nodes.len() == b.nodes.len()
        && a.nodes.iter().zip(&b.nodes).all(|(x, y)| {
            let op_eq = match (&x.op, &y.op) {
                (Op::Const { value: p }, Op::Const { value: q }) => p.to_bits() == q.to_bits(),
                (p, q) => p == q,
            };
            op_eq && x.args == y.args && x.ty == y.ty && x.loc == y.loc && x.grad_of == y.grad_of
        })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_text, parse_ok};
    use super::*;

    fn subst(graph: &Graph, table: &[(u32, Option<u32>)]) -> Graph {
        let mut s: Vec<Option<ValueId>> = (0..graph.nodes.len() as u32).map(|i| Some(ValueId(i))).collect();
        for &(i, j) in table {
            s[i as usize] = j.map(ValueId);
        }
        substitute(graph, &s)
    }

    #[test]
    fn substitution_remaps_operands_outputs_and_origins() {
        // (substitution, input, expected)
        type Case<'a> = (&'a [(u32, Option<u32>)], &'a str, &'a str);
        let cases: &[Case] = &[
            (
                // %2 duplicates %1: its uses, origins and outputs move to %1.
                &[(2, Some(1))],
                r#"graph t mode=train {
                  %0: f32[2] = input "x"                 @1:1-1:2
                  %1: f32[2] = exp %0                    @2:1-2:2
                  %2: f32[2] = exp %0                    @3:1-3:2
                  %3: f32[2] = add %1, %2                @4:1-4:2
                  %4: f32[2] = neg %3                    @4:1-4:2 from %2 exp
                  value "a" = %2
                  value "b" = %4
                }"#,
                r#"graph t mode=train {
                  %0: f32[2] = input "x"                 @1:1-1:2
                  %1: f32[2] = exp %0                    @2:1-2:2
                  %2: f32[2] = add %1, %1                @4:1-4:2
                  %3: f32[2] = neg %2                    @4:1-4:2 from %1 exp
                  value "a" = %1
                  value "b" = %3
                }"#,
            ),
            (
                // Dropping an unused node clears origins pointing at it.
                &[(1, None)],
                r#"graph t mode=train {
                  %0: f32[2] = input "x"
                  %1: f32[2] = exp %0                    @2:1-2:2
                  %2: f32[2] = neg %0                    @3:1-3:2 from %1 exp
                  value "b" = %2
                }"#,
                r#"graph t mode=train {
                  %0: f32[2] = input "x"
                  %1: f32[2] = neg %0                    @3:1-3:2
                  value "b" = %1
                }"#,
            ),
        ];
        for (table, input, expected) in cases {
            let out = subst(&parse_ok(input), table);
            check_text("substitution", &out, expected);
        }
    }

    #[test]
    fn dropping_a_used_value_is_caught_by_the_verifier() {
        let g = parse_ok(
            r#"graph t mode=infer {
              %0: f32[2] = input "x"
              %1: f32[2] = exp %0
              prediction "y" = %1
            }"#,
        );
        let out = subst(&g, &[(1, None)]);
        assert!(crate::ir::verify::verify(&out).is_err());
    }

    #[test]
    fn same_graph_compares_constants_by_bits() {
        let nan = parse_ok("graph t mode=infer {\n %0: f32[] = const nan\n value \"c\" = %0\n}");
        assert!(same_graph(&nan, &nan.clone()));
        let zero = parse_ok("graph t mode=infer {\n %0: f32[] = const 0.0\n value \"c\" = %0\n}");
        let minus_zero = parse_ok("graph t mode=infer {\n %0: f32[] = const -0.0\n value \"c\" = %0\n}");
        assert!(!same_graph(&zero, &minus_zero));
    }
}
