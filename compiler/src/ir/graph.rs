//! The IR graph: an SSA list of nodes, each defining one value.
//!
//! Nodes are stored in definition order; a node's operands are always earlier
//! nodes (this is what "SSA" means here, and the verifier checks it). A
//! [`ValueId`] is the index of the node that defines the value, so a graph
//! whose nodes are reordered, removed or replaced is renumbered:
//! [`Graph::rebuild`] is the one place that does it.

use std::fmt;

use crate::diag::Span;

use super::infer::infer;
use super::op::Op;
use super::types::Type;

/// Handle of an IR value: the index of its defining node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// Where in the `.nn` source a value came from: 1-based line and column of
/// the start and end of the expression. `Loc::NONE` (all zero) marks values
/// with no source location (e.g. built by tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
    pub end_line: u32,
    pub end_col: u32,
}

impl Loc {
    pub const NONE: Loc = Loc { line: 0, col: 0, end_line: 0, end_col: 0 };

    pub fn is_none(&self) -> bool {
        *self == Loc::NONE
    }

    /// The location of byte range `lo..hi` of `source`.
    pub fn from_span(source: &str, lo: usize, hi: usize) -> Loc {
        let (line, col) = line_col(source, lo);
        let (end_line, end_col) = line_col(source, hi);
        Loc { line, col, end_line, end_col }
    }

    /// The byte range of this location in `source` (inverse of `from_span`).
    pub fn to_span(&self, source: &str) -> Option<(usize, usize)> {
        Some((offset(source, self.line, self.col)?, offset(source, self.end_line, self.end_col)?))
    }
}

fn line_col(source: &str, pos: usize) -> (u32, u32) {
    let pos = pos.min(source.len());
    let before = &source.as_bytes()[..pos];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let col = source[line_start..pos].chars().count() + 1;
    (line as u32, col as u32)
}

fn offset(source: &str, line: u32, col: u32) -> Option<usize> {
    let mut start = 0usize;
    for _ in 1..line {
        start += source[start..].find('\n')? + 1;
    }
    let rest = &source[start..];
    let mut chars = rest.char_indices();
    let mut off = 0;
    for _ in 1..col {
        match chars.next() {
            Some((_, c)) => off += c.len_utf8(),
            None => return None,
        }
    }
    Some(start + off)
}

/// One SSA node: an op applied to earlier values, with its result type.
///
/// Equality is structural and ignores `span`: the text format records the
/// line:col location only, so a printed and re-parsed graph equals the
/// original.
#[derive(Clone, Debug)]
pub struct Node {
    pub op: Op,
    pub args: Vec<ValueId>,
    pub ty: Type,
    pub loc: Loc,
    /// The byte span of `loc` in the `.nn` source, for graphs built from
    /// source (sema sets it; a graph parsed from IR text has none), so
    /// errors about the node render as source diagnostics.
    pub span: Option<Span>,
    /// For nodes of a backward pass: the forward node whose gradient rule
    /// produced this node (its `loc` and `span` are that node's too).
    pub grad_of: Option<ValueId>,
}

impl PartialEq for Node {
    fn eq(&self, other: &Node) -> bool {
        let Node { op, args, ty, loc, span: _, grad_of } = self;
        *op == other.op
            && *args == other.args
            && *ty == other.ty
            && *loc == other.loc
            && *grad_of == other.grad_of
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutputKind {
    /// The scalar training loss.
    Loss,
    /// What `nnc predict` returns.
    Prediction,
    /// The new value of a state input (named like that input).
    State,
    /// The new value of a parameter after an optimiser step (named like it).
    Param,
    /// Any other named result (gradients, metrics, ...).
    Other,
}

impl OutputKind {
    pub fn name(self) -> &'static str {
        match self {
            OutputKind::Loss => "loss",
            OutputKind::Prediction => "prediction",
            OutputKind::State => "state",
            OutputKind::Param => "param",
            OutputKind::Other => "value",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub kind: OutputKind,
    pub name: String,
    pub value: ValueId,
}

/// Whether a graph computes a training step's forward pass (dropout active,
/// batchnorm on batch statistics) or inference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    Train,
    Infer,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Train => "train",
            Mode::Infer => "infer",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub name: String,
    pub mode: Mode,
    pub nodes: Vec<Node>,
    pub outputs: Vec<Output>,
}

impl Graph {
    pub fn new(name: impl Into<String>, mode: Mode) -> Graph {
        Graph { name: name.into(), mode, nodes: vec![], outputs: vec![] }
    }

    pub fn node(&self, v: ValueId) -> &Node {
        &self.nodes[v.index()]
    }

    pub fn ty(&self, v: ValueId) -> &Type {
        &self.nodes[v.index()].ty
    }

    /// Appends a node after checking its operands and inferring its type.
    /// This is the only way the compiler builds graphs, so every graph it
    /// builds is well-typed by construction (the verifier re-checks).
    pub fn add(&mut self, op: Op, args: &[ValueId], loc: Loc) -> Result<ValueId, String> {
        for a in args {
            if a.index() >= self.nodes.len() {
                return Err(format!("operand {a} is not defined"));
            }
        }
        let arg_types: Vec<&Type> = args.iter().map(|a| self.ty(*a)).collect();
        let ty = infer(&op, &arg_types)?;
        Ok(self.push(Node { op, args: args.to_vec(), ty, loc, span: None, grad_of: None }))
    }

    /// Appends a node as given, without checks (the IR text parser uses this;
    /// the verifier then checks the result).
    pub fn push(&mut self, node: Node) -> ValueId {
        self.nodes.push(node);
        ValueId((self.nodes.len() - 1) as u32)
    }

    /// How many times each node is read: once per operand that names it
    /// and once per graph output that is it.
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0usize; self.nodes.len()];
        for node in &self.nodes {
            for a in &node.args {
                if let Some(u) = uses.get_mut(a.index()) {
                    *u += 1;
                }
            }
        }
        for o in &self.outputs {
            if let Some(u) = uses.get_mut(o.value.index()) {
                *u += 1;
            }
        }
        uses
    }

    pub fn output(&mut self, kind: OutputKind, name: impl Into<String>, value: ValueId) {
        self.outputs.push(Output { kind, name: name.into(), value });
    }

    /// Value ids of all `Input` nodes, in order.
    pub fn inputs(&self) -> impl Iterator<Item = (ValueId, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.op, Op::Input { .. }))
            .map(|(i, n)| (ValueId(i as u32), n))
    }

    pub fn find_output(&self, name: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

/// The stand-in for a use of a value that a rebuild dropped without a
/// replacement: out of range in any graph, so the verifier rejects it.
pub const DANGLING: ValueId = ValueId(u32::MAX);

impl Graph {
    /// Starts rebuilding this graph into a new one (same name and mode)
    /// holding copies of the nodes `order` (each at most once), in that
    /// order. A [`ValueId`] is a node index, so a graph whose nodes are
    /// reordered, removed or replaced is renumbered; this is the one place
    /// that does it. Operands and `from` origins of the copies are renumbered
    /// (an operand may name any node of `order`, earlier or later); more
    /// nodes can be appended with [`Rebuild::copy`], [`Rebuild::push`] and
    /// [`Rebuild::alias`], and [`Rebuild::finish`] renumbers the outputs.
    ///
    /// A use of a node that is not rebuilt becomes [`DANGLING`] and an origin
    /// pointing at one is cleared, so a faulty rebuild is reported by the
    /// verifier rather than a panic.
    pub fn rebuild(&self, order: &[ValueId]) -> Rebuild<'_> {
        let mut rebuild = Rebuild { old: self, new: Graph::new(self.name.clone(), self.mode), map: vec![] };
        rebuild.map.resize(self.nodes.len(), None);
        for (new, old) in order.iter().enumerate() {
            if let Some(slot) = rebuild.map.get_mut(old.index()) {
                *slot = Some(ValueId(new as u32));
            }
        }
        for &old in order {
            rebuild.copy(old);
        }
        rebuild
    }
}

/// A graph being rebuilt from an old one ([`Graph::rebuild`]): every new
/// node stands for an old node, and the map from old to new values
/// renumbers operands, origins and outputs.
pub struct Rebuild<'a> {
    old: &'a Graph,
    new: Graph,
    /// The new value standing for each old value; `None` while it has none.
    map: Vec<Option<ValueId>>,
}

impl<'a> Rebuild<'a> {
    /// The graph being rebuilt.
    pub fn old(&self) -> &'a Graph {
        self.old
    }

    /// The new graph built so far.
    pub fn graph(&self) -> &Graph {
        &self.new
    }

    /// The new value standing for old value `v`, if it has one yet.
    pub fn value(&self, v: ValueId) -> Option<ValueId> {
        self.map.get(v.index()).copied().flatten()
    }

    /// The operands of old node `id`, as new values ([`DANGLING`] for those
    /// without one).
    pub fn args(&self, id: ValueId) -> Vec<ValueId> {
        self.old.node(id).args.iter().map(|&a| self.value(a).unwrap_or(DANGLING)).collect()
    }

    /// Appends a copy of old node `id`, its operands and origin renumbered.
    pub fn copy(&mut self, id: ValueId) -> ValueId {
        let args = self.args(id);
        self.push(id, self.old.node(id).op.clone(), args)
    }

    /// Appends `op` of the new values `args` in place of old node `id`, with
    /// that node's type, location, span and (renumbered) origin. The caller
    /// guarantees that `op` of `args` has that type.
    pub fn push(&mut self, id: ValueId, op: Op, args: Vec<ValueId>) -> ValueId {
        let new = self.insert(id, op, args, self.old.node(id).ty.clone());
        self.map[id.index()] = Some(new);
        new
    }

    /// Appends `op` of the new values `args`, of type `ty`, as a node no old
    /// node stands for, with the location, span and (renumbered) origin of
    /// old node `like`. The caller guarantees that `op` of `args` has type
    /// `ty`.
    pub fn insert(&mut self, like: ValueId, op: Op, args: Vec<ValueId>, ty: Type) -> ValueId {
        let node = self.old.node(like);
        let grad_of = node.grad_of.and_then(|f| self.value(f));
        self.new.push(Node { op, args, ty, loc: node.loc, span: node.span, grad_of })
    }

    /// Makes the new value `v` stand for old node `id` (whose uses it takes).
    pub fn alias(&mut self, id: ValueId, v: ValueId) {
        self.map[id.index()] = Some(v);
    }

    /// The new graph, its outputs renumbered, and the new value standing for
    /// each old value.
    pub fn finish(mut self) -> (Graph, Vec<Option<ValueId>>) {
        for output in &self.old.outputs {
            let value = self.map.get(output.value.index()).copied().flatten().unwrap_or(DANGLING);
            self.new.output(output.kind, output.name.clone(), value);
        }
        (self.new, self.map)
    }
}

#[cfg(test)]
mod tests {
    use super::ValueId;
    use crate::ir::parse::parse;
    use crate::ir::print::print;

    const GRAPH: &str = r#"graph t mode=train {
      %0: f32[2] = input "x"
      %1: f32[2] = exp %0                                  @1:1-1:2
      %2: f32[2] = param "w" role=weight init=zeros
      %3: f32[2] = add %1, %2                              @2:1-2:2 from %1 exp
      %4: f32[2] = neg %0
      value "y" = %3
      value "z" = %4
    }"#;

    /// `GRAPH` rebuilt from the nodes `order` equals `expected`.
    fn check(order: &[u32], expected: &str) {
        let graph = parse(GRAPH).unwrap_or_else(|e| panic!("{e}"));
        let order: Vec<ValueId> = order.iter().map(|&i| ValueId(i)).collect();
        let (rebuilt, _) = graph.rebuild(&order).finish();
        let expected = parse(expected).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(print(&rebuilt), print(&expected));
    }

    #[test]
    fn rebuild_reorders_operands_origins_and_outputs() {
        check(
            &[0, 2, 1, 3, 4],
            r#"graph t mode=train {
              %0: f32[2] = input "x"
              %1: f32[2] = param "w" role=weight init=zeros
              %2: f32[2] = exp %0                              @1:1-1:2
              %3: f32[2] = add %2, %1                          @2:1-2:2 from %2 exp
              %4: f32[2] = neg %0
              value "y" = %3
              value "z" = %4
            }"#,
        );
    }

    /// Uses of a node left out dangle and origins pointing at it are
    /// cleared, so the verifier reports them.
    #[test]
    fn rebuild_without_a_used_node_leaves_dangling_uses() {
        check(
            &[0, 2, 3],
            r#"graph t mode=train {
              %0: f32[2] = input "x"
              %1: f32[2] = param "w" role=weight init=zeros
              %2: f32[2] = add %4294967295, %1                 @2:1-2:2
              value "y" = %2
              value "z" = %4294967295
            }"#,
        );
    }
}
