//! Dead-code elimination: removes the nodes no output depends on.
//!
//! The other passes leave their replaced nodes behind (a folded operand, a
//! merged duplicate); this pass is what deletes them. `Input` nodes are never
//! removed, used or not: the inputs are the graph's signature, which callers
//! (the runtime, checkpoints, the interpreter) rely on being stable.

use crate::ir::{Graph, Op, ValueId};

use super::rewrite::Rewriter;

/// Keeps every input and every node an output depends on.
pub fn run(graph: &Graph) -> Graph {
    let mut live = vec![false; graph.nodes.len()];
    for output in &graph.outputs {
        if let Some(l) = live.get_mut(output.value.index()) {
            *l = true;
        }
    }
    // Operands come before their users, so one backward sweep finds every
    // node a live node depends on.
    for (i, node) in graph.nodes.iter().enumerate().rev() {
        if matches!(node.op, Op::Input { .. }) {
            live[i] = true;
        }
        if live[i] {
            for a in &node.args {
                if let Some(l) = live.get_mut(a.index()) {
                    *l = true;
                }
            }
        }
    }
    let mut rw = Rewriter::new(graph);
    for (i, &is_live) in live.iter().enumerate() {
        let id = ValueId(i as u32);
        if is_live {
            rw.keep(id);
        } else {
            rw.drop(id);
        }
    }
    rw.finish()
}

#[cfg(test)]
mod tests {
    use super::super::testing::check_all;
    use super::run;

    #[test]
    fn dce() {
        check_all(
            run,
            &[
                (
                    "dead nodes go, unused inputs of every kind stay",
                    r#"graph t mode=train {
                      %0: f32[B, 4] = input "x"
                      %1: i32[B] = target "y"
                      %2: f32[4] = param "w" role=weight init=zeros
                      %3: f32[4] = state "s" init=ones
                      %4: i32[2] = key "rng"
                      %5: f32[] = hyper "lr"
                      %6: f32[B, 4] = exp %0
                      %7: f32[B, 4] = neg %0
                      %8: f32[B, 4] = tanh %6
                      prediction "y" = %7
                    }"#,
                    r#"graph t mode=train {
                      %0: f32[B, 4] = input "x"
                      %1: i32[B] = target "y"
                      %2: f32[4] = param "w" role=weight init=zeros
                      %3: f32[4] = state "s" init=ones
                      %4: i32[2] = key "rng"
                      %5: f32[] = hyper "lr"
                      %6: f32[B, 4] = neg %0
                      prediction "y" = %6
                    }"#,
                ),
                (
                    "every output kind keeps its operands; locations and origins are remapped",
                    r#"graph t mode=train {
                      %0: f32[4] = input "x"                                   @1:1-1:5
                      %1: f32[4] = param "w" role=weight init=zeros            @2:1-2:5
                      %2: f32[4] = state "s" init=zeros                        @3:1-3:5
                      %3: f32[] = const 2.0                                    @4:1-4:5
                      %4: f32[4] = mul %0, %1                                  @5:1-5:5
                      %5: f32[] = reduce_sum %4 axes=[0]                       @6:1-6:5
                      %6: f32[4] = exp %1                                      @7:1-7:5
                      %7: f32[4] = broadcast %3 shape=[4]                      @5:1-5:5 from %4 mul
                      %8: f32[4] = mul %7, %1                                  @5:1-5:5 from %4 mul
                      %9: f32[4] = sub %1, %8                                  @8:1-8:5
                      %10: f32[4] = add %2, %0                                 @9:1-9:5
                      %11: f32[4] = abs %0                                     @9:1-9:5
                      loss "loss" = %5
                      param "w" = %9
                      state "s" = %10
                      value "v" = %11
                    }"#,
                    r#"graph t mode=train {
                      %0: f32[4] = input "x"                                   @1:1-1:5
                      %1: f32[4] = param "w" role=weight init=zeros            @2:1-2:5
                      %2: f32[4] = state "s" init=zeros                        @3:1-3:5
                      %3: f32[] = const 2.0                                    @4:1-4:5
                      %4: f32[4] = mul %0, %1                                  @5:1-5:5
                      %5: f32[] = reduce_sum %4 axes=[0]                       @6:1-6:5
                      %6: f32[4] = broadcast %3 shape=[4]                      @5:1-5:5 from %4 mul
                      %7: f32[4] = mul %6, %1                                  @5:1-5:5 from %4 mul
                      %8: f32[4] = sub %1, %7                                  @8:1-8:5
                      %9: f32[4] = add %2, %0                                  @9:1-9:5
                      %10: f32[4] = abs %0                                     @9:1-9:5
                      loss "loss" = %5
                      param "w" = %8
                      state "s" = %9
                      value "v" = %10
                    }"#,
                ),
                (
                    "a graph without outputs keeps only its inputs",
                    r#"graph t mode=infer {
                      %0: f32[] = const 1.0
                      %1: f32[2] = input "x"
                      %2: f32[2] = exp %1
                    }"#,
                    r#"graph t mode=infer {
                      %0: f32[2] = input "x"
                    }"#,
                ),
            ],
        );
    }
}
