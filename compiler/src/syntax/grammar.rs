//! The pest parser generated from `grammar/nn.pest`, the single definition of
//! the surface syntax.

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/nn.pest"]
pub struct NnParser;
