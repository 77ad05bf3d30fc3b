//! The pest parser generated from `grammar/nudge.pest`.

#[derive(pest_derive::Parser)]
#[grammar = "../../grammar/nudge.pest"]
pub struct NudgeParser;
