//! Arguments: the one schema of parameters, the binder that matches a call's
//! arguments to them, and the value checks.
//!
//! Every callee describes its parameters the same way, as a list of
//! [`Param`]s (name, type [`Ty`], accepted values [`Range`], [`enum@Default`],
//! and whether it may be given by position): the built-ins of the
//! catalogue, the blocks of a file, and the callable values of the `train`
//! section (`adam(lr: 1e-3)`, `synthetic.sine(n: 512)`). [`bind`] matches
//! a call's arguments to them like Python (positional first, then
//! `name: value`), reporting every problem, not just the first, through the
//! caller's [`Binder`], which evaluates and checks each value and words the
//! diagnostics: model calls and the `train` section keep their own wording.
//! [`fill_defaults`] completes the bound arguments into [`Args`].
//!
//! [`Range::int`] and [`Range::float`] are the one rule for which numbers a
//! parameter accepts; [`check`] applies it, with the type, to a value
//! evaluated in a model (tensors, constants, bare names), and the `train`
//! section applies it to its constants.

use crate::diag::Span;
use crate::ir::ValueId;
use crate::syntax::ast;

use super::forward::{BuildError, ReshapeDim};
use super::values::{TensorVal, Value};
use crate::suggest::names_list;

/// The largest size, count or index accepted in a call (2^24).
pub const MAX_SIZE: i64 = 1 << 24;

// ---- the schema -------------------------------------------------------------

/// The type of a parameter, i.e. what an argument may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Tensor,
    /// Every remaining positional argument, each a tensor or a list of
    /// tensors (`concat(a, b)`, `concat([a, b])`).
    Tensors,
    /// A list of tensors, such as `params` or `weights` (`l1`, `l2`).
    TensorList,
    /// A tensor or `none`.
    OptTensor,
    /// An attention mask: a tensor, `causal` or `none`.
    Mask,
    /// Recurrent states: a tensor or a list of tensors (`init: h0`,
    /// `init: [h0, c0]`); with `Default::None`, `none` too.
    State,
    Int,
    /// An integer or a list of integers (`kernel: 3`, `kernel: [3, 5]`).
    Ints,
    /// A list of integers (`permute(axes: [0, 2, 1])`).
    IntList,
    Float,
    Bool,
    /// A string constant (block parameters typed `str`); bare names are accepted.
    Str,
    /// A string or a non-empty list of strings (column names).
    Strs,
    /// One of the given bare names.
    Enum(&'static [&'static str]),
    /// One of the given bare names, an integer or a list of integers (`pad`).
    IntOrEnum(&'static [&'static str]),
    /// A reshape target: integers, `-1` and symbolic dimension names.
    Shape,
    /// A tensor or a number; a number stands for a tensor of that value
    /// wherever the callee needs one (`bce(p, 1.0)`, `where(c, x, 0)`).
    TensorOrNumber,
    /// One of the given bare names, or a list of them (one per axis:
    /// `pad_mode: [zeros, circular]`).
    Enums(&'static [&'static str]),
    /// `true`, `false`, or a list of them (one per axis).
    Bools,
    /// A number or a non-empty list of numbers (`thresholds: [0.5, 2, 5]`).
    Floats,
    /// A list of `[before, after]` pairs of integers (`pad` widths).
    Pairs,
}

impl Ty {
    /// What the type expects, for "expected X, found Y" messages.
    pub fn expected(self) -> String {
        match self {
            Ty::Tensor => "a tensor".into(),
            Ty::Tensors => "tensors or a list of tensors".into(),
            Ty::TensorList => "a list of tensors (e.g. `weights`)".into(),
            Ty::OptTensor => "a tensor or `none`".into(),
            Ty::Mask => "a mask tensor, `causal` or `none`".into(),
            Ty::State => "a tensor or a list of tensors".into(),
            Ty::Int => "an integer".into(),
            Ty::Ints => "an integer or a list of integers".into(),
            Ty::IntList => "a list of integers".into(),
            Ty::Float => "a number".into(),
            Ty::Bool => "`true` or `false`".into(),
            Ty::Str => "a string".into(),
            Ty::Strs => "a string or a list of strings".into(),
            Ty::Enum(names) => format!("one of {}", names_list(names)),
            Ty::IntOrEnum(names) => format!("one of {} or an integer", names_list(names)),
            Ty::Shape => "a list of sizes (integers, `-1` or dimension names)".into(),
            Ty::TensorOrNumber => "a tensor or a number".into(),
            Ty::Enums(names) => format!("one of {} or a list of them", names_list(names)),
            Ty::Bools => "`true`, `false` or a list of them".into(),
            Ty::Floats => "a number or a list of numbers".into(),
            Ty::Pairs => "a list of [before, after] pairs of integers, e.g. `[[1, 1], [2, 2]]`".into(),
        }
    }

    /// Whether a bare name written for a parameter of this type is a value
    /// of its own (`same`, `circular`, a dimension `B`) when it names
    /// nothing in scope.
    pub fn takes_names(self) -> bool {
        matches!(
            self,
            Ty::Enum(_) | Ty::IntOrEnum(_) | Ty::Enums(_) | Ty::Str | Ty::Shape | Ty::Bool | Ty::Mask
        )
    }

    /// The bare names the type accepts as values, which win over bindings
    /// of the same name.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Ty::Enum(names) | Ty::IntOrEnum(names) | Ty::Enums(names) => names,
            Ty::Mask => &["none", "causal"],
            _ => &[],
        }
    }

    /// What the type expects within `range`, in one phrase: "a positive
    /// integer", "a number in [0, 1)".
    pub fn expected_in(self, range: Range) -> String {
        match (self, range) {
            (Ty::Int, Range::Positive) => "a positive integer".into(),
            (Ty::Int, Range::NonNegative | Range::Seed) => "a non-negative integer".into(),
            (Ty::Int, Range::AtLeast(min)) => format!("an integer of at least {min}"),
            (Ty::Float, Range::PositiveFloat) => "a positive number".into(),
            (Ty::Float, Range::NonNegativeFloat) => "a non-negative number".into(),
            (Ty::Float, Range::OpenUnitInterval) => "a number in (0, 1)".into(),
            (Ty::Float, Range::Probability) => "a number in [0, 1)".into(),
            (Ty::Float, Range::UnitInterval) => "a number in [0, 1]".into(),
            _ => self.expected(),
        }
    }
}

/// Which values of a number are allowed. Every integer range but
/// [`Range::Seed`] also bounds the magnitude by [`MAX_SIZE`]; every float
/// must be finite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Any,
    /// An integer ≥ 1 (sizes, counts).
    Positive,
    /// An integer ≥ 0 (padding).
    NonNegative,
    /// An integer ≥ the bound (a Lorenz-96 ring of at least 4 variables).
    AtLeast(i64),
    /// An integer ≥ 0 of any size (a random seed).
    Seed,
    /// A float in `[0, 1)` (dropout).
    Probability,
    /// A float in `[0, 1]` (momentum).
    UnitInterval,
    /// A float in `(0, 1)` (a split fraction).
    OpenUnitInterval,
    /// A float > 0 (eps, delta).
    PositiveFloat,
    /// A float ≥ 0 (weight decay).
    NonNegativeFloat,
}

/// Why an integer is outside its [`Range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntOutside {
    /// Below the range's least value (the bound).
    Below(i64),
    /// Larger in magnitude than the range allows (the bound).
    TooLarge(i64),
}

/// Why a float is outside its [`Range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatOutside {
    NotFinite,
    Outside,
}

impl Range {
    /// The least integer accepted.
    pub fn min_int(self) -> i64 {
        match self {
            Range::Positive => 1,
            Range::NonNegative | Range::Seed => 0,
            Range::AtLeast(min) => min,
            _ => i64::MIN,
        }
    }

    /// The largest integer magnitude accepted.
    pub fn max_int(self) -> i64 {
        match self {
            Range::Seed => i64::MAX,
            _ => MAX_SIZE,
        }
    }

    /// `n` if the range accepts it.
    pub fn int(self, n: i64) -> Result<i64, IntOutside> {
        if n < self.min_int() {
            Err(IntOutside::Below(self.min_int()))
        } else if n.unsigned_abs() > self.max_int().unsigned_abs() {
            Err(IntOutside::TooLarge(self.max_int()))
        } else {
            Ok(n)
        }
    }

    /// `x` if the range accepts it.
    pub fn float(self, x: f64) -> Result<f64, FloatOutside> {
        if !x.is_finite() {
            return Err(FloatOutside::NotFinite);
        }
        let ok = match self {
            Range::Probability => (0.0..1.0).contains(&x),
            Range::UnitInterval => (0.0..=1.0).contains(&x),
            Range::OpenUnitInterval => x > 0.0 && x < 1.0,
            Range::PositiveFloat => x > 0.0,
            Range::NonNegativeFloat => x >= 0.0,
            _ => true,
        };
        if ok {
            Ok(x)
        } else {
            Err(FloatOutside::Outside)
        }
    }
}

/// A parameter's default value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    Required,
    /// Absent unless given (`weight: none`, `axis` of `sum`).
    None,
    Int(i64),
    Float(f64),
    Bool(bool),
    Enum(&'static str),
    Str(&'static str),
    /// The value of another parameter (`stride: size`).
    Same(&'static str),
    /// A block constant's default, written in the block and evaluated at
    /// every call that does not give the argument.
    Written,
}

/// A parameter of a callee. The name borrows from the callee's definition:
/// a table's parameters are `Param<'static>`, a block's borrow its syntax
/// tree.
#[derive(Clone, Copy, Debug)]
pub struct Param<'n> {
    pub name: &'n str,
    pub ty: Ty,
    pub range: Range,
    pub default: Default,
    /// May be given by position as well as by name.
    pub positional: bool,
}

impl<'n> Param<'n> {
    /// A parameter given by position or by name.
    pub const fn positional(name: &'n str, ty: Ty, range: Range, default: Default) -> Param<'n> {
        Param { name, ty, range, default, positional: true }
    }

    /// A parameter given only by name.
    pub const fn keyword(name: &'n str, ty: Ty, range: Range, default: Default) -> Param<'n> {
        Param { name, ty, range, default, positional: false }
    }

    pub fn required(&self) -> bool {
        self.default == Default::Required
    }
}

/// A checked argument value.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Tensor(TensorVal),
    Tensors(Vec<TensorVal>),
    Int(i64),
    Ints(Vec<i64>),
    Float(f64),
    Bool(bool),
    Str(String),
    Strs(Vec<String>),
    Enum(String),
    /// A [`Ty::Enums`] value: one name or several.
    Enums(Vec<String>),
    /// A [`Ty::Bools`] value: one or several.
    Bools(Vec<bool>),
    /// A [`Ty::Floats`] value: one or several.
    Floats(Vec<f64>),
    /// A [`Ty::Pairs`] value: `(before, after)` per axis.
    Pairs(Vec<(i64, i64)>),
    Shape(Vec<ReshapeDim>),
    None,
}

// ---- binding ------------------------------------------------------------------

/// One argument of a call, as [`bind`] sees it.
pub struct Given<'e, S> {
    /// The name of a keyword argument (`lr` in `lr: 1e-3`).
    pub name: Option<&'e ast::Ident>,
    /// The whole argument (`lr: 1e-3`); for a value piped in with `|>`, the
    /// pipeline's left side.
    pub span: Span,
    /// The value alone (`1e-3`).
    pub value_span: Span,
    /// What the [`Binder`] evaluates.
    pub source: S,
}

/// A problem with how a call's arguments match the parameters (rather than
/// with one value).
pub enum Mismatch<'e> {
    /// A positional argument after a keyword argument (the parser rejects
    /// this order; a syntax tree built otherwise may have it). It is bound
    /// by position all the same, so its parameter is not also missing.
    PositionalAfterKeyword { arg: Span, keyword: Span },
    /// A keyword that names no parameter.
    UnknownKeyword(&'e ast::Ident),
    /// A keyword that names the parameter taking the remaining positional
    /// arguments ([`Ty::Tensors`]).
    VariadicByName(&'e ast::Ident),
    /// Parameter `param` given again by the argument `again` (named `name`
    /// if a keyword argument); `first` is the argument that gave it first and
    /// `first_value` its value.
    GivenTwice { param: usize, name: Option<&'e ast::Ident>, again: Span, first: Span, first_value: Span },
    /// A positional argument beyond the positional parameters.
    ExtraPositional(Span),
    /// The required parameters not given, in parameter order.
    Missing(Vec<usize>),
}

/// What a caller of [`bind`] provides: the evaluation and check of each
/// value, and the wording of every problem.
pub trait Binder<'e, S> {
    /// Evaluates `source` for `param` and checks it; `None` after reporting
    /// why it is not acceptable (or silently, for a value that already
    /// failed).
    fn value(&mut self, param: &Param, source: S, span: Span) -> Option<Arg>;

    /// Reports a mismatch of arguments and parameters.
    fn mismatch(&mut self, mismatch: Mismatch<'e>);
}

/// Matches `args` to `params`: positional arguments in order to the
/// positional parameters (a [`Ty::Tensors`] parameter takes all that
/// remain), then keywords by name. Every value is evaluated and checked by
/// `binder` in argument order and every problem reported, so a call shows
/// all of its mistakes at once. `None` if anything was wrong.
pub fn bind<'e, S>(
    params: &[Param],
    args: impl IntoIterator<Item = Given<'e, S>>,
    binder: &mut impl Binder<'e, S>,
) -> Option<Bound> {
    let positional: Vec<usize> = (0..params.len()).filter(|&i| params[i].positional).collect();
    let mut slots: Vec<Option<Arg>> = vec![None; params.len()];
    // Per parameter: the argument that gave it and its value.
    let mut first: Vec<Option<(Span, Span)>> = vec![None; params.len()];
    let mut variadic: Vec<TensorVal> = vec![];
    let mut ok = true;
    let mut next_positional = 0;
    let mut first_keyword: Option<Span> = None;
    for arg in args {
        let index = match arg.name {
            None => {
                if let Some(keyword) = first_keyword {
                    binder.mismatch(Mismatch::PositionalAfterKeyword { arg: arg.span, keyword });
                    ok = false;
                }
                let Some(&i) = positional.get(next_positional) else {
                    binder.mismatch(Mismatch::ExtraPositional(arg.span));
                    ok = false;
                    continue;
                };
                if params[i].ty != Ty::Tensors {
                    next_positional += 1;
                }
                i
            }
            Some(ident) => {
                first_keyword.get_or_insert(arg.span);
                let Some(i) = params.iter().position(|p| p.name == ident.name) else {
                    binder.mismatch(Mismatch::UnknownKeyword(ident));
                    ok = false;
                    continue;
                };
                if params[i].ty == Ty::Tensors {
                    binder.mismatch(Mismatch::VariadicByName(ident));
                    ok = false;
                    continue;
                }
                i
            }
        };
        let param = &params[index];
        if param.ty != Ty::Tensors {
            if let Some((first, first_value)) = first[index] {
                let again = arg.span;
                binder.mismatch(Mismatch::GivenTwice {
                    param: index,
                    name: arg.name,
                    again,
                    first,
                    first_value,
                });
                ok = false;
                continue;
            }
        }
        first[index] = Some((arg.span, arg.value_span));
        match binder.value(param, arg.source, arg.value_span) {
            None => ok = false,
            Some(Arg::Tensor(t)) if param.ty == Ty::Tensors => variadic.push(t),
            Some(Arg::Tensors(ts)) if param.ty == Ty::Tensors => variadic.extend(ts),
            Some(value) => slots[index] = Some(value),
        }
    }
    if let Some(i) = params.iter().position(|p| p.ty == Ty::Tensors) {
        if !variadic.is_empty() {
            slots[i] = Some(Arg::Tensors(variadic));
        }
    }
    let missing: Vec<usize> =
        (0..params.len()).filter(|&i| params[i].required() && first[i].is_none()).collect();
    if !missing.is_empty() {
        binder.mismatch(Mismatch::Missing(missing));
        ok = false;
    }
    let spans = first.iter().map(|f| f.map(|(span, _)| span)).collect();
    ok.then_some(Bound { slots, spans })
}

/// The arguments of a call bound to the parameters.
pub struct Bound {
    /// Per parameter, its checked value (`None` where not given).
    pub slots: Vec<Option<Arg>>,
    /// Per parameter, the argument that gave it.
    pub spans: Vec<Option<Span>>,
}

/// Completes bound arguments with the parameters' defaults.
pub fn fill_defaults(params: &[Param], slots: Vec<Option<Arg>>) -> Vec<Arg> {
    let mut values: Vec<Arg> = vec![];
    for (p, slot) in params.iter().zip(slots.iter()) {
        let v = match (slot, p.default) {
            (Some(arg), _) => arg.clone(),
            (None, Default::Int(n)) if matches!(p.ty, Ty::Ints) => Arg::Ints(vec![n]),
            (None, Default::Int(n)) => Arg::Int(n),
            (None, Default::Float(x)) => Arg::Float(x),
            (None, Default::Bool(v)) if matches!(p.ty, Ty::Bools) => Arg::Bools(vec![v]),
            (None, Default::Bool(v)) => Arg::Bool(v),
            (None, Default::Enum(e)) if matches!(p.ty, Ty::Enums(_)) => Arg::Enums(vec![e.to_string()]),
            (None, Default::Enum(e)) => Arg::Enum(e.to_string()),
            (None, Default::Str(s)) => Arg::Str(s.to_string()),
            (None, Default::Same(other)) => params
                .iter()
                .position(|q| q.name == other)
                .and_then(|i| slots.get(i).cloned().flatten())
                .unwrap_or(Arg::None),
            (None, Default::None | Default::Required | Default::Written) => Arg::None,
        };
        values.push(v);
    }
    values
}

// ---- the bound arguments ----------------------------------------------------

/// The checked arguments of one call, one per parameter of the callee.
#[derive(Clone, Debug)]
pub struct Args {
    pub params: &'static [Param<'static>],
    pub values: Vec<Arg>,
}

/// A [`Ty::TensorOrNumber`] argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Operand {
    Tensor(ValueId),
    Number(f64),
}

/// An argument asked for by a name the callee lacks, or of another type
/// than its parameter's (a mistake in a table, never in a program).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingArgument {
    pub name: String,
}

impl std::fmt::Display for MissingArgument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "argument `{}` is missing or has the wrong type", self.name)
    }
}

impl From<MissingArgument> for BuildError {
    fn from(m: MissingArgument) -> BuildError {
        BuildError::new(m.to_string())
    }
}

fn missing(name: &str) -> MissingArgument {
    MissingArgument { name: name.to_string() }
}

impl Args {
    pub fn get(&self, name: &str) -> Option<&Arg> {
        let i = self.params.iter().position(|p| p.name == name)?;
        self.values.get(i)
    }

    /// Every tensor operand in parameter order: the numbering that
    /// [`BuildError::operand`] refers to.
    pub fn operands(&self) -> Vec<TensorVal> {
        let mut out = vec![];
        for v in &self.values {
            match v {
                Arg::Tensor(t) => out.push(t.clone()),
                Arg::Tensors(ts) => out.extend(ts.iter().cloned()),
                _ => {}
            }
        }
        out
    }

    pub fn tensor(&self, name: &str) -> Result<ValueId, MissingArgument> {
        match self.get(name) {
            Some(Arg::Tensor(t)) => Ok(t.id),
            _ => Err(missing(name)),
        }
    }

    pub fn opt_tensor(&self, name: &str) -> Result<Option<ValueId>, MissingArgument> {
        match self.get(name) {
            Some(Arg::Tensor(t)) => Ok(Some(t.id)),
            Some(Arg::None) => Ok(None),
            _ => Err(missing(name)),
        }
    }

    /// A [`Ty::State`] argument: its tensors, none when not given.
    pub fn states(&self, name: &str) -> Result<Vec<ValueId>, MissingArgument> {
        match self.get(name) {
            Some(Arg::Tensors(ts)) => Ok(ts.iter().map(|t| t.id).collect()),
            Some(Arg::None) => Ok(vec![]),
            _ => Err(missing(name)),
        }
    }

    pub fn tensors(&self, name: &str) -> Result<Vec<ValueId>, MissingArgument> {
        match self.get(name) {
            Some(Arg::Tensors(ts)) => Ok(ts.iter().map(|t| t.id).collect()),
            _ => Err(missing(name)),
        }
    }

    pub fn int(&self, name: &str) -> Result<i64, MissingArgument> {
        match self.get(name) {
            Some(Arg::Int(n)) => Ok(*n),
            _ => Err(missing(name)),
        }
    }

    /// A non-negative integer (checked by its [`Range`]) as a size or count.
    pub fn size(&self, name: &str) -> Result<usize, MissingArgument> {
        usize::try_from(self.int(name)?).map_err(|_| missing(name))
    }

    /// An integer-or-list argument; `None` if absent.
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, MissingArgument> {
        match self.get(name) {
            Some(Arg::Ints(v)) => Ok(Some(v.clone())),
            Some(Arg::Int(n)) => Ok(Some(vec![*n])),
            Some(Arg::None) => Ok(None),
            _ => Err(missing(name)),
        }
    }

    /// A [`Ty::TensorOrNumber`] argument.
    pub fn operand(&self, name: &str) -> Result<Operand, MissingArgument> {
        match self.get(name) {
            Some(Arg::Tensor(t)) => Ok(Operand::Tensor(t.id)),
            Some(Arg::Float(x)) => Ok(Operand::Number(*x)),
            Some(Arg::Int(n)) => Ok(Operand::Number(*n as f64)),
            _ => Err(missing(name)),
        }
    }

    /// Builders number their operands by parameter position, counting a
    /// number given for a [`Ty::TensorOrNumber`] parameter like a tensor
    /// (`mse(p, 0.0, weight: w)`: the weight is operand 2), while
    /// [`Args::operands`] lists the tensors alone. This renumbers a build
    /// error's operand to the latter; a number at fault is no operand.
    pub fn renumber(&self, mut e: BuildError) -> BuildError {
        let mut slots: Vec<Option<usize>> = vec![];
        let mut tensors = 0;
        for (p, v) in self.params.iter().zip(&self.values) {
            match v {
                Arg::Tensor(_) => {
                    slots.push(Some(tensors));
                    tensors += 1;
                }
                Arg::Tensors(ts) => {
                    slots.extend((tensors..tensors + ts.len()).map(Some));
                    tensors += ts.len();
                }
                Arg::Float(_) | Arg::Int(_) if p.ty == Ty::TensorOrNumber => slots.push(None),
                _ => {}
            }
        }
        e.operand = e.operand.and_then(|i| slots.get(i).copied().flatten());
        e
    }

    pub fn float(&self, name: &str) -> Result<f64, MissingArgument> {
        match self.get(name) {
            Some(Arg::Float(x)) => Ok(*x),
            Some(Arg::Int(n)) => Ok(*n as f64),
            _ => Err(missing(name)),
        }
    }

    /// A number that may be `none`.
    pub fn opt_float(&self, name: &str) -> Result<Option<f64>, MissingArgument> {
        match self.get(name) {
            Some(Arg::None) => Ok(None),
            _ => self.float(name).map(Some),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool, MissingArgument> {
        match self.get(name) {
            Some(Arg::Bool(b)) => Ok(*b),
            _ => Err(missing(name)),
        }
    }

    pub fn str(&self, name: &str) -> Result<String, MissingArgument> {
        match self.get(name) {
            Some(Arg::Str(s)) => Ok(s.clone()),
            _ => Err(missing(name)),
        }
    }

    /// A [`Ty::Strs`] argument: one string or several.
    pub fn strs(&self, name: &str) -> Result<Vec<String>, MissingArgument> {
        match self.get(name) {
            Some(Arg::Strs(v)) => Ok(v.clone()),
            Some(Arg::Str(s)) => Ok(vec![s.clone()]),
            _ => Err(missing(name)),
        }
    }

    pub fn enum_value(&self, name: &str) -> Result<&str, MissingArgument> {
        match self.get(name) {
            Some(Arg::Enum(e)) => Ok(e),
            _ => Err(missing(name)),
        }
    }

    /// A [`Ty::Enums`] argument: one name or several.
    pub fn enums(&self, name: &str) -> Result<Vec<String>, MissingArgument> {
        match self.get(name) {
            Some(Arg::Enums(v)) => Ok(v.clone()),
            Some(Arg::Enum(e)) => Ok(vec![e.clone()]),
            _ => Err(missing(name)),
        }
    }

    /// A [`Ty::Floats`] argument; `None` if absent.
    pub fn floats(&self, name: &str) -> Result<Option<Vec<f64>>, MissingArgument> {
        match self.get(name) {
            Some(Arg::Floats(v)) => Ok(Some(v.clone())),
            Some(Arg::None) => Ok(None),
            _ => Err(missing(name)),
        }
    }

    /// A [`Ty::Bools`] argument: one or several.
    pub fn bools(&self, name: &str) -> Result<Vec<bool>, MissingArgument> {
        match self.get(name) {
            Some(Arg::Bools(v)) => Ok(v.clone()),
            Some(Arg::Bool(b)) => Ok(vec![*b]),
            _ => Err(missing(name)),
        }
    }

    /// A [`Ty::Pairs`] argument of non-negative integers (checked by its
    /// [`Range`]) as sizes.
    pub fn pairs(&self, name: &str) -> Result<Vec<(usize, usize)>, MissingArgument> {
        let size = |n: i64| usize::try_from(n).map_err(|_| missing(name));
        match self.get(name) {
            Some(Arg::Pairs(v)) => v.iter().map(|&(a, b)| Ok((size(a)?, size(b)?))).collect(),
            _ => Err(missing(name)),
        }
    }

    pub fn shape(&self, name: &str) -> Result<Vec<ReshapeDim>, MissingArgument> {
        match self.get(name) {
            Some(Arg::Shape(dims)) => Ok(dims.clone()),
            _ => Err(missing(name)),
        }
    }
}

// ---- checking a value of a model ----------------------------------------------

/// Why an argument was rejected: the message and a label for the argument.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub message: String,
    pub label: String,
}

fn reject(message: impl Into<String>, label: impl Into<String>) -> Rejection {
    Rejection { message: message.into(), label: label.into() }
}

fn wrong_type(ty: Ty, found: &Value) -> Rejection {
    reject(
        format!("expected {}, found {}", ty.expected(), found.describe()),
        format!("expected {}", ty.expected()),
    )
}

/// Checks `value`, evaluated in a model, for parameter `name` of type `ty`.
/// `Value::Error` never reaches here (callers skip failed expressions).
/// Built-ins and block constants share it, so both report the same wording.
pub fn check(name: &str, ty: Ty, range: Range, value: &Value) -> Result<Arg, Rejection> {
    match ty {
        Ty::Tensor => match value {
            Value::Tensor(t) => Ok(Arg::Tensor(t.clone())),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::Tensors => match value {
            Value::Tensor(t) => Ok(Arg::Tensor(t.clone())),
            Value::List(_) => tensor_list(ty, value),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::OptTensor => match value {
            Value::Tensor(t) => Ok(Arg::Tensor(t.clone())),
            Value::Symbol(s) if s == "none" => Ok(Arg::None),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::Mask => match value {
            Value::Tensor(t) => Ok(Arg::Tensor(t.clone())),
            Value::Symbol(s) if s == "none" => Ok(Arg::None),
            Value::Symbol(_) => enum_value(name, ty, &["causal", "none"], value),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::TensorList => tensor_list(ty, value),
        Ty::State => match value {
            Value::Tensor(t) => Ok(Arg::Tensors(vec![t.clone()])),
            Value::List(items) if !items.is_empty() => tensor_list(ty, value),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::Int => int(name, range, value).map(Arg::Int),
        Ty::Ints => ints(name, ty, range, value),
        Ty::IntList => match value {
            Value::List(_) => ints(name, ty, range, value),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::Float => float(name, range, value).map(Arg::Float),
        Ty::Bool => match value {
            Value::Bool(b) => Ok(Arg::Bool(*b)),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::Str => match value {
            Value::Str(s) | Value::Symbol(s) => Ok(Arg::Str(s.clone())),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::Strs => strs(name, ty, value),
        Ty::Enum(names) => enum_value(name, ty, names, value),
        Ty::IntOrEnum(names) => match value {
            Value::Int(_) | Value::List(_) => ints(name, ty, range, value),
            _ => enum_value(name, ty, names, value),
        },
        Ty::Shape => shape(ty, value),
        Ty::TensorOrNumber => match value {
            Value::Tensor(t) => Ok(Arg::Tensor(t.clone())),
            Value::Int(_) | Value::Float(_) => float(name, range, value).map(Arg::Float),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::Enums(names) => match value {
            Value::List(items) if !items.is_empty() => {
                let mut out = vec![];
                for item in items {
                    match enum_value(name, ty, names, item)? {
                        Arg::Enum(e) => out.push(e),
                        _ => return Err(wrong_type(ty, item)),
                    }
                }
                Ok(Arg::Enums(out))
            }
            Value::List(_) => Err(empty_list(name)),
            _ => match enum_value(name, ty, names, value)? {
                Arg::Enum(e) => Ok(Arg::Enums(vec![e])),
                _ => Err(wrong_type(ty, value)),
            },
        },
        Ty::Bools => match value {
            Value::Bool(b) => Ok(Arg::Bools(vec![*b])),
            Value::List(items) if !items.is_empty() => items
                .iter()
                .map(|item| match item {
                    Value::Bool(b) => Ok(*b),
                    other => Err(wrong_type(ty, other)),
                })
                .collect::<Result<Vec<bool>, Rejection>>()
                .map(Arg::Bools),
            Value::List(_) => Err(empty_list(name)),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::Floats => match value {
            Value::Int(_) | Value::Float(_) => float(name, range, value).map(|x| Arg::Floats(vec![x])),
            Value::List(items) if !items.is_empty() => items
                .iter()
                .map(|item| match item {
                    Value::Int(_) | Value::Float(_) => float(name, range, item),
                    other => Err(wrong_type(ty, other)),
                })
                .collect::<Result<Vec<f64>, Rejection>>()
                .map(Arg::Floats),
            Value::List(_) => Err(empty_list(name)),
            _ => Err(wrong_type(ty, value)),
        },
        Ty::Pairs => pairs(name, range, value),
    }
}

/// `[[1, 1], [0, 2]]`: one `[before, after]` pair per entry.
fn pairs(name: &str, range: Range, value: &Value) -> Result<Arg, Rejection> {
    let Value::List(items) = value else { return Err(wrong_type(Ty::Pairs, value)) };
    if items.is_empty() {
        return Err(empty_list(name));
    }
    if items.iter().all(|item| matches!(item, Value::Int(_))) {
        return Err(reject(
            format!("`{name}` needs one [before, after] pair per axis, found a list of integers"),
            format!("write `[{}]` for the last axis", value_text(value)),
        ));
    }
    let mut out = vec![];
    for item in items {
        match item {
            Value::List(pair) if pair.len() == 2 => {
                out.push((int(name, range, &pair[0])?, int(name, range, &pair[1])?))
            }
            Value::List(pair) => {
                return Err(reject(
                    format!("each entry of `{name}` is a [before, after] pair, found {} values", pair.len()),
                    "expected [before, after]",
                ))
            }
            other => return Err(wrong_type(Ty::Pairs, other)),
        }
    }
    Ok(Arg::Pairs(out))
}

/// A list of integers as written: `[1, 2]`.
fn value_text(value: &Value) -> String {
    match value {
        Value::Int(n) => n.to_string(),
        Value::List(items) => format!("[{}]", items.iter().map(value_text).collect::<Vec<_>>().join(", ")),
        other => other.describe(),
    }
}

fn tensor_list(ty: Ty, value: &Value) -> Result<Arg, Rejection> {
    let Value::List(items) = value else { return Err(wrong_type(ty, value)) };
    let mut out = vec![];
    for item in items {
        match item {
            Value::Tensor(t) => out.push(t.clone()),
            other => return Err(wrong_type(ty, other)),
        }
    }
    Ok(Arg::Tensors(out))
}

fn int(name: &str, range: Range, value: &Value) -> Result<i64, Rejection> {
    let n = match value {
        Value::Int(n) => *n,
        _ => return Err(wrong_type(Ty::Int, value)),
    };
    range.int(n).map_err(|outside| match outside {
        IntOutside::Below(min) => {
            reject(format!("`{name}` must be at least {min}, found {n}"), format!("must be at least {min}"))
        }
        IntOutside::TooLarge(max) => {
            reject(format!("`{name}` is too large: {n} (at most {max})"), format!("at most {max}"))
        }
    })
}

fn ints(name: &str, ty: Ty, range: Range, value: &Value) -> Result<Arg, Rejection> {
    match value {
        Value::Int(_) => Ok(Arg::Ints(vec![int(name, range, value)?])),
        Value::List(items) if !items.is_empty() => {
            let mut out = vec![];
            for item in items {
                match item {
                    Value::Int(_) => out.push(int(name, range, item)?),
                    other => return Err(wrong_type(ty, other)),
                }
            }
            Ok(Arg::Ints(out))
        }
        Value::List(_) => Err(empty_list(name)),
        _ => Err(wrong_type(ty, value)),
    }
}

fn empty_list(name: &str) -> Rejection {
    reject(format!("`{name}` must not be an empty list"), "empty list")
}

fn float(name: &str, range: Range, value: &Value) -> Result<f64, Rejection> {
    let Some(x) = value.as_f64() else { return Err(wrong_type(Ty::Float, value)) };
    range.float(x).map_err(|outside| {
        let what = match (outside, range) {
            (FloatOutside::NotFinite, _) => {
                return reject(format!("`{name}` must be finite, found {x}"), "not finite");
            }
            (_, Range::Probability) => "in [0, 1)",
            (_, Range::UnitInterval) => "in [0, 1]",
            (_, Range::OpenUnitInterval) => "in (0, 1)",
            (_, Range::NonNegativeFloat) => "non-negative",
            _ => "positive",
        };
        reject(format!("`{name}` must be {what}, found {x}"), format!("must be {what}"))
    })
}

fn strs(name: &str, ty: Ty, value: &Value) -> Result<Arg, Rejection> {
    match value {
        Value::Str(s) => Ok(Arg::Strs(vec![s.clone()])),
        Value::List(items) if !items.is_empty() => {
            let mut out = vec![];
            for item in items {
                match item {
                    Value::Str(s) => out.push(s.clone()),
                    other => return Err(wrong_type(ty, other)),
                }
            }
            Ok(Arg::Strs(out))
        }
        Value::List(_) => Err(empty_list(name)),
        _ => Err(wrong_type(ty, value)),
    }
}

fn enum_value(name: &str, ty: Ty, names: &[&str], value: &Value) -> Result<Arg, Rejection> {
    let text = match value {
        Value::Symbol(s) | Value::Str(s) => s,
        _ => return Err(wrong_type(ty, value)),
    };
    if names.contains(&text.as_str()) {
        return Ok(Arg::Enum(text.clone()));
    }
    let extra = if matches!(ty, Ty::IntOrEnum(_)) { " or an integer" } else { "" };
    Err(reject(
        format!("invalid value `{text}` for `{name}`: expected one of {}{extra}", names_list(names)),
        format!("expected one of {}{extra}", names_list(names)),
    ))
}

fn shape(ty: Ty, value: &Value) -> Result<Arg, Rejection> {
    let Value::List(items) = value else { return Err(wrong_type(ty, value)) };
    let mut dims = vec![];
    for item in items {
        let dim = match item {
            Value::Int(-1) => ReshapeDim::Infer,
            Value::Int(n) if (1..=MAX_SIZE).contains(n) => ReshapeDim::Known(*n as usize),
            Value::Symbol(s) => ReshapeDim::Sym(s.clone()),
            other => return Err(wrong_type(ty, other)),
        };
        dims.push(dim);
    }
    Ok(Arg::Shape(dims))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_types() {
        assert_eq!(check("units", Ty::Int, Range::Positive, &Value::Int(3)), Ok(Arg::Int(3)));
        let e = check("units", Ty::Int, Range::Positive, &Value::Int(0)).unwrap_err();
        assert_eq!(e.message, "`units` must be at least 1, found 0");
        let e = check("units", Ty::Int, Range::Positive, &Value::Str("a".into())).unwrap_err();
        assert_eq!(e.message, "expected an integer, found a string (\"a\")");
        let e = check("p", Ty::Float, Range::Probability, &Value::Float(1.0)).unwrap_err();
        assert_eq!(e.message, "`p` must be in [0, 1), found 1");
        let e = check("units", Ty::Int, Range::Positive, &Value::Int(1 << 30)).unwrap_err();
        assert!(e.message.contains("too large"));
        let pad = Ty::IntOrEnum(&["valid", "same"]);
        assert_eq!(
            check("pad", pad, Range::NonNegative, &Value::Symbol("same".into())),
            Ok(Arg::Enum("same".into()))
        );
        assert_eq!(check("pad", pad, Range::NonNegative, &Value::Int(1)), Ok(Arg::Ints(vec![1])));
    }

    #[test]
    fn lists_of_names_flags_and_pairs() {
        let modes = Ty::Enums(&["zeros", "circular"]);
        let sym = |s: &str| Value::Symbol(s.into());
        assert_eq!(
            check("pad_mode", modes, Range::Any, &sym("circular")),
            Ok(Arg::Enums(vec!["circular".into()]))
        );
        assert_eq!(
            check("pad_mode", modes, Range::Any, &Value::List(vec![sym("zeros"), sym("circular")])),
            Ok(Arg::Enums(vec!["zeros".into(), "circular".into()]))
        );
        let e =
            check("pad_mode", modes, Range::Any, &Value::List(vec![sym("zeros"), sym("wrap")])).unwrap_err();
        assert_eq!(e.message, "invalid value `wrap` for `pad_mode`: expected one of `zeros`, `circular`");
        assert!(modes.takes_names() && !Ty::Tensor.takes_names());
        assert_eq!(modes.names(), ["zeros", "circular"]);

        let flags = Value::List(vec![Value::Bool(false), Value::Bool(true)]);
        assert_eq!(check("periodic", Ty::Bools, Range::Any, &flags), Ok(Arg::Bools(vec![false, true])));
        assert_eq!(check("periodic", Ty::Bools, Range::Any, &Value::Bool(true)), Ok(Arg::Bools(vec![true])));
        assert!(check("periodic", Ty::Bools, Range::Any, &Value::Int(1)).is_err());

        let pair = |a, b| Value::List(vec![Value::Int(a), Value::Int(b)]);
        let widths = Value::List(vec![pair(1, 2), pair(0, 3)]);
        assert_eq!(
            check("widths", Ty::Pairs, Range::NonNegative, &widths),
            Ok(Arg::Pairs(vec![(1, 2), (0, 3)]))
        );
        let e = check("widths", Ty::Pairs, Range::NonNegative, &pair(1, 2)).unwrap_err();
        assert_eq!(e.message, "`widths` needs one [before, after] pair per axis, found a list of integers");
        assert_eq!(e.label, "write `[[1, 2]]` for the last axis");
        let e = check("widths", Ty::Pairs, Range::NonNegative, &Value::List(vec![pair(1, -1)])).unwrap_err();
        assert_eq!(e.message, "`widths` must be at least 0, found -1");
        let triple = Value::List(vec![Value::List(vec![Value::Int(1); 3])]);
        let e = check("widths", Ty::Pairs, Range::NonNegative, &triple).unwrap_err();
        assert_eq!(e.message, "each entry of `widths` is a [before, after] pair, found 3 values");
    }

    #[test]
    fn numbers_stand_for_tensors_and_keep_operand_numbers() {
        let ty = Ty::TensorOrNumber;
        assert_eq!(check("target", ty, Range::Any, &Value::Int(1)), Ok(Arg::Float(1.0)));
        let e = check("target", ty, Range::Any, &Value::Str("a".into())).unwrap_err();
        assert_eq!(e.message, "expected a tensor or a number, found a string (\"a\")");
        let tensor = |i: u32| TensorVal { id: ValueId(i), span: Span::new(0, 1), def: None };
        static PARAMS: [Param<'static>; 3] = [
            Param::positional("pred", Ty::Tensor, Range::Any, Default::Required),
            Param::positional("target", Ty::TensorOrNumber, Range::Any, Default::Required),
            Param::positional("weight", Ty::OptTensor, Range::Any, Default::None),
        ];
        let args = Args {
            params: &PARAMS,
            values: vec![Arg::Tensor(tensor(0)), Arg::Float(0.0), Arg::Tensor(tensor(1))],
        };
        assert_eq!(args.operand("target"), Ok(Operand::Number(0.0)));
        assert_eq!(args.operands().len(), 2);
        // The builder's operand 2 (the weight) is the call's second tensor.
        assert_eq!(args.renumber(BuildError::new("w").at(2)).operand, Some(1));
        assert_eq!(args.renumber(BuildError::new("t").at(1)).operand, None);
        assert_eq!(args.renumber(BuildError::new("p").at(0)).operand, Some(0));
    }

    #[test]
    fn the_numeric_rule() {
        assert_eq!(Range::Any.int(-MAX_SIZE), Ok(-MAX_SIZE));
        assert_eq!(Range::Any.int(-MAX_SIZE - 1), Err(IntOutside::TooLarge(MAX_SIZE)));
        assert_eq!(Range::Positive.int(0), Err(IntOutside::Below(1)));
        assert_eq!(Range::AtLeast(4).int(3), Err(IntOutside::Below(4)));
        assert_eq!(Range::Seed.int(i64::MAX), Ok(i64::MAX));
        assert_eq!(Range::Seed.int(-1), Err(IntOutside::Below(0)));
        assert_eq!(Range::Any.int(i64::MIN), Err(IntOutside::TooLarge(MAX_SIZE)));
        assert_eq!(Range::OpenUnitInterval.float(0.0), Err(FloatOutside::Outside));
        assert_eq!(Range::UnitInterval.float(1.0), Ok(1.0));
        assert_eq!(Range::Any.float(f64::INFINITY), Err(FloatOutside::NotFinite));
        assert_eq!(Ty::Int.expected_in(Range::Seed), "a non-negative integer");
        assert_eq!(Ty::Float.expected_in(Range::Any), "a number");
    }
}
