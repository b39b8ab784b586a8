//! Throughput of generated kernels: an Adam update (the optimiser's fused
//! loop: three inputs besides the parameter, three stores), a softmax row
//! sum (exp with a reduction over the last axis), and 2×2 max pooling.
//! Elements are iteration points (loop kernels) or input elements (pooling).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use nnc_compiler::codegen::{
    Checking, Elem, Expr, Jit, LoopKernel, Operand, Reduce, Store, WindowKernel, WindowOp,
};
use nnc_compiler::ir::op::{BinaryOp, PoolKind, UnaryOp, WindowAttrs};

fn values(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 + 0.25).collect()
}

fn dense(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut s = 1isize;
    for a in (0..shape.len()).rev() {
        strides[a] = s;
        s *= shape[a] as isize;
    }
    strides
}

fn input(shape: &[usize]) -> Operand {
    Operand { offset: 0, strides: dense(shape), elem: Elem::F32 }
}

fn store(value: usize, reduce: Option<Reduce>, strides: Vec<isize>) -> Store {
    Store { value, offset: 0, strides, elem: Elem::F32, reduce }
}

fn adam() -> LoopKernel {
    use BinaryOp::*;
    let shape = vec![1 << 20];
    let body = vec![
        Expr::Input(0),                 // 0 p
        Expr::Input(1),                 // 1 g
        Expr::Input(2),                 // 2 m
        Expr::Input(3),                 // 3 v
        Expr::Const(0.9),               // 4
        Expr::Const(0.1),               // 5
        Expr::Binary(Mul, 4, 2),        // 6
        Expr::Binary(Mul, 5, 1),        // 7
        Expr::Binary(Add, 6, 7),        // 8 m'
        Expr::Const(0.999),             // 9
        Expr::Const(0.001),             // 10
        Expr::Binary(Mul, 9, 3),        // 11
        Expr::Binary(Mul, 1, 1),        // 12
        Expr::Binary(Mul, 10, 12),      // 13
        Expr::Binary(Add, 11, 13),      // 14 v'
        Expr::Unary(UnaryOp::Sqrt, 14), // 15
        Expr::Const(1e-8),              // 16
        Expr::Binary(Add, 15, 16),      // 17
        Expr::Binary(Div, 8, 17),       // 18
        Expr::Const(1e-3),              // 19
        Expr::Binary(Mul, 19, 18),      // 20
        Expr::Binary(Sub, 0, 20),       // 21 p'
    ];
    LoopKernel {
        name: "adam".into(),
        inputs: (0..4).map(|_| input(&shape)).collect(),
        outputs: [21, 8, 14].iter().map(|&v| store(v, None, dense(&shape))).collect(),
        shape,
        body,
    }
}

fn softmax_rows() -> LoopKernel {
    let shape = vec![512, 1000];
    LoopKernel {
        name: "softmax_rows".into(),
        inputs: vec![input(&shape)],
        body: vec![Expr::Input(0), Expr::Unary(UnaryOp::Exp, 0)],
        outputs: vec![store(1, None, dense(&shape)), store(1, Some(Reduce::Sum), vec![1, 0])],
        shape,
    }
}

fn loop_kernels(c: &mut Criterion) {
    let mut group = c.benchmark_group("loop_kernels");
    group.sample_size(20);
    for kernel in [adam(), softmax_rows()] {
        let mut jit = Jit::new().unwrap();
        let id = jit.add_loop_kernel(&kernel, Checking::Unchecked).unwrap();
        jit.finalize().unwrap();
        let f = jit.loop_fn(id).unwrap();
        let n = kernel.elements();
        let ins: Vec<Vec<f32>> = kernel.inputs.iter().map(|_| values(n)).collect();
        let mut outs: Vec<Vec<f32>> = kernel.outputs.iter().map(|_| vec![0.0; n]).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(kernel.name.clone(), |bench| {
            bench.iter(|| {
                let ins: Vec<&[f32]> = ins.iter().map(|v| v.as_slice()).collect();
                let mut outs: Vec<&mut [f32]> = outs.iter_mut().map(|v| v.as_mut_slice()).collect();
                f.run(&ins, &mut outs, 0, n).unwrap();
                black_box(&outs);
            })
        });
    }
    group.finish();
}

fn maxpool(c: &mut Criterion) {
    let kernel = WindowKernel {
        name: "maxpool_2x2".into(),
        op: WindowOp::Pool(WindowAttrs {
            kind: PoolKind::Max,
            window: vec![2, 2],
            stride: vec![2, 2],
            padding: vec![(0, 0); 2],
        }),
        inputs: vec![vec![32, 64, 32, 32]],
        output: vec![32, 64, 16, 16],
    };
    let mut jit = Jit::new().unwrap();
    let id = jit.add_window_kernel(&kernel, Checking::Unchecked).unwrap();
    jit.finalize().unwrap();
    let f = jit.window_fn(id).unwrap();
    let x = values(kernel.input_len(0));
    let mut y = vec![0.0; kernel.output_len()];
    let mut group = c.benchmark_group("window_kernels");
    group.sample_size(20);
    group.throughput(Throughput::Elements(kernel.input_len(0) as u64));
    group.bench_function("maxpool_2x2", |bench| {
        bench.iter(|| {
            f.run(&[&x], &mut y, 0, kernel.rows()).unwrap();
            black_box(&y);
        })
    });
    group.finish();
}

criterion_group!(benches, loop_kernels, maxpool);
criterion_main!(benches);
