//! What a picture shows: the boxes and arrows of one stage of a model,
//! built from the graphs the pipeline produces.
//!
//! A forward graph has one node per primitive op, dozens per layer. The
//! picture groups them back into what the source wrote: the nodes that one
//! call of a built-in produced (they carry the call's source location and
//! are connected among themselves) are one box, named and shaped like the
//! row of `nnc summary` for that call site; the nodes of an operator or
//! expression of the model (`h + x`, `x[:, -1]`) are one box too.
//! Parameters, model state, the random key and the learning rate are not
//! boxes: they are listed in the tooltip of the box that reads them. Data
//! inputs, targets and constants are boxes of their own, and so are the
//! loss and prediction outputs.
//!
//! In the gradient graph every backward node records the forward node
//! whose rule made it; the backward nodes of one forward box are one `∇`
//! box. In the fused stage the boxes are the kernels of the optimised
//! training step, each labelled with the layers its nodes come from.

use std::collections::{BTreeSet, HashMap, HashSet};

use nnc_compiler::fusion::{Partition, Placement};
use nnc_compiler::ir::{Graph, InputKind, Loc, Op, OutputKind, Type, ValueId};
use nnc_compiler::{LayerInfo, Module};

use crate::summary::{format_count, shape_text};

/// What a box stands for; it decides the box's shape and colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// A data input, target or tensor constant of the model.
    Input,
    /// The loss or a prediction.
    Output,
    /// One call of a built-in layer or function.
    Layer,
    /// An operator or expression of the model that is not a built-in call.
    Op,
    /// The backward pass of a forward box.
    Backward,
    /// A fused kernel.
    Kernel,
}

impl ItemKind {
    /// The class of the box in SVG output.
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Input => "input",
            ItemKind::Output => "output",
            ItemKind::Layer => "layer",
            ItemKind::Op => "op",
            ItemKind::Backward => "backward",
            ItemKind::Kernel => "kernel",
        }
    }
}

/// One box of the picture.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub kind: ItemKind,
    /// The first line: what it is and its output shape
    /// (`conv2d 3×3 → [B, 16, 32, 32]`).
    pub title: String,
    /// The second line: the call site's name and its parameter count, or
    /// the source text of an expression.
    pub subtitle: String,
    /// The `.nn` lines the box's nodes came from, ascending.
    pub lines: Vec<u32>,
    /// More for the tooltip: the parameters and state it reads, the outputs
    /// it writes, the ops of a kernel.
    pub notes: Vec<String>,
    /// For kernels: the kernel kind (`conv`, `loop`, …), which colours it.
    pub class: Option<&'static str>,
    /// The box is part of the backward pass or the optimiser update (edges
    /// from forward boxes into it carry saved values).
    pub backward: bool,
}

/// An arrow: the value `from` computes is read by `to`.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// The type of the value carried (the first, when several are).
    pub value: String,
}

/// The boxes and arrows of one graph (or of each training step of a model
/// with several optimisers, side by side).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Picture {
    pub items: Vec<Item>,
    pub edges: Vec<Edge>,
}

impl Picture {
    /// Appends `other`, a picture of another step, prefixing its boxes'
    /// subtitles with `prefix`.
    pub fn append(&mut self, other: Picture, prefix: &str) {
        let offset = self.items.len();
        for mut item in other.items {
            item.subtitle = if item.subtitle.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix} · {}", item.subtitle)
            };
            self.items.push(item);
        }
        for edge in other.edges {
            self.edges.push(Edge { from: edge.from + offset, to: edge.to + offset, ..edge });
        }
    }
}

/// At most this many notes are listed in a tooltip.
const MAX_NOTES: usize = 16;

/// The source text of a subtitle is cut to this many characters.
const MAX_SUBTITLE: usize = 36;

/// The picture of a forward or gradient graph: one box per layer call,
/// expression, backward pass of one of them, input and output.
pub fn of_graph(graph: &Graph, module: &Module, source: &str) -> Picture {
    let groups = Groups::of(graph, module, source);
    let mut builder = Builder::new(graph);
    // Boxes in the order of their first node.
    let mut item_of_group: Vec<Option<usize>> = vec![None; groups.groups.len()];
    for (v, node) in graph.nodes.iter().enumerate() {
        match node_role(node) {
            Role::Box => builder.owner[v] = Some(builder.push(input_item(node))),
            Role::Collapsed | Role::Inline => {}
            Role::Computed => {
                if let Some(g) = groups.group_of[v] {
                    let item = match item_of_group[g] {
                        Some(item) => item,
                        None => *item_of_group[g].insert(builder.push(groups.groups[g].item.clone())),
                    };
                    builder.owner[v] = Some(item);
                }
            }
        }
    }
    for (v, node) in graph.nodes.iter().enumerate() {
        let Some(item) = builder.owner[v] else { continue };
        for &a in &node.args {
            builder.read(item, a);
        }
    }
    builder.outputs(|v| v);
    builder.finish()
}

/// The picture of the fused stage: one box per kernel of `partition` (of
/// the optimised `graph`), inputs and outputs; with `by_layer`, one box per
/// layer, expression, backward pass or update instead, holding the kernels
/// whose nodes mostly come from it (listed in its tooltip).
pub fn of_partition(
    graph: &Graph,
    partition: &Partition,
    module: &Module,
    source: &str,
    by_layer: bool,
) -> Picture {
    let groups = Groups::of(graph, module, source);
    let mut builder = Builder::new(graph);
    for (v, node) in graph.nodes.iter().enumerate() {
        if partition.placement[v] == Placement::Leaf && node_role(node) == Role::Box {
            builder.owner[v] = Some(builder.push(input_item(node)));
        }
    }
    let mut kernel_items = vec![];
    // With `by_layer`: the box of each group, and its number of kernels.
    let mut merged: HashMap<usize, usize> = HashMap::new();
    let mut kernels_of: HashMap<usize, usize> = HashMap::new();
    for (k, kernel) in partition.kernels.iter().enumerate() {
        // Values the kernel recomputes belong to the kernel that owns them.
        let own = |v: &ValueId| partition.kernel_of(*v) == Some(k);
        // The layers the kernel's nodes come from, most nodes first.
        let mut counts: Vec<(usize, usize)> = vec![];
        for &v in kernel.nodes.iter().filter(|v| own(v)) {
            if let Some(g) = groups.group_of[v.index()] {
                match counts.iter_mut().find(|(group, _)| *group == g) {
                    Some((_, n)) => *n += 1,
                    None => counts.push((g, 1)),
                }
            }
        }
        counts.sort_by_key(|&(g, n)| (std::cmp::Reverse(n), g));
        let names: Vec<String> = counts.iter().map(|&(g, _)| groups.groups[g].short.clone()).collect();
        let shape = kernel
            .outputs
            .first()
            .map(|&v| shape_text(graph.ty(v)))
            .unwrap_or_else(|| kernel.domain.to_string());
        let subtitle = match names.as_slice() {
            [] => kernel.name.clone(),
            [one] => format!("{} · {one}", kernel.name),
            [one, rest @ ..] => format!("{} · {one} +{}", kernel.name, rest.len()),
        };
        let lines: BTreeSet<u32> =
            kernel.nodes.iter().filter(|v| own(v)).flat_map(|&v| lines_of(graph.node(v).loc)).collect();
        let mut notes: Vec<String> = vec![];
        if names.len() > 1 {
            notes.push(format!("from {}", names.join(", ")));
        }
        let ops: Vec<String> = kernel
            .nodes
            .iter()
            .map(|&v| {
                let epilogue = if kernel.epilogue.contains(&v) { " (epilogue)" } else { "" };
                let again = if own(&v) { "" } else { " (recomputed)" };
                format!("{v} {}{epilogue}{again}", graph.node(v).op.mnemonic())
            })
            .collect();
        notes.push(format!("ops: {}", ops.join(", ")));
        let backward = kernel
            .nodes
            .iter()
            .filter(|v| own(v))
            .any(|&v| groups.group_of[v.index()].is_none_or(|g| groups.groups[g].item.backward));
        if let (true, Some(&(g, _))) = (by_layer, counts.first()) {
            let item = *merged.entry(g).or_insert_with(|| {
                let mut item = groups.groups[g].item.clone();
                item.lines.clear();
                builder.push(item)
            });
            let entry = &mut builder.items[item];
            entry.notes.push(format!("{} {} → {shape}: {}", kernel.name, kernel.kind.name(), ops.join(", ")));
            let all: BTreeSet<u32> = entry.lines.iter().copied().chain(lines).collect();
            entry.lines = all.into_iter().collect();
            *kernels_of.entry(item).or_insert(0) += 1;
            kernel_items.push(item);
            continue;
        }
        let item = builder.push(Item {
            kind: ItemKind::Kernel,
            title: format!("{} → {shape}", kernel.kind.name()),
            subtitle,
            lines: lines.into_iter().collect(),
            notes,
            class: Some(kernel.kind.name()),
            backward,
        });
        kernel_items.push(item);
    }
    for (item, count) in kernels_of {
        let noun = if count == 1 { "kernel" } else { "kernels" };
        let entry = &mut builder.items[item];
        entry.subtitle =
            format!("{} · {count} {noun}", entry.subtitle.split(" · ").next().unwrap_or_default());
    }
    for v in 0..graph.nodes.len() {
        if let Placement::Kernel(k) = partition.placement[v] {
            builder.owner[v] = Some(kernel_items[k]);
        }
    }
    for (k, kernel) in partition.kernels.iter().enumerate() {
        for &v in &kernel.inputs {
            builder.read(kernel_items[k], partition.base(v));
        }
    }
    builder.outputs(|v| partition.base(v));
    builder.finish()
}

/// How a node appears in a picture of its graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// A box of its own: a data input, target or constant tensor.
    Box,
    /// Listed in the tooltip of the boxes that read it: a parameter, state,
    /// the random key or a hyperparameter.
    Collapsed,
    /// Not shown: a scalar constant or a size.
    Inline,
    /// Part of a layer, expression or backward box.
    Computed,
}

fn node_role(node: &nnc_compiler::ir::Node) -> Role {
    match &node.op {
        Op::Input { kind: InputKind::Data | InputKind::Target | InputKind::Const, .. } => Role::Box,
        Op::Input { .. } => Role::Collapsed,
        Op::Const { .. } => Role::Inline,
        _ => Role::Computed,
    }
}

/// The box of a data input, target or constant.
fn input_item(node: &nnc_compiler::ir::Node) -> Item {
    let (word, name) = match &node.op {
        Op::Input { name, kind: InputKind::Target } => ("target", name.as_str()),
        Op::Input { name, kind: InputKind::Const } => ("const", name.as_str()),
        Op::Input { name, .. } => ("input", name.as_str()),
        _ => ("value", ""),
    };
    Item {
        kind: ItemKind::Input,
        title: format!("{word} {name}"),
        subtitle: type_text(&node.ty),
        lines: lines_of(node.loc),
        notes: vec![],
        class: None,
        backward: false,
    }
}

/// A value's type: `f32[B, 1]`, `f32 scalar`.
fn type_text(ty: &Type) -> String {
    if ty.shape.rank() == 0 {
        format!("{} scalar", ty.dtype.name())
    } else {
        ty.to_string()
    }
}

/// The lines of a source location (none for a node without one).
fn lines_of(loc: Loc) -> Vec<u32> {
    if loc.is_none() {
        return vec![];
    }
    (loc.line..=loc.end_line.max(loc.line)).collect()
}

/// Items, the item that shows each node, and the arrows between items.
struct Builder<'g> {
    graph: &'g Graph,
    items: Vec<Item>,
    /// The item showing each node (`None` for collapsed and inline nodes).
    owner: Vec<Option<usize>>,
    edges: Vec<Edge>,
    /// The index in `edges` of each (from, to) pair.
    edge_index: HashMap<(usize, usize), usize>,
    /// Collapsed inputs already noted per item.
    noted: HashSet<(usize, ValueId)>,
}

impl<'g> Builder<'g> {
    fn new(graph: &'g Graph) -> Builder<'g> {
        Builder {
            graph,
            items: vec![],
            owner: vec![None; graph.nodes.len()],
            edges: vec![],
            edge_index: HashMap::new(),
            noted: HashSet::new(),
        }
    }

    fn push(&mut self, item: Item) -> usize {
        self.items.push(item);
        self.items.len() - 1
    }

    /// Item `item` reads value `v`: an arrow from the item showing `v`, or
    /// a note naming a collapsed input.
    fn read(&mut self, item: usize, v: ValueId) {
        let node = self.graph.node(v);
        match (self.owner[v.index()], node_role(node)) {
            (Some(from), _) if from != item && !self.edge_index.contains_key(&(from, item)) => {
                self.edge_index.insert((from, item), self.edges.len());
                self.edges.push(Edge { from, to: item, value: node.ty.to_string() });
            }
            (None, Role::Collapsed) if self.noted.insert((item, v)) => {
                if let Op::Input { name, kind } = &node.op {
                    let word = match kind {
                        InputKind::Param { .. } => "param",
                        InputKind::State { .. } => "state",
                        InputKind::Key => "key",
                        _ => "hyper",
                    };
                    self.items[item].notes.push(format!("reads {word} {name}: {}", node.ty));
                }
            }
            _ => {}
        }
    }

    /// The loss and predictions become boxes with an arrow from the box
    /// computing them (`base` resolves a value to the one holding its
    /// data); the other outputs (gradients, new parameters and state) are
    /// noted on that box.
    fn outputs(&mut self, base: impl Fn(ValueId) -> ValueId) {
        for output in &self.graph.outputs {
            let v = base(output.value);
            let producer = self.owner.get(v.index()).copied().flatten();
            match output.kind {
                OutputKind::Loss | OutputKind::Prediction => {
                    let word = if output.kind == OutputKind::Loss { "loss" } else { "output" };
                    let node = self.graph.node(output.value);
                    let item = self.push(Item {
                        kind: ItemKind::Output,
                        title: if output.name == word {
                            word.to_string()
                        } else {
                            format!("{word} {}", output.name)
                        },
                        subtitle: type_text(&node.ty),
                        lines: lines_of(node.loc),
                        notes: vec![],
                        class: None,
                        backward: false,
                    });
                    if let Some(from) = producer {
                        self.edges.push(Edge { from, to: item, value: node.ty.to_string() });
                    }
                }
                kind => {
                    if let Some(from) = producer {
                        let word = match kind {
                            OutputKind::Param => "new param",
                            OutputKind::State => "new state",
                            _ => "output",
                        };
                        self.items[from].notes.push(format!("writes {word} {}", output.name));
                    }
                }
            }
        }
    }

    fn finish(mut self) -> Picture {
        for item in &mut self.items {
            if item.notes.len() > MAX_NOTES {
                let more = item.notes.len() - (MAX_NOTES - 1);
                item.notes.truncate(MAX_NOTES - 1);
                item.notes.push(format!("… and {more} more"));
            }
        }
        Picture { items: self.items, edges: self.edges }
    }
}

/// A group of computed nodes shown as one box.
struct Group {
    item: Item,
    /// How a kernel names it: `conv2d e1.conv2d_2`, `∇ relu e1.relu_1`.
    short: String,
}

/// The computed nodes of a graph grouped into layer, expression and
/// backward boxes.
struct Groups {
    groups: Vec<Group>,
    group_of: Vec<Option<usize>>,
}

impl Groups {
    fn of(graph: &Graph, module: &Module, source: &str) -> Groups {
        let n = graph.nodes.len();
        // Forward nodes: connected nodes of the same source location.
        let mut uf = UnionFind::new(n);
        let forward = |v: usize| {
            let node = &graph.nodes[v];
            node_role(node) == Role::Computed && node.grad_of.is_none()
        };
        for (v, node) in graph.nodes.iter().enumerate() {
            if !forward(v) {
                continue;
            }
            for a in &node.args {
                let a = a.index();
                if a < n && forward(a) && graph.nodes[a].loc == node.loc {
                    uf.union(v, a);
                }
            }
        }
        // The forward groups in order of their first node.
        let mut root_group: HashMap<usize, usize> = HashMap::new();
        let mut members: Vec<Vec<usize>> = vec![];
        let mut group_of = vec![None; n];
        for (v, slot) in group_of.iter_mut().enumerate() {
            if !forward(v) {
                continue;
            }
            let root = uf.find(v);
            let g = *root_group.entry(root).or_insert_with(|| {
                members.push(vec![]);
                members.len() - 1
            });
            members[g].push(v);
            *slot = Some(g);
        }
        let mut groups: Vec<Group> = forward_groups(graph, module, source, &members);
        // Backward nodes: with the backward box of their forward node's
        // group, or, for the backward nodes of an input, by location.
        let mut backward_of: HashMap<BackwardKey, usize> = HashMap::new();
        for (v, node) in graph.nodes.iter().enumerate() {
            let Some(of) = node.grad_of else { continue };
            if node_role(node) != Role::Computed {
                continue;
            }
            let key = match group_of.get(of.index()).copied().flatten() {
                Some(g) if g < members.len() => BackwardKey::Group(g),
                _ => BackwardKey::Loc(node.loc),
            };
            let g = *backward_of.entry(key).or_insert_with(|| {
                let (title, subtitle, short, lines) = match key {
                    BackwardKey::Group(g) => {
                        let forward = &groups[g];
                        (
                            format!("∇ {}", forward.item.title.split(" → ").next().unwrap_or_default()),
                            forward.item.subtitle.split(" · ").next().unwrap_or_default().to_string(),
                            format!("∇ {}", forward.short),
                            forward.item.lines.clone(),
                        )
                    }
                    BackwardKey::Loc(loc) => {
                        let text = snippet(source, loc);
                        ("∇".to_string(), text.clone(), format!("∇ {text}"), lines_of(loc))
                    }
                };
                groups.push(Group {
                    item: Item {
                        kind: ItemKind::Backward,
                        title,
                        subtitle,
                        lines,
                        notes: vec![],
                        class: None,
                        backward: true,
                    },
                    short,
                });
                groups.len() - 1
            });
            group_of[v] = Some(g);
        }
        Groups { groups, group_of }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum BackwardKey {
    Group(usize),
    Loc(Loc),
}

/// The boxes of the forward groups `members` (node indices, ascending):
/// a layer call site when `module.layers` has one at the group's location
/// (told apart by their parameters' names, else in order), an expression
/// otherwise.
fn forward_groups(graph: &Graph, module: &Module, source: &str, members: &[Vec<usize>]) -> Vec<Group> {
    let mut sites: HashMap<Loc, Vec<usize>> = HashMap::new();
    for (i, layer) in module.layers.iter().enumerate() {
        sites.entry(layer.loc).or_default().push(i);
    }
    // Call sites by their parameters: `e1.conv2d_2.weight` → `e1.conv2d_2`.
    let mut site_of_group: Vec<Option<usize>> = vec![None; members.len()];
    let mut taken: BTreeSet<usize> = BTreeSet::new();
    for (g, nodes) in members.iter().enumerate() {
        let loc = graph.nodes[nodes[0]].loc;
        let Some(candidates) = sites.get(&loc) else { continue };
        if let [only] = candidates.as_slice() {
            site_of_group[g] = Some(*only);
            continue;
        }
        let params = param_names(graph, nodes);
        let found = candidates.iter().copied().find(|&i| {
            let prefix = format!("{}.", module.layers[i].name);
            params.iter().any(|p| p.starts_with(&prefix))
        });
        if let Some(i) = found {
            site_of_group[g] = Some(i);
            taken.insert(i);
        }
    }
    // The others in order: the k-th group at a location without a match is
    // the k-th call site there without one.
    let mut next: HashMap<Loc, usize> = HashMap::new();
    for (g, nodes) in members.iter().enumerate() {
        let loc = graph.nodes[nodes[0]].loc;
        if site_of_group[g].is_some() {
            continue;
        }
        let Some(candidates) = sites.get(&loc) else { continue };
        let free: Vec<usize> = candidates.iter().copied().filter(|i| !taken.contains(i)).collect();
        let k = next.entry(loc).or_insert(0);
        site_of_group[g] = free.get(*k).or(free.last()).copied();
        *k += 1;
    }
    members
        .iter()
        .zip(site_of_group)
        .map(|(nodes, site)| {
            let first = &graph.nodes[nodes[0]];
            let last = *nodes.last().unwrap_or(&nodes[0]);
            let lines: BTreeSet<u32> = nodes.iter().flat_map(|&v| lines_of(graph.nodes[v].loc)).collect();
            let lines: Vec<u32> = lines.into_iter().collect();
            if is_update(graph, nodes) {
                return update_group(graph, site.map(|i| &module.layers[i]), nodes, lines);
            }
            match site {
                Some(i) => layer_group(graph, &module.layers[i], nodes, lines),
                None => {
                    let op = graph.nodes[last].op.mnemonic();
                    let text = snippet(source, first.loc);
                    Group {
                        item: Item {
                            kind: ItemKind::Op,
                            title: format!("{op} → {}", shape_text(graph.ty(ValueId(last as u32)))),
                            subtitle: text.clone(),
                            lines,
                            notes: vec![],
                            class: None,
                            backward: false,
                        },
                        short: if text.is_empty() { op.to_string() } else { format!("{op} {text}") },
                    }
                }
            }
        })
        .collect()
}

/// The nodes belong to the optimiser update: they read its state
/// (`optim.*`) or the learning rate.
fn is_update(graph: &Graph, nodes: &[usize]) -> bool {
    nodes.iter().any(|&v| {
        graph.nodes[v].args.iter().any(|a| match graph.nodes.get(a.index()).map(|n| &n.op) {
            Some(Op::Input { kind: InputKind::Hyper, .. }) => true,
            Some(Op::Input { name, kind: InputKind::State { .. } }) => name.starts_with("optim."),
            _ => false,
        })
    })
}

/// The box of (part of) the optimiser update: the parameters it writes, or
/// the layer whose parameters they are.
fn update_group(graph: &Graph, layer: Option<&LayerInfo>, nodes: &[usize], lines: Vec<u32>) -> Group {
    let last = *nodes.last().unwrap_or(&nodes[0]);
    let written: Vec<&str> = graph
        .outputs
        .iter()
        .filter(|o| o.kind == OutputKind::Param && nodes.binary_search(&o.value.index()).is_ok())
        .map(|o| o.name.as_str())
        .collect();
    let subtitle = match (written.as_slice(), layer) {
        ([], Some(layer)) => layer.name.clone(),
        ([], None) => "optimizer".to_string(),
        (names, _) => names.join(", "),
    };
    Group {
        item: Item {
            kind: ItemKind::Backward,
            title: format!("update → {}", shape_text(graph.ty(ValueId(last as u32)))),
            subtitle: subtitle.clone(),
            lines,
            notes: vec![],
            class: None,
            backward: true,
        },
        short: format!("update {subtitle}"),
    }
}

/// The box of a layer call site.
fn layer_group(graph: &Graph, layer: &LayerInfo, nodes: &[usize], lines: Vec<u32>) -> Group {
    let kind = match window_of(graph, nodes) {
        Some(window) => format!("{} {window}", layer.kind),
        None => layer.kind.clone(),
    };
    let params = if layer.params > 0 {
        let noun = if layer.params == 1 { "param" } else { "params" };
        format!(" · {} {noun}", format_count(layer.params))
    } else {
        String::new()
    };
    Group {
        item: Item {
            kind: ItemKind::Layer,
            title: format!("{kind} → {}", shape_text(&layer.output)),
            subtitle: format!("{}{params}", layer.name),
            lines,
            notes: vec![],
            class: None,
            backward: false,
        },
        short: format!("{} {}", layer.kind, layer.name),
    }
}

/// The kernel or window size of the first convolution or pooling among
/// `nodes`: `3×3`.
fn window_of(graph: &Graph, nodes: &[usize]) -> Option<String> {
    let dims = |d: &[usize]| d.iter().map(usize::to_string).collect::<Vec<_>>().join("×");
    nodes.iter().find_map(|&v| {
        let node = &graph.nodes[v];
        match &node.op {
            Op::Conv(_) | Op::ConvTranspose { .. } => {
                let weight: &Type = graph.ty(*node.args.get(1)?);
                let known = weight.shape.as_known()?;
                Some(dims(known.get(2..)?))
            }
            Op::Pool(w) => Some(dims(&w.window)),
            _ => None,
        }
    })
}

/// The names of the parameters the nodes read directly.
fn param_names(graph: &Graph, nodes: &[usize]) -> Vec<String> {
    let mut names = vec![];
    for &v in nodes {
        for a in &graph.nodes[v].args {
            if let Some(Op::Input { name, kind: InputKind::Param { .. } | InputKind::State { .. } }) =
                graph.nodes.get(a.index()).map(|n| &n.op)
            {
                names.push(name.clone());
            }
        }
    }
    names
}

/// The source text at `loc` on one line, cut to [`MAX_SUBTITLE`]
/// characters.
fn snippet(source: &str, loc: Loc) -> String {
    let Some((lo, hi)) = loc.to_span(source) else { return String::new() };
    let text: String =
        source.get(lo..hi).unwrap_or_default().split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > MAX_SUBTITLE {
        let cut: String = text.chars().take(MAX_SUBTITLE - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Disjoint sets of node indices.
struct UnionFind {
    parent: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> UnionFind {
        UnionFind { parent: (0..n).collect() }
    }

    fn find(&mut self, mut v: usize) -> usize {
        while self.parent[v] != v {
            self.parent[v] = self.parent[self.parent[v]];
            v = self.parent[v];
        }
        v
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            // The smaller index is the root, so roots are first nodes.
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            self.parent[hi] = lo;
        }
    }
}
