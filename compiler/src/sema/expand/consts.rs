//! `const NAME: TYPE = SOURCE` declarations: read once, before the model is
//! expanded, and bound as `constant` inputs in every run.
//!
//! # Semantics (for the language reference)
//!
//! `const mask: f32[H, W] = npy("mask.npy")` declares a tensor read when
//! the program is compiled, never trained. Sources: `npy(PATH)`,
//! `npz(PATH, KEY)`, `csv(PATH)` (every value, `[rows, columns]`) or
//! `csv(PATH, column: NAME)` (`[rows]`), `netcdf(PATH, var: NAME)` (a
//! variable of a NetCDF file, unpacked; a missing value is an error), and
//! `dataset(NAME, field: FIELD)` (a field of a built-in data set). Paths
//! are relative to the model file. The element type is `f32` or `i32`; integers read into an `f32`
//! constant are converted, floats are not accepted for an `i32` one. Every
//! dimension of TYPE is either a number the file must match or a name the
//! file binds (`i32[E, 2]`); one name binds one size across all constants,
//! and the model's input types may use it (`input x: f32[B, N]` with
//! `const adj: f32[N, N]`). The batch dimension of the inputs cannot be
//! bound by a constant. A constant's values are hashed into checkpoints: a
//! run resumed or evaluated with a changed file is refused. A constant is
//! declared in the model, or at file level, where the model and every block
//! see it.

use super::*;
use crate::sema::constants::{ConstSource, Loaded, Loader};

/// The values of a program's `const` declarations.
#[derive(Clone, Debug, Default)]
pub struct LoadedConsts {
    /// Each declaration's constant, keyed by the statement's start.
    pub by_stmt: HashMap<u32, Constant>,
    /// The file-level declarations' names and starts, in order: the model
    /// and every block see them.
    pub file_level: Vec<(String, u32, Span)>,
    /// The sizes bound by names in the declared types, and where.
    pub dims: HashMap<String, (usize, Span)>,
}

/// Reads every `const` declaration of `model` through `loader`, checking
/// each against its declared type. Problems become diagnostics; a
/// declaration with a problem is left out (its uses are then errors that
/// report nothing more).
pub fn load_constants(
    model: &ModelDef,
    file_level: &[&ast::ConstDef],
    loader: &dyn Loader,
    diags: &mut Vec<Diagnostic>,
) -> LoadedConsts {
    let mut out = LoadedConsts::default();
    let batch: Vec<&str> = model
        .body
        .iter()
        .filter_map(|s| match s {
            Stmt::Decl { ty, .. } => Some(ty),
            _ => None,
        })
        .flat_map(|ty| ty.dims.iter())
        .filter_map(|d| match d {
            ast::DimExpr::Symbol(s) => Some(s.name.as_str()),
            _ => None,
        })
        .collect();
    let mut seen: HashMap<&str, Span> = HashMap::new();
    let in_file = file_level.iter().map(|c| (&c.name, &c.ty, &c.value, &c.span));
    let in_model = model.body.iter().filter_map(|s| match s {
        Stmt::Const { name, ty, value, span } => Some((name, ty, value, span)),
        _ => None,
    });
    for c in file_level {
        out.file_level.push((c.name.name.clone(), c.span.lo, c.name.span));
    }
    for (name, ty, value, span) in in_file.chain(in_model) {
        if let Some(first) = seen.get(name.name.as_str()) {
            diags.push(
                Diagnostic::error(format!("the constant `{}` is declared twice", name.name))
                    .primary(name.span, "second declaration")
                    .secondary(*first, "first declared here"),
            );
            continue;
        }
        seen.insert(&name.name, name.span);
        let Some(source) = source_of(value, diags) else { continue };
        let loaded = match loader.load(&source) {
            Ok(l) => l,
            Err(message) => {
                diags.push(Diagnostic::error(message).primary(value.span, "the constant is read from here"));
                continue;
            }
        };
        if let Some(c) = check(name, ty, value.span, &source, loaded, &batch, &mut out.dims, diags) {
            out.by_stmt.insert(span.lo, c);
        }
    }
    out
}

/// The source a `const`'s expression names.
fn source_of(value: &Expr, diags: &mut Vec<Diagnostic>) -> Option<ConstSource> {
    let bad = |diags: &mut Vec<Diagnostic>, label: &str| {
        diags.push(
            Diagnostic::error(
                "a constant is read from `npy(PATH)`, `npz(PATH, KEY)`, `csv(PATH)`, `netcdf(PATH, var: NAME)` \
                 or `dataset(NAME, field: FIELD)`",
            )
                .primary(value.span, label.to_string())
                .note("help: a tensor computed in the model is an ordinary binding: `m = ones([4, 4])`"),
        );
        None
    };
    let ExprKind::Call { callee, args } = &value.kind else { return bad(diags, "not a file or data set") };
    let mut positional = vec![];
    let mut keywords = HashMap::new();
    for a in args {
        let ExprKind::Str(text) = &a.value.kind else {
            diags.push(
                Diagnostic::error("the arguments of a constant's source are strings")
                    .primary(a.value.span, "expected a string in double quotes"),
            );
            return None;
        };
        match &a.name {
            Some(n) => {
                keywords.insert(n.name.as_str(), (text.clone(), n.span));
            }
            None => positional.push(text.clone()),
        }
    }
    let fn_name = callee.text();
    let allowed: &[&str] = match fn_name.as_str() {
        "csv" => &["column"],
        "dataset" => &["field"],
        "netcdf" => &["var"],
        _ => &[],
    };
    if let Some((k, (_, s))) = keywords.iter().find(|(k, _)| !allowed.contains(k)) {
        diags.push(
            Diagnostic::error(format!("`{fn_name}` has no argument `{k}`")).primary(*s, "unknown argument"),
        );
        return None;
    }
    let take = |k: &str, keywords: &HashMap<&str, (String, Span)>| keywords.get(k).map(|(v, _)| v.clone());
    let source = match (fn_name.as_str(), positional.as_slice()) {
        ("npy", [path]) => ConstSource::Npy { path: path.clone() },
        ("npz", [path, key]) => ConstSource::Npz { path: path.clone(), key: key.clone() },
        ("csv", [path]) => ConstSource::Csv { path: path.clone(), column: take("column", &keywords) },
        ("dataset", [name]) => match take("field", &keywords) {
            Some(field) => ConstSource::Dataset { name: name.clone(), field },
            None => return bad(diags, "`dataset(NAME, field: FIELD)` names the field"),
        },
        ("dataset", [name, field]) => ConstSource::Dataset { name: name.clone(), field: field.clone() },
        ("netcdf", [path]) => match take("var", &keywords) {
            Some(var) => ConstSource::Netcdf { path: path.clone(), var },
            None => return bad(diags, "`netcdf(PATH, var: NAME)` names the variable"),
        },
        ("netcdf", [path, var]) => ConstSource::Netcdf { path: path.clone(), var: var.clone() },
        ("npy" | "npz" | "csv" | "dataset" | "netcdf", _) => return bad(diags, "wrong number of arguments"),
        _ => return bad(diags, "not a file or data set"),
    };
    Some(source)
}

/// Checks a loaded array against the declared type and makes the constant.
#[allow(clippy::too_many_arguments)]
fn check(
    name: &ast::Ident,
    ty: &ast::TensorType,
    at: Span,
    source: &ConstSource,
    loaded: Loaded,
    batch: &[&str],
    dims: &mut HashMap<String, (usize, Span)>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Constant> {
    let Loaded { shape, data } = loaded;
    let held = format!(
        "the file holds {}[{}]",
        data_dtype(&data),
        shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
    );
    let mismatch = |diags: &mut Vec<Diagnostic>, why: String| {
        diags.push(
            Diagnostic::error(format!("{source} does not match the type of `{}`: {why}", name.name))
                .primary(ty.span, "declared here")
                .secondary(at, held.clone()),
        );
        None::<Constant>
    };
    let dtype = match ty.dtype.name.as_str() {
        "f32" => DType::F32,
        "i32" => DType::I32,
        other => {
            diags.push(
                Diagnostic::error(format!("unknown element type `{other}`"))
                    .primary(ty.dtype.span, "expected `f32` or `i32`"),
            );
            return None;
        }
    };
    let data = match (dtype, data) {
        (DType::F32, ConstData::I32(v)) => ConstData::F32(v.into_iter().map(|x| x as f32).collect()),
        (DType::I32, ConstData::F32(v)) => {
            return mismatch(diags, format!("it holds {} float values, not i32", v.len()));
        }
        (_, d) => d,
    };
    if ty.dims.len() != shape.len() {
        let want = ty.dims.len();
        return mismatch(diags, format!("the declared rank is {want}, the file's {}", shape.len()));
    }
    let mut known = vec![];
    for (d, &n) in ty.dims.iter().zip(&shape) {
        match d {
            ast::DimExpr::Known(k, _) if *k as usize == n => known.push(n),
            ast::DimExpr::Known(k, _) => {
                return mismatch(diags, format!("a dimension is declared {k} but the file has {n}"));
            }
            ast::DimExpr::Symbol(s) if batch.contains(&s.name.as_str()) => {
                diags.push(
                    Diagnostic::error(format!(
                        "`{}` is a symbolic dimension of the model's inputs; a constant cannot fix it",
                        s.name
                    ))
                    .primary(s.span, "bound by the data at run time")
                    .note("help: give the constant's dimension its own name"),
                );
                return None;
            }
            ast::DimExpr::Symbol(s) => match dims.get(&s.name) {
                Some(&(m, _)) if m == n => known.push(n),
                Some(&(m, first)) => {
                    diags.push(
                        Diagnostic::error(format!(
                            "`{}` is {m} in an earlier constant but {n} in {source}",
                            s.name
                        ))
                        .primary(s.span, format!("{n} here"))
                        .secondary(first, format!("{m} here")),
                    );
                    return None;
                }
                None => {
                    dims.insert(s.name.clone(), (n, s.span));
                    known.push(n);
                }
            },
        }
    }
    if shape.contains(&0) {
        return mismatch(diags, "it has an empty dimension".into());
    }
    let ty = Type::new(dtype, Shape::known(&known));
    Some(Constant::new(name.name.clone(), ty, data, source.to_string()))
}

fn data_dtype(data: &ConstData) -> &'static str {
    match data {
        ConstData::F32(_) => "f32",
        ConstData::I32(_) => "i32",
    }
}

impl Run<'_> {
    /// Binds every loaded `const` of the file and the model as a `constant`
    /// input.
    pub fn declare_constants(&mut self, model: &ModelDef, env: &mut Env) {
        let loaded = self.loaded;
        for (name, at, name_span) in &loaded.file_level {
            self.model_names.push(name.clone());
            let Some(c) = loaded.by_stmt.get(at).cloned() else {
                env.bind(name, Value::Error, *name_span);
                continue;
            };
            let id =
                self.graph.input(c.name.clone(), InputKind::Const, c.ty.clone(), self.loc_of(*name_span));
            self.constants.push(c);
            self.constant_ids.push(id);
            self.file_consts.push((name.clone(), id, *name_span));
            env.bind(name, tensor(id, *name_span), *name_span);
        }
        for stmt in &model.body {
            let Stmt::Const { name, span, .. } = stmt else { continue };
            self.model_names.push(name.name.clone());
            let Some(c) = self.loaded.by_stmt.get(&span.lo).cloned() else {
                env.bind(&name.name, Value::Error, name.span);
                continue;
            };
            let loc = self.loc_of(*span);
            let id = self.graph.input(c.name.clone(), InputKind::Const, c.ty.clone(), loc);
            self.constants.push(c);
            self.constant_ids.push(id);
            env.bind_as(&name.name, tensor(id, name.span), name.span, Some("constant"));
        }
    }
}
