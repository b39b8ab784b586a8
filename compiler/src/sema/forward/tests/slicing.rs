//! `stack`, `split`, `pad` in every mode, `roll`, and convolutions with a
//! padding mode.

use super::*;
use crate::ir::Op;

#[test]
fn stack_inserts_a_new_axis() {
    let mut c = cx();
    let a = c.input("a", "B, 2");
    let b = c.input("b", "B, 2");
    let s = stack(&mut c, &[a, b, a], 1).unwrap();
    assert_eq!(c.ty_of(s), "f32[B, 3, 2]");
    let given = [("a", ft(&[1, 2], &[1., 2.])), ("b", ft(&[1, 2], &[3., 4.]))];
    assert_close(&c.eval1(s, &given), &[1., 2., 3., 4., 1., 2.], 0.0);
    let last = stack(&mut c, &[a, b], -1).unwrap();
    assert_eq!(c.ty_of(last), "f32[B, 2, 2]");
    assert_close(&c.eval1(last, &given), &[1., 3., 2., 4.], 0.0);
    let first = stack(&mut c, &[a], 0).unwrap();
    assert_eq!(c.ty_of(first), "f32[1, B, 2]");

    let wide = c.input("wide", "B, 3");
    let e = err_of(stack(&mut c, &[a, b, wide], 0));
    assert_eq!(e.message, "cannot stack f32[B, 2] and f32[B, 3]: stacked tensors must have one type");
    assert_eq!((e.operand, e.expected.as_deref()), (Some(2), Some("f32[B, 2]")));
    let e = err_of(stack(&mut c, &[a, b], 3));
    assert!(e.message.contains("axis 3 is out of range for a tensor of rank 3"), "{}", e.message);
    assert!(stack(&mut c, &[], 0).is_err());
}

#[test]
fn split_in_equal_parts_or_by_sizes() {
    let mut c = cx();
    let x = c.input("x", "B, 6");
    let parts = split(&mut c, x, &Sections::Equal(3), 1).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(c.ty_of(parts[2]), "f32[B, 2]");
    let given = [("x", ft(&[1, 6], &[0., 1., 2., 3., 4., 5.]))];
    assert_close(&c.eval1(parts[1], &given), &[2., 3.], 0.0);
    let parts = split(&mut c, x, &Sections::Sizes(vec![1, 5]), -1).unwrap();
    assert_eq!((c.ty_of(parts[0]), c.ty_of(parts[1])), ("f32[B, 1]".into(), "f32[B, 5]".into()));
    assert_close(&c.eval1(parts[1], &given), &[1., 2., 3., 4., 5.], 0.0);
    let whole = split(&mut c, x, &Sections::Equal(1), 1).unwrap();
    assert_eq!(whole, vec![x], "one part is the tensor itself");

    let e = split(&mut c, x, &Sections::Equal(4), 1).unwrap_err();
    assert_eq!(e.message, "cannot split axis 1 of f32[B, 6] (size 6) into 4 equal parts");
    assert_eq!(e.notes, ["help: give the sizes of the parts instead, e.g. [2, 2, 1, 1]"]);
    let e = split(&mut c, x, &Sections::Sizes(vec![2, 2]), 1).unwrap_err();
    assert_eq!(e.message, "`split` sizes [2, 2] add up to 4, but axis 1 of f32[B, 6] has size 6");
    let e = split(&mut c, x, &Sections::Equal(2), 0).unwrap_err();
    assert!(e.message.contains("symbolic `B`"), "{}", e.message);
}

/// `[1, 2, 3]` padded by 2 before and 1 after in `mode`.
fn padded_row(mode: PadMode, value: f64) -> Vec<f64> {
    let mut c = cx();
    let x = c.input("x", "1, 3");
    let y = pad(&mut c, x, &[(2, 1)], mode, value).unwrap();
    assert_eq!(c.ty_of(y), "f32[1, 6]");
    c.eval1(y, &[("x", ft(&[1, 3], &[1., 2., 3.]))])
}

#[test]
fn pad_modes_follow_numpy() {
    assert_close(&padded_row(PadMode::Zeros, 0.0), &[0., 0., 1., 2., 3., 0.], 0.0);
    assert_close(&padded_row(PadMode::Zeros, 5.0), &[5., 5., 1., 2., 3., 5.], 0.0);
    assert_close(&padded_row(PadMode::Circular, 0.0), &[2., 3., 1., 2., 3., 1.], 0.0);
    assert_close(&padded_row(PadMode::Reflect, 0.0), &[3., 2., 1., 2., 3., 2.], 0.0);
    assert_close(&padded_row(PadMode::Edge, 0.0), &[1., 1., 1., 2., 3., 3.], 0.0);
}

/// `np.pad([[1, 2, 3], [4, 5, 6]], ((1, 1), (2, 1)), mode)`: the axes are
/// padded in order, so the corners come from the padded rows.
#[test]
fn pad_corners_follow_numpy() {
    let cases: [(PadMode, [f64; 24]); 3] = [
        (
            PadMode::Reflect,
            [6., 5., 4., 5., 6., 5., 3., 2., 1., 2., 3., 2., 6., 5., 4., 5., 6., 5., 3., 2., 1., 2., 3., 2.],
        ),
        (
            PadMode::Circular,
            [5., 6., 4., 5., 6., 4., 2., 3., 1., 2., 3., 1., 5., 6., 4., 5., 6., 4., 2., 3., 1., 2., 3., 1.],
        ),
        (
            PadMode::Edge,
            [1., 1., 1., 2., 3., 3., 1., 1., 1., 2., 3., 3., 4., 4., 4., 5., 6., 6., 4., 4., 4., 5., 6., 6.],
        ),
    ];
    for (mode, want) in cases {
        let mut c = cx();
        let x = c.input("x", "B, 2, 3");
        let y = pad(&mut c, x, &[(1, 1), (2, 1)], mode, 0.0).unwrap();
        assert_eq!(c.ty_of(y), "f32[B, 4, 6]", "{mode:?}");
        let got = c.eval1(y, &[("x", ft(&[1, 2, 3], &[1., 2., 3., 4., 5., 6.]))]);
        assert_close(&got, &want, 0.0);
    }
}

#[test]
fn pad_applies_to_the_last_axes_and_reports_misuse() {
    let mut c = cx();
    let x = c.input("x", "B, 1, 4, 3");
    let y = pad(&mut c, x, &[(1, 1), (0, 2)], PadMode::Zeros, 0.0).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 1, 6, 5]");
    let pads: Vec<&Op> =
        c.graph.nodes.iter().map(|n| &n.op).filter(|op| matches!(op, Op::Pad { .. })).collect();
    assert_eq!(pads, [&Op::Pad { axis: 2, lo: 1, hi: 1 }, &Op::Pad { axis: 3, lo: 0, hi: 2 }]);

    let e = err_of(pad(&mut c, x, &[(1, 1), (3, 0)], PadMode::Reflect, 0.0));
    assert_eq!(
        e.message,
        "`pad`: reflect padding of 3 is wider than axis 3 of f32[B, 1, 4, 3] allows (size 3)"
    );
    assert_eq!(e.label.as_deref(), Some("reflect padding is at most one less than the size of the axis"));
    assert_eq!(e.operand, Some(0));
    assert!(pad(&mut c, x, &[(0, 2)], PadMode::Reflect, 0.0).is_ok());
    assert!(pad(&mut c, x, &[(3, 3)], PadMode::Circular, 0.0).is_ok());
    let e = err_of(pad(&mut c, x, &[(4, 0)], PadMode::Circular, 0.0));
    assert!(e.message.contains("circular padding of 4 is wider"), "{}", e.message);
    assert!(pad(&mut c, x, &[(9, 9)], PadMode::Edge, 0.0).is_ok());
    let e = err_of(pad(&mut c, x, &[(1, 1); 5], PadMode::Zeros, 0.0));
    assert_eq!(e.message, "`pad` has 5 [before, after] pairs but f32[B, 1, 4, 3] has only 4 axes");
    let e = err_of(pad(&mut c, x, &[(1, 1); 4], PadMode::Zeros, 0.0));
    assert!(e.message.contains("needs a known size on axis 0, got symbolic `B`"), "{}", e.message);
    let e = err_of(pad(&mut c, x, &[(1, 1)], PadMode::Edge, 2.0));
    assert_eq!(e.message, "`value` applies only to `mode: zeros`, not `mode: edge`");
    let same = pad(&mut c, x, &[(0, 0)], PadMode::Reflect, 0.0).unwrap();
    assert_eq!(same, x);
}

#[test]
fn roll_follows_numpy() {
    let mut c = cx();
    let x = c.input("x", "5");
    let given = [("x", ft(&[5], &[0., 1., 2., 3., 4.]))];
    for (shift, want) in [(2, [3., 4., 0., 1., 2.]), (-7, [2., 3., 4., 0., 1.]), (5, [0., 1., 2., 3., 4.])] {
        let y = roll(&mut c, x, &[shift], &[0]).unwrap();
        assert_close(&c.eval1(y, &given), &want, 0.0);
    }
    let m = c.input("m", "2, 3");
    let y = roll(&mut c, m, &[1], &[0, 1]).unwrap();
    assert_eq!(c.ty_of(y), "f32[2, 3]");
    let got = c.eval(&[y], 1, &[("m", ft(&[2, 3], &[0., 1., 2., 3., 4., 5.])), given[0].clone()]);
    assert_close(&flat(&got[0]), &[5., 3., 4., 2., 0., 1.], 0.0);
    let e = err_of(roll(&mut c, m, &[1, 2, 3], &[0, 1]));
    assert_eq!(e.message, "`roll` has 3 shifts for 2 axes; give one shift per axis, or one for all");
    let b = c.input("b", "B, 3");
    assert!(err_of(roll(&mut c, b, &[1], &[0])).message.contains("symbolic `B`"));
    assert!(roll(&mut c, b, &[-1], &[-1]).is_ok());
}

#[test]
fn conv_pad_modes_pad_the_input_explicitly() {
    // A circular convolution equals a valid one of the circularly padded input.
    let mut c = cx();
    let x = c.input("x", "B, 1, 4, 5");
    let circular = [PadMode::Circular, PadMode::Circular];
    let y = conv(&mut c, x, 2, 2, &[3, 3], &[1, 1], &Padding::Same, &circular, &[1, 1], true).unwrap();
    assert_eq!(c.ty_of(y), "f32[B, 2, 4, 5]");
    let conv_op = c.graph.nodes.iter().rev().find_map(|n| match &n.op {
        Op::Conv(attrs) => Some(attrs.padding.clone()),
        _ => None,
    });
    assert_eq!(conv_op, Some(vec![(0, 0), (0, 0)]));
    let padded = pad(&mut c, x, &[(1, 1), (1, 1)], PadMode::Circular, 0.0).unwrap();
    let zeros = [PadMode::Zeros, PadMode::Zeros];
    let z = conv(&mut c, padded, 2, 2, &[3, 3], &[1, 1], &Padding::Valid, &zeros, &[1, 1], true).unwrap();
    let values: Vec<f64> = (0..20).map(|i| (i as f64 * 0.37).sin()).collect();
    let r = c.eval(&[y, z], 1, &[("x", ft(&[1, 1, 4, 5], &values))]);
    assert_close(&flat(&r[0]), &flat(&r[1]), 1e-12);

    // `[zeros, circular]`: rows keep the convolution's zero padding, columns wrap.
    let mut c = cx();
    let x = c.input("x", "B, 1, 4, 5");
    let modes = [PadMode::Zeros, PadMode::Circular];
    let y = conv(&mut c, x, 2, 1, &[3, 3], &[1, 1], &Padding::Explicit(vec![1, 1]), &modes, &[1, 1], false);
    assert_eq!(c.ty_of(y.unwrap()), "f32[B, 1, 4, 5]");
    let attrs: Vec<Op> =
        c.graph.nodes.iter().map(|n| n.op.clone()).filter(|op| matches!(op, Op::Conv(_))).collect();
    let Op::Conv(attrs) = &attrs[0] else { unreachable!("a conv") };
    assert_eq!(attrs.padding, vec![(1, 1), (0, 0)]);

    let e = err_of(conv(
        &mut c,
        x,
        2,
        1,
        &[9, 9],
        &[1, 1],
        &Padding::Same,
        &[PadMode::Reflect; 2],
        &[1, 1],
        true,
    ));
    assert_eq!(
        e.message,
        "`conv2d`: reflect padding of 4 is wider than axis 2 of f32[B, 1, 4, 5] allows (size 4)"
    );
    assert!(conv(&mut c, x, 2, 1, &[5, 5], &[1, 1], &Padding::Same, &[PadMode::Reflect; 2], &[1, 1], true)
        .is_ok());
    let e = err_of(conv(&mut c, x, 2, 1, &[3, 3], &[1, 1], &Padding::Same, &[PadMode::Edge], &[1, 1], true));
    assert_eq!(e.message, "`conv2d` pad_mode needs 2 value(s), one per spatial dimension, got 1");
}
