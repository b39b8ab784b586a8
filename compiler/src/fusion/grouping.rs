//! Grouping: nodes gathered into kernels. Each computed node starts a group
//! or joins one ([`Builder::elementwise`], [`Builder::reduction`]); groups
//! are merged with union-find, and a node joins or merges groups only when
//! the kernel graph stays acyclic.

use std::collections::HashSet;

use super::views::Layout;
use super::{data_args, is_reduction, KernelKind};
use crate::ir::{BinaryOp, Graph, LstmSizes, Op, Shape, ValueId};

/// A kernel under construction.
pub(super) struct Group {
    pub kind: KernelKind,
    pub domain: Shape,
    pub members: Vec<ValueId>,
    pub epilogue: Vec<ValueId>,
    /// For epilogue-capable kernels: the last value of the chain.
    tail: Option<ValueId>,
    /// For a matmul kernel that adds its product to a sum of products:
    /// (the sum, the addend) (see [`super::Kernel::accumulate`]).
    pub accumulate: Option<(ValueId, ValueId)>,
    /// The values the members read from outside the group (graph inputs
    /// and other groups' values, views resolved to their base), sorted.
    inputs: Vec<ValueId>,
}

/// The most values a loop kernel reads from outside: each is a pointer the
/// generated loop advances (x86-64 has 16 general registers), so a loop
/// past this many spills them on every iteration; beyond it an elementwise
/// op starts a new loop. A long sum of separately computed values (a bias
/// gradient summed over the 64 steps of an unrolled recurrence) becomes a
/// chain of loops instead of one loop reading 64 buffers.
pub(super) const MAX_LOOP_INPUTS: usize = 16;

/// The smallest extent of the first axis a reduction keeps for it to join
/// a contraction's epilogue ([`Builder::reduction`]).
const MIN_EPILOGUE_REDUCTION: usize = 16;

/// The groups of a graph's nodes under construction, merged with
/// union-find.
pub(super) struct Builder<'g> {
    graph: &'g Graph,
    /// Every node's layout relative to its base ([`super::views`]).
    pub layout: Vec<Layout>,
    /// Group of each computed node (before union-find resolution).
    group_of: Vec<Option<usize>>,
    /// Union-find parent of each group; a group is a root when it is its
    /// own parent.
    pub parent: Vec<usize>,
    pub groups: Vec<Group>,
    /// The groups each group's members read from, as recorded (some may
    /// since have been merged: resolve with `find`); kept up to date as
    /// nodes join and groups merge, so that `preds` need not rescan the
    /// members.
    reads: Vec<Vec<usize>>,
    /// The search of `reaches`: the search during which each group was
    /// last visited.
    visited: Vec<u32>,
    search: u32,
    /// How many times each node is read (as an operand, or as a graph
    /// output).
    uses: Vec<usize>,
}

impl<'g> Builder<'g> {
    /// No groups yet over `graph`, whose nodes have the given layouts.
    pub fn new(graph: &'g Graph, layout: Vec<Layout>) -> Builder<'g> {
        let uses = graph.use_counts();
        Builder {
            graph,
            layout,
            group_of: vec![None; graph.nodes.len()],
            parent: vec![],
            groups: vec![],
            reads: vec![],
            visited: vec![],
            search: 0,
            uses,
        }
    }
    fn find(&mut self, mut g: usize) -> usize {
        while self.parent[g] != g {
            self.parent[g] = self.parent[self.parent[g]];
            g = self.parent[g];
        }
        g
    }

    pub fn group(&mut self, v: ValueId) -> Option<usize> {
        self.group_of[v.index()].map(|g| self.find(g))
    }

    pub fn new_group(&mut self, kind: KernelKind, domain: Shape, v: ValueId) -> usize {
        let id = self.groups.len();
        let tail = kind.takes_epilogue().then_some(v);
        let reads = self.arg_groups(v);
        let inputs = self.external_reads(v, id);
        self.groups.push(Group {
            kind,
            domain,
            members: vec![v],
            epilogue: vec![],
            tail,
            accumulate: None,
            inputs,
        });
        self.parent.push(id);
        self.reads.push(reads);
        self.visited.push(0);
        self.group_of[v.index()] = Some(id);
        id
    }

    fn add(&mut self, g: usize, v: ValueId) {
        let reads = self.arg_groups(v);
        self.reads[g].extend(reads);
        let inputs = self.external_reads(v, g);
        let grp = &mut self.groups[g];
        grp.inputs.extend(inputs);
        grp.inputs.sort();
        grp.inputs.dedup();
        grp.members.push(v);
        self.group_of[v.index()] = Some(g);
    }

    /// The values `v` reads from outside group `g`: graph inputs and values
    /// of other groups (views resolved to their base; inline values are
    /// immediates, not reads).
    fn external_reads(&mut self, v: ValueId, g: usize) -> Vec<ValueId> {
        let mut out = vec![];
        for a in data_args(self.graph, v).to_vec() {
            let base = self.layout[a.index()].base;
            let outside = match self.group(base) {
                Some(h) => h != g,
                None => matches!(self.graph.node(base).op, Op::Input { .. }),
            };
            if outside && !out.contains(&base) {
                out.push(base);
            }
        }
        out
    }

    /// How many values group `g` would read from outside after taking `v`
    /// and merging the groups `with`.
    fn inputs_with(&mut self, g: usize, with: &[usize], v: ValueId) -> usize {
        let mut all: Vec<ValueId> = self.groups[g].inputs.clone();
        for &h in with {
            all.extend(self.groups[h].inputs.iter().copied());
        }
        all.extend(self.external_reads(v, g));
        all.sort();
        all.dedup();
        all.retain(|&x| match self.group(x) {
            Some(h) => h != g && !with.contains(&h),
            None => true,
        });
        all.len()
    }

    /// The groups `v` reads from. Operands come before `v` in the graph, so
    /// they already have their groups when `v` joins one.
    fn arg_groups(&mut self, v: ValueId) -> Vec<usize> {
        let mut out = vec![];
        for &a in data_args(self.graph, v) {
            let base = self.layout[a.index()].base;
            if let Some(h) = self.group_of[base.index()] {
                out.push(h);
            }
        }
        out
    }

    /// The groups a group reads from directly.
    pub fn preds(&mut self, g: usize) -> Vec<usize> {
        let mut out: Vec<usize> = vec![];
        for i in 0..self.reads[g].len() {
            let h = self.find(self.reads[g][i]);
            // A group emptied by `sink` is no kernel.
            if h != g && !out.contains(&h) && !self.groups[h].members.is_empty() {
                out.push(h);
            }
        }
        self.reads[g].clone_from(&out);
        out
    }

    /// Whether group `from` depends (transitively) on group `to`.
    fn reaches(&mut self, from: usize, to: usize) -> bool {
        self.search += 1;
        let search = self.search;
        let mut stack = vec![from];
        while let Some(g) = stack.pop() {
            if g == to {
                return true;
            }
            if self.visited[g] == search {
                continue;
            }
            self.visited[g] = search;
            // `preds(g)`, without the copy: repeats are skipped as visited.
            for i in 0..self.reads[g].len() {
                let h = self.find(self.reads[g][i]);
                self.reads[g][i] = h;
                if h != g && self.visited[h] != search {
                    stack.push(h);
                }
            }
            if self.reads[g].len() > 16 {
                self.reads[g].sort_unstable();
                self.reads[g].dedup();
            }
        }
        false
    }

    fn merge(&mut self, into: usize, from: usize) {
        let moved = std::mem::take(&mut self.groups[from].members);
        self.groups[into].members.extend(moved);
        self.groups[into].members.sort();
        let reads = std::mem::take(&mut self.reads[from]);
        self.reads[into].extend(reads);
        self.parent[from] = into;
        let mut inputs = std::mem::take(&mut self.groups[from].inputs);
        inputs.extend(std::mem::take(&mut self.groups[into].inputs));
        inputs.sort();
        inputs.dedup();
        inputs.retain(|&x| self.group(x) != Some(into));
        self.groups[into].inputs = inputs;
    }

    /// Operand groups of `v`: (direct reads of elementwise values, all).
    fn operand_groups(&mut self, v: ValueId) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
        let node = self.graph.node(v);
        let generated = matches!(node.op, Op::OneHot { .. } | Op::RngUniform { .. });
        let mut direct = vec![];
        let mut blocked = vec![];
        let mut all = vec![];
        for a in data_args(self.graph, v).to_vec() {
            let base = self.layout[a.index()].base;
            let Some(g) = self.group(base) else { continue };
            if !all.contains(&g) {
                all.push(g);
            }
            let is_direct = base == a && !generated && !is_reduction(&self.graph.node(a).op);
            if is_direct {
                if !direct.contains(&g) {
                    direct.push(g);
                }
            } else if !blocked.contains(&g) {
                blocked.push(g);
            }
        }
        (direct, blocked, all)
    }

    /// True when every operand group other than `except` is free of a path
    /// to `target` (so `target` may take the node without a cycle).
    fn no_cycle(&mut self, all: &[usize], except: &[usize], target: usize) -> bool {
        all.iter()
            .filter(|h| !except.contains(h))
            .copied()
            .collect::<Vec<_>>()
            .into_iter()
            .all(|h| !self.reaches(h, target))
    }

    /// For `v = add(p, m)` (either order): the matmul kernel computing `m`
    /// that can compute `v` instead, by accumulating its product onto a copy
    /// of `p`, with `p`. It can when `m` is a matmul kernel's result that
    /// nothing but `v` reads (no epilogue yet), `p` is itself a sum of
    /// products (a matmul result, or such an accumulated sum) of `v`'s
    /// shape read directly, and the kernel reading `p` makes no cycle. Of
    /// two matmul operands the later one accumulates onto the earlier: a
    /// chain `((m₀ + m₁) + m₂) + …` becomes one GEMM per product, each
    /// adding onto the running sum, instead of every product kept in its own
    /// buffer until one kernel adds them all.
    fn accumulation(&mut self, v: ValueId) -> Option<(usize, ValueId)> {
        let node = self.graph.node(v);
        if node.op != Op::Binary(BinaryOp::Add) || node.args.len() != 2 {
            return None;
        }
        let ty = self.graph.ty(v);
        let mut best: Option<(usize, ValueId, ValueId)> = None;
        for (m, p) in [(node.args[0], node.args[1]), (node.args[1], node.args[0])] {
            if m == p || self.graph.ty(m) != ty || self.graph.ty(p) != ty {
                continue;
            }
            if self.layout[m.index()].base != m || self.layout[p.index()].base != p {
                continue;
            }
            if self.graph.node(m).op != Op::MatMul || self.uses[m.index()] != 1 {
                continue;
            }
            let Some(g) = self.group(m) else { continue };
            let grp = &self.groups[g];
            if grp.kind != KernelKind::MatMul || grp.tail != Some(m) || grp.accumulate.is_some() {
                continue;
            }
            let p_is_sum = match self.group(p) {
                Some(h) => {
                    let pg = &self.groups[h];
                    pg.kind == KernelKind::MatMul
                        && ((pg.members.first() == Some(&p)
                            && pg.epilogue.is_empty()
                            && pg.accumulate.is_none())
                            || pg.accumulate.is_some_and(|(sum, _)| sum == p))
                }
                None => false,
            };
            if p_is_sum && best.is_none_or(|(_, bm, _)| m > bm) {
                best = Some((g, m, p));
            }
        }
        let (g, _, p) = best?;
        let (_, _, all) = self.operand_groups(v);
        self.no_cycle(&all, &[g], g).then_some((g, p))
    }

    /// For `v = matmul_sum(permute(slice(y, z lanes), [0, 2, 1]),
    /// slice(r, dpre lanes))` with `r = lstm_grad(y, …)` — the weight
    /// gradient `Σ zᵀ·dpre` that autodiff writes for an `lstm` — the group
    /// computing `r`, which can compute `v` too (see
    /// [`super::Kernel::nodes`]): `v` reads nothing but `y`, which `r`
    /// reads, and `r` itself, so no cycle can form. The views must be views
    /// (not stored copies) of exactly those lanes, and `r`'s group must hold
    /// `r` alone.
    pub fn recurrence_weight_grad(&mut self, v: ValueId) -> Option<usize> {
        let graph = self.graph;
        let node = graph.node(v);
        let (&[zt, dpre], Op::MatMulSum) = (node.args.as_slice(), &node.op) else { return None };
        let is_view = |x: ValueId| self.group_of[x.index()].is_none();
        let lanes = |x: ValueId| match graph.node(x).op {
            Op::Slice { axis: 2, start, end } if is_view(x) => Some((graph.node(x).args[0], start, end)),
            _ => None,
        };
        let z_lanes = match &graph.node(zt).op {
            Op::Permute { axes } if *axes == [0, 2, 1] && is_view(zt) => graph.node(zt).args[0],
            _ => return None,
        };
        let (y, z_start, z_end) = lanes(z_lanes)?;
        let (r, dpre_start, dpre_end) = lanes(dpre)?;
        let grad = graph.node(r);
        let (Op::LstmGrad { .. }, Some(&w)) =
            (&grad.op, grad.op.lstm_weight().and_then(|i| grad.args.get(i)))
        else {
            return None;
        };
        let sizes = LstmSizes::of_weight(&graph.ty(w).shape)?;
        let h = sizes.hidden;
        let fits = grad.args.first() == Some(&y)
            && (z_start, z_end) == (6 * h, sizes.result_lanes())
            && (dpre_start, dpre_end) == (0, 4 * h);
        let g = self.group(r)?;
        (fits && self.groups[g].kind == KernelKind::LstmGrad && self.groups[g].members == [r]).then_some(g)
    }

    /// Makes the weight gradient `v` a member of the recurrence gradient's
    /// group `g` ([`Builder::recurrence_weight_grad`]).
    pub fn join_recurrence(&mut self, g: usize, v: ValueId) {
        self.add(g, v);
    }

    pub fn elementwise(&mut self, v: ValueId) {
        if let Some((g, p)) = self.accumulation(v) {
            self.add(g, v);
            let grp = &mut self.groups[g];
            grp.accumulate = Some((v, p));
            grp.tail = None;
            return;
        }
        let shape = self.graph.ty(v).shape.clone();
        let (direct, blocked, all) = self.operand_groups(v);
        // Epilogue of a contraction whose chain ends at one of the operands,
        // or that computes one of them in its epilogue (a value combining
        // two values of the epilogue, as `0.5·x·(1 + erf(x/√2))` does).
        let node = self.graph.node(v);
        if !matches!(node.op, Op::OneHot { .. } | Op::RngUniform { .. }) {
            for &g in &direct {
                let grp = &self.groups[g];
                // A value of the backward pass stays out of a forward
                // epilogue (and the other way round): computed early, it
                // would be held through the rest of the forward pass.
                // Where the backward pass reads a derivative of the
                // forward's (relu's mask, tanh's `1 - y²`), it computes it
                // there ([`Builder::sink`]) from what the forward stores
                // anyway.
                let main = grp.members.first().copied();
                let same_pass =
                    main.is_some_and(|m| self.graph.node(m).grad_of.is_some() == node.grad_of.is_some());
                let after_tail = same_pass && grp.tail.is_some_and(|t| node.args.contains(&t));
                let in_epilogue = grp.tail.is_some()
                    && same_pass
                    && node.args.iter().any(|&a| main == Some(a) || grp.epilogue.contains(&a));
                let on_chain = after_tail || (in_epilogue && self.inputs_with(g, &[], v) <= MAX_LOOP_INPUTS);
                let grp = &self.groups[g];
                if on_chain && grp.domain == shape && !blocked.contains(&g) && self.no_cycle(&all, &[g], g) {
                    self.add(g, v);
                    self.groups[g].epilogue.push(v);
                    self.groups[g].tail = Some(v);
                    return;
                }
            }
        }
        let mut target: Option<usize> = None;
        for &e in &direct {
            let e = self.find(e);
            let grp = &self.groups[e];
            if grp.kind != KernelKind::Loop || grp.domain != shape || blocked.contains(&e) {
                continue;
            }
            match target {
                None => {
                    if self.no_cycle(&all, &[e], e) && self.inputs_with(e, &[], v) <= MAX_LOOP_INPUTS {
                        target = Some(e);
                    }
                }
                Some(t) if t != e => {
                    if !self.reaches(t, e)
                        && !self.reaches(e, t)
                        && self.no_cycle(&all, &[t, e], e)
                        && self.inputs_with(t, &[e], v) <= MAX_LOOP_INPUTS
                    {
                        self.merge(t, e);
                    }
                }
                Some(_) => {}
            }
        }
        match target {
            Some(t) => self.add(t, v),
            None => {
                self.new_group(KernelKind::Loop, shape, v);
            }
        }
    }

    /// Moves elementwise values that a loop computes only for one later
    /// loop of the same domain, or for the epilogue of a later contraction
    /// of that domain, into it, where they are read. Greedy grouping puts a
    /// value in the group of its operands, so the derivatives an unrolled
    /// recurrence's backward step needs (`σ·(1 − σ)`, `1 − tanh²`) are
    /// computed and stored by the forward step's loop, and loaded back by
    /// the backward step's; relu's mask `y > 0` by the loop of a
    /// normalisation's forward pass, for the epilogue of the convolution
    /// that computes its input gradient. A value moves when:
    /// - it is a unary, binary, compare, select or cast value of a loop `K`
    ///   with `K`'s domain, and no graph output;
    /// - every node that reads it is in one other loop `L` of the same
    ///   domain, or in the epilogue of one contraction `L` of that domain,
    ///   or is itself moving to `L` (no view reads it);
    /// - each operand it reads from `K` is moving too, or stored by `K`
    ///   anyway (read by another kernel, through a view, or a graph output);
    /// - the values moving from `K` to `L` add no more inputs to `L` than
    ///   they remove. A loop whose every value moves (GELU's `e^{-x²/2}`,
    ///   computed apart from the product whose epilogue reads it) is left
    ///   empty and is no kernel.
    ///
    /// `K` then stores fewer values and `L` loads no more; nothing is
    /// computed twice. `L` runs after `K` and already read from every group
    /// the moved values read (through `K`), so no cycle can form.
    pub fn sink(&mut self) {
        let graph = self.graph;
        let n = graph.nodes.len();
        let mut readers: Vec<Vec<ValueId>> = vec![vec![]; n];
        for (i, _) in graph.nodes.iter().enumerate() {
            let v = ValueId(i as u32);
            for &a in data_args(graph, v) {
                if !readers[a.index()].contains(&v) {
                    readers[a.index()].push(v);
                }
            }
        }
        let mut is_output = vec![false; n];
        for o in &graph.outputs {
            is_output[o.value.index()] = true;
        }
        let group: Vec<Option<usize>> = (0..n).map(|i| self.group(ValueId(i as u32))).collect();
        let movable = |v: ValueId, groups: &[Group]| {
            let node = graph.node(v);
            let Some(k) = group[v.index()] else { return false };
            matches!(node.op, Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Cast { .. })
                && !is_output[v.index()]
                && groups[k].kind == KernelKind::Loop
                && groups[k].domain == node.ty.shape
        };
        // Where each value would move (a loop group), deciding readers
        // first: a value moves to `L` when all its readers are in `L` or
        // move to `L` themselves.
        let mut target: Vec<Option<usize>> = vec![None; n];
        for i in (0..n).rev() {
            let v = ValueId(i as u32);
            if !movable(v, &self.groups) || readers[i].is_empty() {
                continue;
            }
            let k = group[i];
            let mut dest: Option<usize> = None;
            let ok = readers[i].iter().all(|&r| {
                let t = match (target[r.index()], group[r.index()]) {
                    (Some(t), _) if group[r.index()] == k => t,
                    (_, Some(g)) if Some(g) != k => g,
                    _ => return false,
                };
                dest.get_or_insert(t);
                dest == Some(t)
            });
            if let (true, Some(l)) = (ok, dest) {
                let grp = &self.groups[l];
                // In a contraction, only its epilogue can compute the value.
                let into_epilogue = grp.kind.takes_epilogue()
                    && readers[i].iter().all(|r| target[r.index()] == Some(l) || grp.epilogue.contains(r));
                if (grp.kind == KernelKind::Loop || into_epilogue) && grp.domain == graph.ty(v).shape {
                    target[i] = Some(l);
                }
            }
        }
        // An operand read from `K` that neither moves nor is stored anyway
        // keeps its readers in `K` (and theirs, down the chain).
        loop {
            let mut changed = false;
            for i in 0..n {
                let Some(l) = target[i] else { continue };
                let k = group[i];
                let stays = data_args(graph, ValueId(i as u32)).iter().any(|&a| {
                    let a_in_k = group[a.index()] == k;
                    let moves = target[a.index()] == Some(l);
                    // Read by another kernel (or through a view, which
                    // only another kernel does) or returned: stored anyway.
                    let stored =
                        is_output[a.index()] || readers[a.index()].iter().any(|&r| group[r.index()] != k);
                    a_in_k && !moves && !stored
                });
                let reader_stays =
                    readers[i].iter().any(|&r| group[r.index()] == k && target[r.index()] != Some(l));
                if stays || reader_stays {
                    target[i] = None;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Per (K, L): move only when L's inputs do not grow and K keeps a node.
        let mut pairs: std::collections::BTreeMap<(usize, usize), Vec<ValueId>> = Default::default();
        for i in 0..n {
            if let (Some(l), Some(k)) = (target[i], group[i]) {
                pairs.entry((k, l)).or_default().push(ValueId(i as u32));
            }
        }
        for ((k, l), moving) in pairs {
            // A loop whose every value moves is left empty and dropped.
            if moving.len() > self.groups[k].members.len() {
                continue;
            }
            // What L reads, by base value.
            let l_reads: HashSet<ValueId> = self.groups[l]
                .members
                .iter()
                .flat_map(|&m| data_args(graph, m).iter().map(|a| self.layout[a.index()].base))
                .collect();
            let read_by_l = |v: ValueId| l_reads.contains(&v);
            let removed = moving.iter().filter(|&&v| read_by_l(v)).count();
            let mut added: Vec<ValueId> = vec![];
            for &v in &moving {
                for &a in data_args(graph, v) {
                    let base = self.layout[a.index()].base;
                    let inline =
                        group[base.index()].is_none() && !matches!(graph.node(base).op, Op::Input { .. });
                    if moving.contains(&base) || inline || added.contains(&base) || read_by_l(base) {
                        continue;
                    }
                    added.push(base);
                }
            }
            if added.len() > removed {
                continue;
            }
            self.groups[k].members.retain(|m| !moving.contains(m));
            for &v in &moving {
                self.group_of[v.index()] = Some(l);
            }
            let grp = &mut self.groups[l];
            if grp.kind.takes_epilogue() {
                // The contraction stays first; the epilogue is in
                // definition order, as lowering computes it.
                grp.members.extend(moving.iter().copied());
                grp.members[1..].sort();
                grp.epilogue.extend(moving.iter().copied());
                grp.epilogue.sort();
            } else {
                grp.members.extend(moving.iter().copied());
                grp.members.sort();
            }
            let mut reads_k = vec![];
            for m in self.groups[k].members.clone() {
                reads_k.extend(self.arg_groups(m));
            }
            self.reads[k] = reads_k;
            for &v in &moving {
                let r = self.arg_groups(v);
                self.reads[l].extend(r);
            }
        }
    }

    pub fn reduction(&mut self, v: ValueId) {
        let Some(&a) = self.graph.node(v).args.first() else {
            self.new_group(KernelKind::Loop, Shape::scalar(), v);
            return;
        };
        let shape = self.graph.ty(a).shape.clone();
        let base = self.layout[a.index()].base;
        // A sum or maximum of a value a contraction's epilogue computes (a
        // normalisation's statistics) is reduced by that epilogue while the
        // value is in registers, and the value is stored only if something
        // else reads it. The plan splits the kernel along the first axis the
        // reduction keeps, so that axis has at least 16 elements (the
        // kernel still divides among threads) and is not the innermost: a
        // split of the innermost axis (a bias's gradient, summed over the
        // rows) would cut every row of the epilogue in pieces, each read
        // from where the product's threads left its rows (the transformer's
        // GELU gradient epilogue: 0.32 ms on 2 threads, 0.50 so cut).
        if let (Some(g), Op::ReduceSum { axes } | Op::ReduceMax { axes }) =
            (self.group(a), &self.graph.node(v).op)
        {
            let grp = &self.groups[g];
            let main = grp.members.first().copied();
            let same_pass = main.is_some_and(|m| {
                self.graph.node(m).grad_of.is_some() == self.graph.node(v).grad_of.is_some()
            });
            let first_kept = (0..shape.rank()).find(|ax| !axes.contains(ax));
            // A symbolic axis (the batch) counts as large enough: it is
            // bound at plan time, which splits by it as far as it goes.
            let kept = first_kept
                .filter(|&ax| ax + 1 < shape.rank())
                .map(|ax| shape.dims()[ax].known().unwrap_or(MIN_EPILOGUE_REDUCTION));
            if base == a
                && grp.kind.takes_epilogue()
                && grp.epilogue.contains(&a)
                && grp.domain == shape
                && same_pass
                && kept.is_some_and(|n| n >= MIN_EPILOGUE_REDUCTION)
            {
                self.add(g, v);
                self.groups[g].epilogue.push(v);
                return;
            }
        }
        let target = match self.group(base) {
            Some(g)
                if base == a
                    && !is_reduction(&self.graph.node(a).op)
                    && self.groups[g].kind == KernelKind::Loop
                    && self.groups[g].domain == shape =>
            {
                Some(g)
            }
            _ => None,
        };
        match target {
            Some(g) => self.add(g, v),
            None => {
                self.new_group(KernelKind::Loop, shape, v);
            }
        }
    }
}
