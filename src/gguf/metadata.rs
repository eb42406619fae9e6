//! The key-value section: ordered, unique keys with typed accessors whose errors name the
//! key and what was wrong with it.

use super::error::{GgufError, Result};
use super::value::{Array, Value};

/// Metadata in file order. Lookups are linear: a model has a few dozen keys, and keeping
/// the order lets a rewritten file keep the layout of the original.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    entries: Vec<(String, Value)>,
}

macro_rules! int_getter {
    ($name:ident, $opt:ident, $ty:ty) => {
        #[doc = concat!("The value of `key` as ", stringify!($ty), ": any integer type is accepted when the value fits.")]
        pub fn $name(&self, key: &str) -> Result<$ty> {
            self.$opt(key)?.ok_or_else(|| GgufError::MissingKey(key.to_string()))
        }

        #[doc = concat!("Like [`Self::", stringify!($name), "`], with `None` for a missing key.")]
        pub fn $opt(&self, key: &str) -> Result<Option<$ty>> {
            let Some(v) = self.get(key) else { return Ok(None) };
            let n = v
                .as_i128()
                .ok_or_else(|| GgufError::key_type(key, stringify!($ty), v.value_type()))?;
            <$ty>::try_from(n).map(Some).map_err(|_| GgufError::KeyRange {
                key: key.to_string(),
                value: n.to_string(),
                expected: stringify!($ty),
            })
        }
    };
}

impl Metadata {
    pub fn new() -> Metadata {
        Metadata::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, replacing its value in place if present, appending it otherwise.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// Appends without looking for an existing key; the reader checks uniqueness itself.
    pub(crate) fn push_unique(&mut self, key: String, value: Value) -> Result<()> {
        if self.contains(&key) {
            return Err(GgufError::invalid(format!(
                "duplicate metadata key '{key}'"
            )));
        }
        self.entries.push((key, value));
        Ok(())
    }

    int_getter!(get_u8, get_u8_opt, u8);
    int_getter!(get_u16, get_u16_opt, u16);
    int_getter!(get_u32, get_u32_opt, u32);
    int_getter!(get_u64, get_u64_opt, u64);
    int_getter!(get_i32, get_i32_opt, i32);
    int_getter!(get_i64, get_i64_opt, i64);
    int_getter!(get_usize, get_usize_opt, usize);

    /// The value of `key` as f32, from an f32 or f64 value.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.get_f32_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.to_string()))
    }

    pub fn get_f32_opt(&self, key: &str) -> Result<Option<f32>> {
        Ok(self.get_f64_opt(key)?.map(|v| v as f32))
    }

    pub fn get_f64(&self, key: &str) -> Result<f64> {
        self.get_f64_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.to_string()))
    }

    pub fn get_f64_opt(&self, key: &str) -> Result<Option<f64>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        v.as_f64()
            .map(Some)
            .ok_or_else(|| GgufError::key_type(key, "f32", v.value_type()))
    }

    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.get_bool_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.to_string()))
    }

    pub fn get_bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(GgufError::key_type(key, "bool", v.value_type())),
        }
    }

    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.get_str_opt(key)?
            .ok_or_else(|| GgufError::MissingKey(key.to_string()))
    }

    pub fn get_str_opt(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(GgufError::key_type(key, "string", v.value_type())),
        }
    }

    pub fn get_array(&self, key: &str) -> Result<&Array> {
        match self.get(key) {
            None => Err(GgufError::MissingKey(key.to_string())),
            Some(Value::Array(a)) => Ok(a),
            Some(v) => Err(GgufError::key_type(key, "array", v.value_type())),
        }
    }

    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        match self.get_array(key)? {
            Array::String(v) => Ok(v),
            a => Err(array_type(key, "array of string", a)),
        }
    }

    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        match self.get_array(key)? {
            Array::F32(v) => Ok(v),
            a => Err(array_type(key, "array of f32", a)),
        }
    }

    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        match self.get_array(key)? {
            Array::I32(v) => Ok(v),
            a => Err(array_type(key, "array of i32", a)),
        }
    }
}

fn array_type(key: &str, expected: &'static str, found: &Array) -> GgufError {
    GgufError::KeyType {
        key: key.to_string(),
        expected,
        found: format!("array of {}", found.element_type()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Metadata {
        let mut m = Metadata::new();
        m.set("a.u32", Value::U32(7));
        m.set("a.i32.neg", Value::I32(-1));
        m.set("a.f64", Value::F64(0.5));
        m.set("a.str", Value::String("llama".into()));
        m.set("a.tokens", Value::Array(Array::String(vec!["x".into()])));
        m
    }

    #[test]
    fn typed_access_widens_and_checks_range() {
        let m = sample();
        assert_eq!(m.get_u32("a.u32").unwrap(), 7);
        assert_eq!(m.get_u64("a.u32").unwrap(), 7);
        assert_eq!(m.get_f32("a.f64").unwrap(), 0.5);
        assert_eq!(m.get_str("a.str").unwrap(), "llama");
        assert_eq!(m.get_str_array("a.tokens").unwrap(), ["x"]);
        let e = m.get_u32("a.i32.neg").unwrap_err().to_string();
        assert_eq!(e, "metadata key 'a.i32.neg' = -1 does not fit in u32");
    }

    #[test]
    fn errors_name_the_key() {
        let m = sample();
        assert_eq!(
            m.get_u32("llama.block_count").unwrap_err().to_string(),
            "metadata key 'llama.block_count' is missing"
        );
        assert_eq!(
            m.get_u32("a.str").unwrap_err().to_string(),
            "metadata key 'a.str' has type string, expected u32"
        );
        assert_eq!(
            m.get_f32_array("a.tokens").unwrap_err().to_string(),
            "metadata key 'a.tokens' has type array of string, expected array of f32"
        );
        assert_eq!(m.get_u32_opt("nope").unwrap(), None);
    }

    #[test]
    fn set_replaces_in_place() {
        let mut m = sample();
        m.set("a.u32", Value::U8(1));
        assert_eq!(m.iter().next().unwrap(), ("a.u32", &Value::U8(1)));
        assert!(m.push_unique("a.str".into(), Value::Bool(true)).is_err());
    }
}
