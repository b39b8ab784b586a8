//! Constant arithmetic: the one rule for numbers known at compile time.
//!
//! Integers stay integers under `+`, `-` and `*`, and under `/` when the
//! division is exact (`128 / 2` is the integer 64, `3 / 2` the float 1.5);
//! an operation with a float operand is float arithmetic (IEEE). Integer
//! overflow and integer division by zero are errors. A model folds its
//! constants with [`binary`] and [`negate`] as it evaluates them; the
//! `train` section, whose values are all constants, folds whole
//! expressions with [`expression`], which also rejects a division by a
//! float zero (a setting must be finite).

use crate::diag::Diagnostic;
use crate::syntax::ast::{BinOp, Expr, ExprKind};

/// A number known at compile time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(n) => n as f64,
            Num::Float(x) => x,
        }
    }
}

/// Why constant arithmetic has no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FoldError {
    DivisionByZero,
    /// The result of integer arithmetic does not fit 64 bits.
    Overflow,
}

/// `a op b`.
pub fn binary(op: BinOp, a: Num, b: Num) -> Result<Num, FoldError> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => {
            let r = match op {
                BinOp::Add => x.checked_add(y),
                BinOp::Sub => x.checked_sub(y),
                BinOp::Mul => x.checked_mul(y),
                BinOp::Div if y == 0 => return Err(FoldError::DivisionByZero),
                BinOp::Div if x.checked_rem(y) == Some(0) => x.checked_div(y),
                BinOp::Div => return Ok(Num::Float(x as f64 / y as f64)),
            };
            r.map(Num::Int).ok_or(FoldError::Overflow)
        }
        (a, b) => {
            let (x, y) = (a.as_f64(), b.as_f64());
            Ok(Num::Float(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
            }))
        }
    }
}

/// `-a`.
pub fn negate(a: Num) -> Result<Num, FoldError> {
    match a {
        Num::Int(n) => n.checked_neg().map(Num::Int).ok_or(FoldError::Overflow),
        Num::Float(x) => Ok(Num::Float(-x)),
    }
}

/// Why an expression has no constant value.
pub enum Unfolded {
    /// It is not a numeric expression (a string, a name, a call, ...).
    NotNumber,
    /// It is numeric but has no value (overflow, division by zero, too deep).
    Invalid(Diagnostic),
}

/// Deeper arithmetic than this is rejected rather than folded.
pub const MAX_DEPTH: usize = 64;

/// The value of a constant numeric expression: literals, `-`, `+`, `-`, `*`
/// and `/`.
pub fn expression(expr: &Expr) -> Result<Num, Unfolded> {
    fold(expr, 0)
}

fn fold(expr: &Expr, depth: usize) -> Result<Num, Unfolded> {
    if depth > MAX_DEPTH {
        return Err(Unfolded::Invalid(
            Diagnostic::error("constant expression is too deeply nested")
                .primary(expr.span, "too deeply nested"),
        ));
    }
    let overflow = || {
        Unfolded::Invalid(
            Diagnostic::error("integer overflow in constant expression").primary(expr.span, "overflows"),
        )
    };
    match &expr.kind {
        ExprKind::Int(n) => Ok(Num::Int(*n)),
        ExprKind::Float(x) => Ok(Num::Float(*x)),
        ExprKind::Neg(inner) => negate(fold(inner, depth + 1)?).map_err(|_| overflow()),
        ExprKind::Binary { op, lhs, rhs } => {
            let (a, b) = (fold(lhs, depth + 1)?, fold(rhs, depth + 1)?);
            if *op == BinOp::Div && b.as_f64() == 0.0 {
                return Err(Unfolded::Invalid(
                    Diagnostic::error("division by zero in constant expression")
                        .primary(rhs.span, "this is zero"),
                ));
            }
            binary(*op, a, b).map_err(|_| overflow())
        }
        _ => Err(Unfolded::NotNumber),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_stay_integers_when_exact() {
        assert_eq!(binary(BinOp::Div, Num::Int(128), Num::Int(2)), Ok(Num::Int(64)));
        assert_eq!(binary(BinOp::Div, Num::Int(3), Num::Int(2)), Ok(Num::Float(1.5)));
        assert_eq!(
            binary(BinOp::Div, Num::Int(i64::MIN), Num::Int(-1)),
            Ok(Num::Float(9.223372036854776e18))
        );
        assert_eq!(binary(BinOp::Mul, Num::Int(2), Num::Float(0.5)), Ok(Num::Float(1.0)));
        assert_eq!(binary(BinOp::Div, Num::Int(1), Num::Int(0)), Err(FoldError::DivisionByZero));
        assert_eq!(binary(BinOp::Div, Num::Float(1.0), Num::Int(0)), Ok(Num::Float(f64::INFINITY)));
        assert_eq!(binary(BinOp::Add, Num::Int(i64::MAX), Num::Int(1)), Err(FoldError::Overflow));
        assert_eq!(negate(Num::Int(i64::MIN)), Err(FoldError::Overflow));
    }
}
