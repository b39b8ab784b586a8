//! The IR verifier: SSA order, operand types, declared result types, inputs
//! and outputs.
//!
//! Every pass may assume a verified graph and must leave one behind; tests
//! and debug builds run this after each stage. It re-derives each node's type
//! with [`infer`] (the single definition of the type rules), so a graph that
//! verifies is one [`Graph::add`] could have built. It never panics, whatever
//! the graph (e.g. one parsed from fuzzed text), and reports every violation,
//! each naming the value it concerns.

use std::collections::HashMap;

use super::error::StageError;
use super::graph::{Graph, Node, OutputKind, ValueId};
use super::infer::{check_leaf, infer};
use super::op::{InputKind, Op};
use super::types::{DType, Dim, Type};

/// Checks every invariant of a graph; returns every violation found, each
/// as text starting with the value it concerns (`%7: ...`).
pub fn verify(graph: &Graph) -> Result<(), Vec<String>> {
    violations(graph).map_err(|errors| errors.iter().map(StageError::to_string).collect())
}

/// Checks every invariant of a graph; returns every violation found, each
/// naming the value it concerns.
pub fn violations(graph: &Graph) -> Result<(), Vec<StageError>> {
    let mut errors = Violations(vec![]);
    for (index, node) in graph.nodes.iter().enumerate() {
        check_node(graph, index, node, &mut errors);
    }
    check_input_names(graph, &mut errors);
    check_outputs(graph, &mut errors);
    if errors.0.is_empty() {
        Ok(())
    } else {
        Err(errors.0)
    }
}

/// The violations found so far.
struct Violations(Vec<StageError>);

impl Violations {
    fn at(&mut self, id: ValueId, message: String) {
        self.0.push(StageError::at("verify", id, format!("{id}: {message}")));
    }
}

fn is_leaf(op: &Op) -> bool {
    matches!(op, Op::Input { .. } | Op::Const { .. })
}

fn check_node(graph: &Graph, index: usize, node: &Node, errors: &mut Violations) {
    let id = ValueId(index as u32);
    let mnemonic = node.op.mnemonic();
    if let Some(of) = node.grad_of {
        if of.index() >= index {
            errors.at(id, format!("`from {of}` must name an earlier (forward) node"));
        }
    }
    if is_leaf(&node.op) {
        if !node.args.is_empty() {
            errors.at(id, format!("`{mnemonic}` is a leaf but has {} operand(s)", node.args.len()));
        }
        if let Err(e) = check_leaf(&node.op, &node.ty) {
            errors.at(id, e.to_string());
        }
        return;
    }

    let mut operands_ok = true;
    for a in &node.args {
        if a.index() >= graph.nodes.len() {
            errors.at(id, format!("operand {a} of `{mnemonic}` does not exist"));
            operands_ok = false;
        } else if a.index() >= index {
            errors.at(id, format!("operand {a} of `{mnemonic}` is used before its definition"));
            operands_ok = false;
        }
    }
    if !operands_ok {
        return;
    }
    let arg_types: Vec<&Type> = node.args.iter().map(|a| &graph.nodes[a.index()].ty).collect();
    if groups_overflow(&node.op, &arg_types) {
        errors.at(id, format!("`{mnemonic}`: the weight's channel count times `groups` overflows"));
        return;
    }
    match infer(&node.op, &arg_types) {
        Ok(ty) if ty == node.ty => {}
        Ok(ty) => errors.at(id, format!("declared type {} but `{mnemonic}` gives {ty}", node.ty)),
        Err(e) => {
            errors.at(id, format!("`{mnemonic}` of {} (declared {}): {e}", types_text(&arg_types), node.ty))
        }
    }
}

/// `infer` multiplies the weight's second dimension by `groups` of a
/// convolution without an overflow check; such graphs are reported here
/// rather than handed to it.
fn groups_overflow(op: &Op, args: &[&Type]) -> bool {
    let groups = match op {
        Op::Conv(conv) | Op::ConvTranspose { conv, .. } => conv.groups,
        _ => return false,
    };
    let channels = args.get(1).and_then(|w| w.shape.dims().get(1)).and_then(Dim::known);
    channels.is_some_and(|n| n.checked_mul(groups).is_none())
}

fn types_text(types: &[&Type]) -> String {
    let items: Vec<String> = types.iter().map(|t| t.to_string()).collect();
    format!("({})", items.join(", "))
}

fn check_input_names(graph: &Graph, errors: &mut Violations) {
    let mut seen: HashMap<&str, ValueId> = HashMap::new();
    for (id, node) in graph.inputs() {
        if let Op::Input { name, .. } = &node.op {
            if let Some(first) = seen.insert(name, id) {
                seen.insert(name, first);
                errors.at(id, format!("input name {name:?} is already used by {first}"));
            }
        }
    }
}

fn check_outputs(graph: &Graph, errors: &mut Violations) {
    let mut seen: HashMap<&str, ValueId> = HashMap::new();
    for output in &graph.outputs {
        let (id, name, kind) = (output.value, &output.name, output.kind.name());
        if let Some(first) = seen.insert(name, id) {
            seen.insert(name, first);
            errors.at(id, format!("output name {name:?} is already used (by {first})"));
        }
        let Some(node) = graph.nodes.get(id.index()) else {
            errors.at(id, format!("{kind} output {name:?} names a value that does not exist"));
            continue;
        };
        match output.kind {
            OutputKind::Loss if node.ty != Type::scalar(DType::F32) => {
                errors.at(id, format!("loss output {name:?} must be f32[], got {}", node.ty));
            }
            OutputKind::State => check_state_output(graph, id, name, &node.ty, errors),
            OutputKind::Param => check_param_output(graph, id, name, &node.ty, errors),
            _ => {}
        }
    }
}

/// A param output is the updated value of the parameter of the same name.
fn check_param_output(graph: &Graph, id: ValueId, name: &str, ty: &Type, errors: &mut Violations) {
    let input = graph.inputs().find(
        |(_, n)| matches!(&n.op, Op::Input { name: input, kind: InputKind::Param { .. } } if input == name),
    );
    match input {
        None => errors.at(id, format!("param output {name:?} has no parameter of that name")),
        Some((input_id, n)) if n.ty != *ty => errors.at(
            id,
            format!("param output {name:?} has type {ty} but parameter {input_id} has type {}", n.ty),
        ),
        Some(_) => {}
    }
}

/// A state output is the new value of the state input of the same name.
fn check_state_output(graph: &Graph, id: ValueId, name: &str, ty: &Type, errors: &mut Violations) {
    let input = graph.inputs().find(
        |(_, n)| matches!(&n.op, Op::Input { name: input, kind: InputKind::State { .. } } if input == name),
    );
    match input {
        None => errors.at(id, format!("state output {name:?} has no state input of that name")),
        Some((input_id, n)) if n.ty != *ty => errors.at(
            id,
            format!("state output {name:?} has type {ty} but state input {input_id} has type {}", n.ty),
        ),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::print::tests::{sample_infer, sample_train};
    use super::super::{BinaryOp, Graph, Init, InputKind, Loc, Mode, Node, Op, OutputKind, Shape, ValueId};
    use super::super::{DType, Type};
    use super::verify;

    fn f32(dims: &[usize]) -> Type {
        Type::f32(Shape::known(dims))
    }

    fn node(op: Op, args: &[u32], ty: Type) -> Node {
        Node {
            op,
            args: args.iter().map(|&a| ValueId(a)).collect(),
            ty,
            loc: Loc::NONE,
            span: None,
            grad_of: None,
        }
    }

    /// A graph with one data input `x: f32[2]`.
    fn with_input() -> Graph {
        let mut g = Graph::new("g", Mode::Train);
        g.input("x", InputKind::Data, f32(&[2]), Loc::NONE);
        g
    }

    /// The errors of `g`, which must be exactly `expected.len()`, each
    /// containing the corresponding fragments.
    fn check(g: &Graph, expected: &[&[&str]]) {
        let errors = verify(g).expect_err("the graph is broken");
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (e, fragments) in errors.iter().zip(expected) {
            for f in *fragments {
                assert!(e.contains(f), "`{e}` lacks `{f}`");
            }
        }
    }

    #[test]
    fn well_formed_graphs_verify() {
        assert_eq!(verify(&sample_train()), Ok(()));
        assert_eq!(verify(&sample_infer()), Ok(()));
        assert_eq!(verify(&with_input()), Ok(()), "a graph without a loss is fine");
    }

    #[test]
    fn operand_out_of_range() {
        let mut g = with_input();
        g.push(node(Op::Unary(super::super::UnaryOp::Neg), &[7], f32(&[2])));
        check(&g, &[&["%1", "%7", "does not exist"]]);
    }

    #[test]
    fn operand_used_before_definition() {
        let mut g = with_input();
        g.push(node(Op::Binary(BinaryOp::Add), &[0, 2], f32(&[2])));
        g.push(node(Op::Binary(BinaryOp::Add), &[1, 1], f32(&[2])));
        check(&g, &[&["%1", "%2", "before its definition"]]);
        let mut g = with_input();
        g.push(node(Op::Binary(BinaryOp::Add), &[1, 0], f32(&[2])));
        check(&g, &[&["%1", "operand %1", "before its definition"]]);
    }

    #[test]
    fn leaf_with_operands() {
        let mut g = with_input();
        g.push(node(Op::Const { value: 1.0 }, &[0], f32(&[])));
        check(&g, &[&["%1", "`const` is a leaf", "1 operand"]]);
    }

    #[test]
    fn leaf_type_rules() {
        let mut g = with_input();
        g.push(node(Op::Const { value: 1.0 }, &[], f32(&[3])));
        g.push(node(Op::Input { name: "k".into(), kind: InputKind::Key }, &[], f32(&[2])));
        check(&g, &[&["%1", "scalar", "f32[3]"], &["%2", "i32[2]", "f32[2]"]]);
    }

    #[test]
    fn declared_type_differs_from_inferred() {
        let mut g = with_input();
        g.push(node(Op::Unary(super::super::UnaryOp::Exp), &[0], f32(&[3])));
        check(&g, &[&["%1", "declared type f32[3]", "`exp` gives f32[2]"]]);
    }

    #[test]
    fn infer_error_names_operand_types() {
        let mut g = with_input();
        g.input("y", InputKind::Data, f32(&[3]), Loc::NONE);
        g.push(node(Op::Binary(BinaryOp::Mul), &[0, 1], f32(&[2])));
        check(&g, &[&["%2", "`mul` of (f32[2], f32[3])", "declared f32[2]", "equal shape"]]);
    }

    #[test]
    fn duplicate_input_names() {
        let mut g = with_input();
        g.input("x", InputKind::Target, f32(&[2]), Loc::NONE);
        g.input("x", InputKind::Data, f32(&[2]), Loc::NONE);
        check(&g, &[&["%1", "\"x\"", "%0"], &["%2", "\"x\"", "%0"]]);
    }

    #[test]
    fn output_out_of_range() {
        let mut g = with_input();
        g.output(OutputKind::Prediction, "y", ValueId(4));
        check(&g, &[&["%4", "prediction output \"y\"", "does not exist"]]);
    }

    #[test]
    fn duplicate_output_names() {
        let mut g = with_input();
        g.output(OutputKind::Prediction, "y", ValueId(0));
        g.output(OutputKind::Other, "y", ValueId(0));
        check(&g, &[&["%0", "output name \"y\"", "already used"]]);
    }

    #[test]
    fn loss_must_be_an_f32_scalar() {
        let mut g = with_input();
        g.constant(1.0, DType::I32, Loc::NONE);
        g.output(OutputKind::Loss, "vector", ValueId(0));
        g.output(OutputKind::Loss, "integer", ValueId(1));
        check(&g, &[&["%0", "\"vector\"", "f32[2]"], &["%1", "\"integer\"", "i32[]"]]);
    }

    #[test]
    fn state_output_needs_matching_state_input() {
        let mut g = with_input();
        g.input("s", InputKind::State { init: Init::Zeros }, f32(&[3]), Loc::NONE);
        g.output(OutputKind::State, "s", ValueId(0));
        g.output(OutputKind::State, "x", ValueId(0));
        check(
            &g,
            &[&["%0", "state output \"s\"", "f32[2]", "%1", "f32[3]"], &["%0", "\"x\"", "no state input"]],
        );
        let mut g = with_input();
        g.input("s", InputKind::State { init: Init::Ones }, f32(&[2]), Loc::NONE);
        g.output(OutputKind::State, "s", ValueId(0));
        assert_eq!(verify(&g), Ok(()));
    }

    #[test]
    fn reports_every_violation() {
        let mut g = with_input();
        g.push(node(Op::Unary(super::super::UnaryOp::Exp), &[0], f32(&[3])));
        g.push(node(Op::Const { value: 0.0 }, &[], Type::new(DType::Bool, Shape::known(&[1]))));
        g.push(node(Op::Unary(super::super::UnaryOp::Log), &[9], f32(&[2])));
        g.output(OutputKind::Loss, "l", ValueId(10));
        let errors = verify(&g).expect_err("broken");
        assert_eq!(errors.len(), 4, "{errors:#?}");
    }
}

#[cfg(test)]
mod groups_overflow_tests {
    use super::super::{ConvAttrs, Graph, InputKind, Loc, Mode, Node, Op, Shape, Type, ValueId};
    use super::verify;

    /// Zero channels pass `infer`'s divisibility checks for any `groups`,
    /// which then reaches an unchecked product.
    #[test]
    fn huge_groups_are_an_error_not_a_panic() {
        let groups = usize::MAX / 2;
        let attrs = ConvAttrs { stride: vec![1], padding: vec![(0, 0)], dilation: vec![1], groups };
        let up = Op::ConvTranspose { conv: attrs.clone(), output_padding: vec![0] };
        let conv = Op::Conv(attrs);
        for op in [conv, up] {
            let mut g = Graph::new("g", Mode::Train);
            g.input("x", InputKind::Data, Type::f32(Shape::known(&[1, 0, 4])), Loc::NONE);
            g.input("w", InputKind::Data, Type::f32(Shape::known(&[0, 3, 1])), Loc::NONE);
            let ty = Type::f32(Shape::known(&[1, 0, 4]));
            g.push(Node {
                op,
                args: vec![ValueId(0), ValueId(1)],
                ty,
                loc: Loc::NONE,
                span: None,
                grad_of: None,
            });
            let errors = verify(&g).expect_err("overflowing groups");
            assert!(
                errors.len() == 1 && errors[0].starts_with("%2: ") && errors[0].contains("overflows"),
                "{errors:?}"
            );
        }
    }
}
