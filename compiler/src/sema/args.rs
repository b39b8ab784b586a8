//! Checking one argument value against a parameter's type and range.
//!
//! Matching arguments to parameters (positional, keyword, defaults) happens in
//! [`super::expand`]; this module only answers "is this value acceptable for
//! this parameter, and as what?", with the message to show if not. Built-ins
//! and block constants share it, so both report the same wording.

use super::catalogue::{names_list, Arg, Range, Ty, MAX_SIZE};
use super::lower::ReshapeDim;
use super::values::Value;

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

/// Checks `value` for parameter `name` of type `ty`. `Value::Error` never
/// reaches here (callers skip failed expressions).
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
        Ty::TensorList => tensor_list(ty, value),
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
        Ty::Enum(names) => enum_value(name, ty, names, value),
        Ty::IntOrEnum(names) => match value {
            Value::Int(_) | Value::List(_) => ints(name, ty, range, value),
            _ => enum_value(name, ty, names, value),
        },
        Ty::Shape => shape(ty, value),
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
    let (ok, what) = match range {
        Range::Positive => (n >= 1, "at least 1"),
        Range::NonNegative => (n >= 0, "at least 0"),
        _ => (true, ""),
    };
    if !ok {
        return Err(reject(format!("`{name}` must be {what}, found {n}"), format!("must be {what}")));
    }
    if n.unsigned_abs() > MAX_SIZE as u64 {
        return Err(reject(
            format!("`{name}` is too large: {n} (at most {MAX_SIZE})"),
            format!("at most {MAX_SIZE}"),
        ));
    }
    Ok(n)
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
        Value::List(_) => Err(reject(format!("`{name}` must not be an empty list"), "empty list")),
        _ => Err(wrong_type(ty, value)),
    }
}

fn float(name: &str, range: Range, value: &Value) -> Result<f64, Rejection> {
    let Some(x) = value.as_f64() else { return Err(wrong_type(Ty::Float, value)) };
    if !x.is_finite() {
        return Err(reject(format!("`{name}` must be finite, found {x}"), "not finite"));
    }
    let (ok, what) = match range {
        Range::Probability => ((0.0..1.0).contains(&x), "in [0, 1)"),
        Range::UnitInterval => ((0.0..=1.0).contains(&x), "in [0, 1]"),
        Range::PositiveFloat => (x > 0.0, "positive"),
        _ => (true, ""),
    };
    if ok {
        Ok(x)
    } else {
        Err(reject(format!("`{name}` must be {what}, found {x}"), format!("must be {what}")))
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
}
