//! The types of LANGUAGE.md §5, as the checker sees them.

use crate::syntax::ast::{TypeExpr, TypeKind};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Base {
    Number,
    String,
    Bool,
    Time,
    Duration,
    Timezone,
    /// (1.1) A local wall-clock time.
    TimeOfDay,
    ListNumber,
    ListString,
    /// `[]`: a list of any element type.
    EmptyList,
    /// The literal `none`.
    None,
    /// The type of an expression already reported as wrong: it fits everywhere,
    /// so that one mistake gives one error.
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ty {
    pub base: Base,
    pub optional: bool,
}

impl Ty {
    pub const ERROR: Ty = Ty::of(Base::Error);
    pub const NUMBER: Ty = Ty::of(Base::Number);
    pub const STRING: Ty = Ty::of(Base::String);
    pub const BOOL: Ty = Ty::of(Base::Bool);
    pub const TIME: Ty = Ty::of(Base::Time);
    pub const DURATION: Ty = Ty::of(Base::Duration);
    pub const TIME_OF_DAY: Ty = Ty::of(Base::TimeOfDay);

    pub const fn of(base: Base) -> Ty {
        Ty {
            base,
            optional: false,
        }
    }

    pub fn optional(self) -> Ty {
        Ty {
            optional: true,
            ..self
        }
    }

    pub fn required(self) -> Ty {
        Ty {
            optional: false,
            ..self
        }
    }

    pub fn is_error(self) -> bool {
        self.base == Base::Error
    }

    pub fn from_ast(t: &TypeExpr) -> Ty {
        let base = match &t.kind {
            TypeKind::Number => Base::Number,
            TypeKind::String => Base::String,
            TypeKind::Bool => Base::Bool,
            TypeKind::Time => Base::Time,
            TypeKind::Duration => Base::Duration,
            TypeKind::Timezone => Base::Timezone,
            TypeKind::TimeOfDay => Base::TimeOfDay,
            TypeKind::List(inner) => match inner.kind {
                TypeKind::Number => Base::ListNumber,
                TypeKind::String => Base::ListString,
                _ => Base::Error,
            },
            TypeKind::Error => Base::Error,
        };
        Ty {
            base,
            optional: t.optional,
        }
    }

    /// The element type of a list type.
    pub fn element(self) -> Option<Ty> {
        match self.base {
            Base::ListNumber => Some(Ty::NUMBER),
            Base::ListString => Some(Ty::STRING),
            Base::EmptyList | Base::Error => Some(Ty::ERROR),
            _ => None,
        }
    }

    /// Whether a value of type `self` may be used where `expected` is required,
    /// optionality aside.
    pub fn fits(self, expected: Ty) -> bool {
        self.base == expected.base
            || self.is_error()
            || expected.is_error()
            || (self.base == Base::EmptyList && expected.element().is_some())
            || (expected.base == Base::EmptyList && self.element().is_some())
            // Time zones are written as strings.
            || (self.base == Base::String && expected.base == Base::Timezone)
            || (self.base == Base::Timezone && expected.base == Base::String)
    }

    /// A literal to suggest as a default for a missing value of this type.
    pub fn example_default(self) -> &'static str {
        match self.base {
            Base::Number => "0",
            Base::String | Base::Timezone => "\"\"",
            Base::Bool => "false",
            Base::Time => "now",
            Base::Duration => "0s",
            Base::TimeOfDay => "09:00",
            Base::ListNumber | Base::ListString | Base::EmptyList => "[]",
            Base::None | Base::Error => "…",
        }
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.base {
            Base::Number => "number",
            Base::String => "string",
            Base::Bool => "bool",
            Base::Time => "time",
            Base::Duration => "duration",
            Base::Timezone => "timezone",
            Base::TimeOfDay => "time_of_day",
            Base::ListNumber => "list<number>",
            Base::ListString => "list<string>",
            Base::EmptyList => "list",
            Base::None => "none",
            Base::Error => "unknown",
        };
        f.write_str(name)?;
        if self.optional {
            f.write_str("?")?;
        }
        Ok(())
    }
}
