//! Binding a source's `x` and `y` to the model's input and target: shape,
//! element type and missing values, each checked once here for every source.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Dimension, IxDyn};
use nnc_compiler::ir::{DType, Dim, Graph, InputKind, Op, Type};

use super::{ArrayValue, Examples, Field, LoadError, Missing, Part, Raw, Role};
use crate::io::error::{index_text, names_text};
use crate::Error;

/// Which array of a source a slot takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Array {
    X,
    Y,
    /// The mask of finite targets that `missing = mask` adds.
    Valid,
}

/// The name a model input or target must have to bind to the mask that
/// `missing = mask` adds.
pub(crate) const VALID: &str = "valid";

/// A model input or target that a source array binds to.
#[derive(Clone, Debug)]
pub(crate) struct Slot {
    pub name: String,
    pub role: Role,
    pub ty: Type,
    /// The declared shape after the example axis.
    pub per_example: Vec<usize>,
    pub array: Array,
}

/// The model's inputs and targets and the source arrays they bind to: a
/// slot called `valid` (with `missing = mask`) to the mask, then the one
/// remaining data input to `x` and the remaining target, if any, to `y`
/// (none for a model such as an autoencoder whose loss compares the
/// output with the input: the source's `y` is then unused). A model with
/// two inputs binds them by name ([`by_name`]). An error names what the
/// model has instead.
pub(crate) fn slots(graph: &Graph, origin: &str, missing: Missing) -> Result<Vec<Slot>, LoadError> {
    let here = PathBuf::from(origin);
    let mut inputs = vec![];
    let mut targets = vec![];
    let mut masks = vec![];
    for (_, node) in graph.inputs() {
        let Op::Input { name, kind } = &node.op else { continue };
        let role = match kind {
            InputKind::Data => Role::Input,
            InputKind::Target => Role::Target,
            _ => continue,
        };
        if name == VALID {
            if missing != Missing::Mask {
                let cause = format!(
                    "{} `{VALID}` binds to the mask of missing values, which a source provides only \
                     with `missing = mask`; add `missing = mask` to the train section",
                    role_name(role)
                );
                return Err(LoadError::about(name, Error::new(&here, cause)));
            }
            masks.push(slot(&here, name.clone(), role, node.ty.clone(), Array::Valid)?);
            continue;
        }
        match role {
            Role::Input => inputs.push((name.clone(), node.ty.clone())),
            Role::Target => targets.push((name.clone(), node.ty.clone())),
        }
    }
    let one = |list: Vec<(String, Type)>, role: Role| -> Result<Slot, LoadError> {
        let what = role_name(role);
        let (array, which) = match role {
            Role::Input => ("x", Array::X),
            Role::Target => ("y", Array::Y),
        };
        if list.len() != 1 {
            let has = if list.is_empty() {
                format!("the model has no {what}")
            } else {
                format!(
                    "the model has {} {what}s ({})",
                    list.len(),
                    names_text(list.iter().map(|(n, _)| n.as_str()), 10)
                )
            };
            return Err(Error::new(
                &here,
                format!("{has}; a data source provides one {what} array (`{array}`) for exactly one {what}"),
            )
            .into());
        }
        let (name, ty) = list.into_iter().next().ok_or_else(|| Error::new(&here, "no input"))?;
        slot(&here, name, role, ty, which)
    };
    if inputs.len() > 1 {
        let mut slots = by_name(&here, inputs, targets)?;
        slots.extend(masks);
        return Ok(slots);
    }
    let mut slots = vec![one(inputs, Role::Input)?];
    if !targets.is_empty() {
        slots.push(one(targets, Role::Target)?);
    }
    slots.extend(masks);
    Ok(slots)
}

/// The slots of a model with several inputs: each input binds to the
/// source array of its own name (`input x` to `x`, `input y` to `y`: the
/// images and the class labels of a conditional generator), the input
/// bound to `x` first. A source has two arrays, so two inputs at most, and
/// no target is left to bind.
fn by_name(
    here: &Path,
    inputs: Vec<(String, Type)>,
    targets: Vec<(String, Type)>,
) -> Result<Vec<Slot>, LoadError> {
    let names = || names_text(inputs.iter().map(|(n, _)| n.as_str()), 10);
    if let Some((name, _)) = inputs.iter().find(|(n, _)| n != "x" && n != "y") {
        let cause = format!(
            "the model has {} inputs ({}); with several inputs each binds to the source array of its \
             name, `x` or `y`, and there is no array `{name}`",
            inputs.len(),
            names()
        );
        return Err(LoadError::about(name, Error::new(here, cause))
            .with_help("name the inputs `x` and `y` after the arrays they take".to_string()));
    }
    if let Some((name, _)) = targets.first() {
        let cause = format!(
            "the model has the inputs {} bound to the source's arrays `x` and `y`, so no array is left \
             for target `{name}`",
            names()
        );
        return Err(LoadError::about(name, Error::new(here, cause)));
    }
    let mut slots = vec![];
    for wanted in ["x", "y"] {
        if let Some((name, ty)) = inputs.iter().find(|(n, _)| n == wanted) {
            let array = if wanted == "x" { Array::X } else { Array::Y };
            slots.push(slot(here, name.clone(), Role::Input, ty.clone(), array)?);
        }
    }
    Ok(slots)
}

/// The slot of a model input or target, checked: f32 or i32, and only the
/// example axis symbolic.
fn slot(here: &Path, name: String, role: Role, ty: Type, array: Array) -> Result<Slot, LoadError> {
    let what = role_name(role);
    let fail = |cause: String| Err(LoadError::about(&name, Error::new(here, cause)));
    let dims = ty.shape.dims();
    if dims.is_empty() {
        return fail(format!("{what} `{name}: {ty}` has no example axis; declare it as e.g. f32[B, ...]"));
    }
    let mut per_example = vec![];
    for d in &dims[1..] {
        match d {
            Dim::Known(k) => per_example.push(*k),
            Dim::Sym(s) => {
                return fail(format!(
                    "{what} `{name}: {ty}` has the symbolic size `{s}` after its first axis; \
                     only the example axis may be symbolic"
                ))
            }
        }
    }
    if !matches!(ty.dtype, DType::F32 | DType::I32) {
        return fail(format!("{what} `{name}: {ty}` must be f32 or i32"));
    }
    if array == Array::Valid && ty.dtype != DType::F32 {
        return fail(format!("{what} `{name}: {ty}` is a 0/1 mask and must be f32"));
    }
    Ok(Slot { name, role, ty, per_example, array })
}

/// Binds the arrays of `raw` to `slots` (see [`slots`]).
pub(crate) fn bind(raw: Raw, slots: &[Slot], missing: Missing) -> Result<Examples, LoadError> {
    let Raw { x, y, order, origin, variable_axis, grid } = raw;
    let (nx, ny) = (examples_in(&x)?, examples_in(&y)?);
    let has_y = slots.iter().any(|s| s.array == Array::Y);
    for (part, n) in [(&x, nx), (&y, ny)].into_iter().take(if has_y { 2 } else { 1 }) {
        if n == 0 {
            return Err(Error::new(
                &part.source,
                format!(
                    "array `{}` has no examples (shape {}): its first axis, the example axis, is empty",
                    part.array,
                    index_text(part.value.shape())
                ),
            )
            .into());
        }
    }
    if nx != ny && has_y {
        return Err(Error::new(
            &x.source,
            format!(
                "array `{}` has {nx} examples but array `{}`{} has {ny}",
                x.array,
                y.array,
                if y.source == x.source { String::new() } else { format!(" of {}", y.source.display()) }
            ),
        )
        .into());
    }
    let x_source = x.source.clone();
    // The mask marks the finite values of the target (of the input for a
    // model without one).
    let valid = (missing == Missing::Mask).then(|| mask_of(if has_y { &y } else { &x }));
    // Each array binds to at most one slot ([`slots`]), so it moves there.
    let (mut x, mut y, mut valid) = (Some(x), Some(y), valid);
    let mut parts: Vec<(Part, &Slot)> = vec![];
    for slot in slots {
        let part = match slot.array {
            Array::X => x.take(),
            Array::Y => y.take(),
            Array::Valid => valid.take(),
        };
        let part = part.ok_or_else(|| {
            let cause = format!("no array for `{}` (it needs `missing = mask`)", slot.name);
            LoadError::about(&slot.name, Error::new(&x_source, cause))
        })?;
        parts.push((part, slot));
    }
    // Shapes first: a wrong shape is reported whatever the values.
    for (part, slot) in &parts {
        check_count(part, slot)?;
    }
    let keep = match missing {
        Missing::Error => {
            for (part, slot) in &parts {
                if let Some((example, position, v)) = first_non_finite(&part.value) {
                    let cause = missing_value(part, slot, example, &position, v);
                    return Err(Error::new(&part.source, cause).into());
                }
            }
            None
        }
        Missing::Drop => {
            let mut keep = vec![true; nx];
            for (part, _) in &parts {
                mark_non_finite(&part.value, &mut keep);
            }
            Some(keep)
        }
        Missing::Mask => None,
    };
    let dropped = keep.as_ref().map_or(0, |k| k.iter().filter(|&&b| !b).count());
    let n = nx - dropped;
    if n == 0 {
        return Err(Error::new(
            &x_source,
            format!(
                "every one of the {nx} examples holds a NaN or infinite value; nothing is left to train on"
            ),
        )
        .into());
    }
    let mut fields = vec![];
    for (part, slot) in parts {
        let value = select(part.value, keep.as_deref());
        let value =
            convert(value, slot, &part.array, &part.source).map_err(|e| LoadError::about(&slot.name, e))?;
        let mut shape = vec![n];
        shape.extend(&slot.per_example);
        let value =
            reshape(value, &shape).map_err(|e| LoadError::about(&slot.name, Error::new(&part.source, e)))?;
        fields.push(Field {
            name: slot.name.clone(),
            role: slot.role,
            value,
            unit: part.unit,
            variables: part.variables,
            variable_axis,
            mask: slot.array == Array::Valid,
        });
    }
    let grid = match (grid, keep.as_deref()) {
        (Some(g), Some(keep)) => {
            let kept: Vec<usize> = keep.iter().enumerate().filter(|(_, &k)| k).map(|(i, _)| i).collect();
            Some(g.select(&kept))
        }
        (grid, _) => grid,
    };
    Ok(Examples { fields, n, order, origin, dropped, grid })
}

/// The `valid` part: 1.0 where `part` is finite, 0.0 elsewhere.
fn mask_of(part: &Part) -> Part {
    let value = match &part.value {
        ArrayValue::F32(a) => a.mapv(|v| if v.is_finite() { 1.0 } else { 0.0 }),
        ArrayValue::I32(a) => a.mapv(|_| 1.0),
    };
    Part {
        array: format!("{VALID} (finite values of `{}`)", part.array),
        source: part.source.clone(),
        value: ArrayValue::F32(value),
        unit: None,
        variables: vec![],
        cells: None,
    }
}

/// The message of the first missing value of `part` (with `missing =
/// error`): where it is (the line and column of a CSV file, or the example
/// and position within it) and how to go on.
fn missing_value(part: &Part, slot: &Slot, example: usize, position: &[usize], v: f32) -> String {
    const FIX: &str = "add `missing = drop` to the train section to leave such examples out, or \
                       `missing = mask` to mask the missing values";
    let at = format!("example {example}, position {}", index_text(position));
    let what = format!("{} `{}`", role_name(slot.role), slot.name);
    match (&part.cells, position) {
        (Some(cells), &[column]) if cells.is_empty(example, column) => {
            format!("{}: empty cell (a missing value of {what}); {FIX}", cells.place(example, column))
        }
        (Some(cells), &[column]) => format!(
            "array `{}` (for {what}) holds {} at {at} ({}); {FIX}",
            part.array,
            value_name(v),
            cells.place(example, column)
        ),
        _ => format!("array `{}` (for {what}) holds {} at {at}; {FIX}", part.array, value_name(v)),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Input => "input",
        Role::Target => "target",
    }
}

fn value_name(v: f32) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else {
        "an infinite value"
    }
}

/// The number of examples of a part (its leading axis).
fn examples_in(part: &Part) -> Result<usize, Error> {
    part.value.shape().first().copied().ok_or_else(|| {
        Error::new(
            &part.source,
            format!("array `{}` is a scalar; its first axis must be the example", part.array),
        )
    })
}

/// Checks that an example of `part` holds as many values as `slot` declares.
/// The error suggests the declaration that takes the data as they are.
fn check_count(part: &Part, slot: &Slot) -> Result<(), LoadError> {
    let shape = part.value.shape();
    let have: usize = shape[1..].iter().product();
    let want: usize = slot.per_example.iter().product();
    if have == want {
        return Ok(());
    }
    let values = |n: usize| if n == 1 { "1 value".to_string() } else { format!("{n} values") };
    let cause = format!(
        "array `{}` has shape {} ({} per example), but {} `{}` is {} ({} per example, shape {})",
        part.array,
        index_text(shape),
        values(have),
        role_name(slot.role),
        slot.name,
        slot.ty,
        values(want),
        index_text(&slot.per_example)
    );
    let batch = slot.ty.shape.dims().first().map_or("B".to_string(), ToString::to_string);
    let dims: Vec<String> = std::iter::once(batch).chain(shape[1..].iter().map(usize::to_string)).collect();
    let declaration =
        format!("{} {}: {}[{}]", role_name(slot.role), slot.name, slot.ty.dtype.name(), dims.join(", "));
    let help = match &part.cells {
        Some(cells) => format!(
            "declare `{declaration}` to take the {} selected column{} as they are, or select {want} \
             column{} for `{}`",
            cells.columns.len(),
            if cells.columns.len() == 1 { "" } else { "s" },
            if want == 1 { "" } else { "s" },
            match slot.array {
                Array::X => "x",
                Array::Y => "y",
                Array::Valid => VALID,
            }
        ),
        None => {
            format!("declare `{declaration}` to take the data as they are ({} per example)", values(have))
        }
    };
    Err(LoadError::about(&slot.name, Error::new(&part.source, cause)).with_help(help))
}

/// The first NaN or infinite value: (example, position within it, value).
fn first_non_finite(value: &ArrayValue) -> Option<(usize, Vec<usize>, f32)> {
    let ArrayValue::F32(a) = value else { return None };
    let (index, v) = a.indexed_iter().find(|(_, v)| !v.is_finite())?;
    let index = index.slice();
    Some((index[0], index[1..].to_vec(), *v))
}

/// Clears `keep[i]` for every example `i` holding a non-finite value.
fn mark_non_finite(value: &ArrayValue, keep: &mut [bool]) {
    let ArrayValue::F32(a) = value else { return };
    let per: usize = a.shape()[1..].iter().product();
    if per == 0 {
        return;
    }
    let flat: Vec<f32> = a.iter().copied().collect();
    for (i, chunk) in flat.chunks(per).enumerate() {
        if chunk.iter().any(|v| !v.is_finite()) {
            keep[i] = false;
        }
    }
}

/// The examples of `value` whose `keep` flag is set (all when `keep` is `None`).
fn select(value: ArrayValue, keep: Option<&[bool]>) -> ArrayValue {
    let Some(keep) = keep else { return value };
    if keep.iter().all(|&k| k) {
        return value;
    }
    let indices: Vec<usize> = keep.iter().enumerate().filter(|(_, &k)| k).map(|(i, _)| i).collect();
    match value {
        ArrayValue::F32(a) => ArrayValue::F32(a.select(ndarray::Axis(0), &indices)),
        ArrayValue::I32(a) => ArrayValue::I32(a.select(ndarray::Axis(0), &indices)),
    }
}

/// Converts to the slot's element type: integers to floats, and whole-number
/// floats to integers.
fn convert(value: ArrayValue, slot: &Slot, array: &str, source: &Path) -> Result<ArrayValue, Error> {
    match (value, slot.ty.dtype) {
        (ArrayValue::I32(a), DType::F32) => Ok(ArrayValue::F32(a.mapv(|v| v as f32))),
        (ArrayValue::F32(a), DType::I32) => {
            for (index, &v) in a.indexed_iter() {
                let ok = v.is_finite() && v.fract() == 0.0 && v.abs() <= i32::MAX as f32;
                if !ok {
                    let index = index.slice();
                    return Err(Error::new(
                        source,
                        format!(
                            "array `{array}` holds {v} at example {}, position {}, but {} `{}` is {} \
                             (whole numbers only)",
                            index[0],
                            index_text(&index[1..]),
                            role_name(slot.role),
                            slot.name,
                            slot.ty
                        ),
                    ));
                }
            }
            Ok(ArrayValue::I32(a.mapv(|v| v as i32)))
        }
        (value, _) => Ok(value),
    }
}

/// Reshapes row-major to `shape` (same number of values, checked before).
fn reshape(value: ArrayValue, shape: &[usize]) -> Result<ArrayValue, String> {
    fn go<T: Clone>(a: ArrayD<T>, shape: &[usize]) -> Result<ArrayD<T>, String> {
        if a.shape() == shape {
            return Ok(a);
        }
        let values: Vec<T> = a.iter().cloned().collect();
        ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|e| e.to_string())
    }
    Ok(match value {
        ArrayValue::F32(a) => ArrayValue::F32(go(a, shape)?),
        ArrayValue::I32(a) => ArrayValue::I32(go(a, shape)?),
    })
}
