//! Field-level validation errors and a small reader that walks untrusted JSON and
//! collects every problem at once, so that a client learns about all of its mistakes
//! in one round trip.

use serde::Serialize;
use serde_json::{Map, Value};

/// One problem with one field of the input. `field` is a path such as
/// `details.changes[0].new_value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub code: &'static str,
    pub message: String,
}

/// All the problems found in one input. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("validation failed: {} field error(s)", .0.len())]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(
        &mut self,
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) {
        self.0.push(FieldError {
            field: field.into(),
            code,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded, the collected errors otherwise.
    pub fn finish<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    pub fn single(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        let mut errors = Self::default();
        errors.push(field, code, message);
        errors
    }
}

/// Limits shared by every free-text field.
pub mod limits {
    pub const NAME: usize = 200;
    pub const SHORT_TEXT: usize = 200;
    pub const LONG_TEXT: usize = 5_000;
    pub const LIST_ITEMS: usize = 50;
}

/// Reads the members of one JSON object, recording errors under `path`.
pub struct ObjectReader<'a> {
    path: String,
    map: Map<String, Value>,
    errors: &'a mut ValidationErrors,
}

impl<'a> ObjectReader<'a> {
    /// `None` (with an error recorded) when `value` is not an object. `null` and a
    /// missing value read as an empty object when `optional` is set.
    pub fn new(
        value: Option<&Value>,
        path: &str,
        optional: bool,
        errors: &'a mut ValidationErrors,
    ) -> Option<Self> {
        match value {
            Some(Value::Object(map)) => Some(Self {
                path: path.to_owned(),
                map: map.clone(),
                errors,
            }),
            None | Some(Value::Null) if optional => Some(Self {
                path: path.to_owned(),
                map: Map::new(),
                errors,
            }),
            None | Some(Value::Null) => {
                errors.push(path, "required", "this field is required");
                None
            }
            Some(_) => {
                errors.push(path, "invalid_type", "must be an object");
                None
            }
        }
    }

    pub fn field_path(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{}", self.path, name)
        }
    }

    pub fn errors(&mut self) -> &mut ValidationErrors {
        self.errors
    }

    /// Takes a raw member out of the object (for nested readers).
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name)
    }

    /// A boolean; absent or `null` is `false`.
    pub fn flag(&mut self, name: &str) -> bool {
        let path = self.field_path(name);
        match self.map.remove(name) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                self.errors
                    .push(path, "invalid_type", "must be true or false");
                false
            }
        }
    }

    /// A string, trimmed, non-empty, at most `max` characters.
    pub fn string(&mut self, name: &str, required: bool, max: usize) -> Option<String> {
        let path = self.field_path(name);
        match self.map.remove(name) {
            None | Some(Value::Null) => {
                if required {
                    self.errors.push(path, "required", "this field is required");
                }
                None
            }
            Some(Value::String(s)) => {
                let trimmed = s.trim();
                if trimmed.is_empty() {
                    if required {
                        self.errors.push(path, "required", "must not be empty");
                    }
                    None
                } else if trimmed.chars().count() > max {
                    self.errors.push(
                        path,
                        "too_long",
                        format!("must be at most {max} characters"),
                    );
                    None
                } else if trimmed
                    .chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
                {
                    self.errors.push(
                        path,
                        "invalid_characters",
                        "must not contain control characters",
                    );
                    None
                } else {
                    Some(trimmed.to_owned())
                }
            }
            Some(_) => {
                self.errors.push(path, "invalid_type", "must be a string");
                None
            }
        }
    }

    /// A secret such as a password, taken verbatim (never trimmed): a required string,
    /// checked by `check`, whose failure is recorded with `code`.
    pub fn secret(
        &mut self,
        name: &str,
        code: &'static str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Option<String> {
        let path = self.field_path(name);
        match self.map.remove(name) {
            Some(Value::String(s)) => match check(&s) {
                Ok(()) => Some(s),
                Err(message) => {
                    self.errors.push(path, code, message);
                    None
                }
            },
            None | Some(Value::Null) => {
                self.errors.push(path, "required", "this field is required");
                None
            }
            Some(_) => {
                self.errors.push(path, "invalid_type", "must be a string");
                None
            }
        }
    }

    /// A list of values, at most `limits::LIST_ITEMS` long; `None` when absent.
    pub fn array(&mut self, name: &str, required: bool) -> Option<Vec<Value>> {
        let path = self.field_path(name);
        match self.map.remove(name) {
            None | Some(Value::Null) => {
                if required {
                    self.errors.push(path, "required", "this field is required");
                }
                None
            }
            Some(Value::Array(items)) => {
                if items.is_empty() && required {
                    self.errors
                        .push(path, "required", "must contain at least one item");
                    None
                } else if items.len() > limits::LIST_ITEMS {
                    self.errors.push(
                        path,
                        "too_many_items",
                        format!("must contain at most {} items", limits::LIST_ITEMS),
                    );
                    None
                } else {
                    Some(items)
                }
            }
            Some(_) => {
                self.errors.push(path, "invalid_type", "must be an array");
                None
            }
        }
    }

    /// A list of strings, each validated by `item`.
    pub fn string_list<T>(
        &mut self,
        name: &str,
        required: bool,
        mut item: impl FnMut(&str) -> Result<T, (&'static str, String)>,
    ) -> Option<Vec<T>> {
        let path = self.field_path(name);
        let items = self.array(name, required)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, value) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            match value {
                Value::String(s) => match item(s.trim()) {
                    Ok(v) => out.push(v),
                    Err((code, message)) => {
                        ok = false;
                        self.errors.push(item_path, code, message);
                    }
                },
                _ => {
                    ok = false;
                    self.errors
                        .push(item_path, "invalid_type", "must be a string");
                }
            }
        }
        ok.then_some(out)
    }

    /// Records an error for each member that was not read.
    pub fn deny_unknown(self) {
        let mut names: Vec<_> = self.map.keys().cloned().collect();
        names.sort();
        for name in names {
            let path = if self.path.is_empty() {
                name
            } else {
                format!("{}.{}", self.path, name)
            };
            self.errors
                .push(path, "unknown_field", "this field is not allowed here");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn collects_every_problem_with_its_path() {
        let value = json!({"a": 1, "b": "  ", "c": "x".repeat(11), "d": "ok", "extra": true});
        let mut errors = ValidationErrors::default();
        let mut r = ObjectReader::new(Some(&value), "details", false, &mut errors).unwrap();
        assert_eq!(r.string("a", true, 10), None);
        assert_eq!(r.string("b", true, 10), None);
        assert_eq!(r.string("c", true, 10), None);
        assert_eq!(r.string("d", true, 10).as_deref(), Some("ok"));
        assert_eq!(r.string("missing", false, 10), None);
        r.deny_unknown();
        let fields: Vec<_> = errors
            .0
            .iter()
            .map(|e| (e.field.as_str(), e.code))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("details.a", "invalid_type"),
                ("details.b", "required"),
                ("details.c", "too_long"),
                ("details.extra", "unknown_field"),
            ]
        );
    }

    #[test]
    fn control_characters_are_refused() {
        let value = json!({"a": "bell\u{7}"});
        let mut errors = ValidationErrors::default();
        let mut r = ObjectReader::new(Some(&value), "", false, &mut errors).unwrap();
        assert_eq!(r.string("a", true, 10), None);
        assert_eq!(errors.0[0].code, "invalid_characters");
    }
}
