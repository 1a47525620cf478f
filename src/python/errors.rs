//! Builds the Python exception classes from the core's one table
//! (`error::CLASSES`) and turns core errors into them.

use std::ffi::CString;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::error::{Error, ErrorClass, CLASSES};

/// The class objects, indexed like `CLASSES`.
static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn types(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    TYPES.get_or_try_init(py, || {
        let builtins = py.import("builtins")?;
        let mut types: Vec<Py<PyType>> = Vec::with_capacity(CLASSES.len());
        for spec in &CLASSES {
            let class = match spec.parent {
                None => builtins.getattr(spec.name)?.cast_into::<PyType>()?.unbind(),
                Some(parent) => {
                    let base = match CLASSES[..types.len()].iter().position(|c| c.name == parent) {
                        Some(i) => types[i].bind(py).clone(),
                        None => builtins.getattr(parent)?.cast_into::<PyType>()?,
                    };
                    let name = CString::new(format!("s4_codec.{}", spec.name))?;
                    let doc = CString::new(spec.doc)?;
                    PyErr::new_type(py, &name, Some(&doc), Some(&base), None)?
                }
            };
            types.push(class);
        }
        Ok(types)
    })
}

/// An exception of `class` carrying `msg`.
pub fn new_err(class: ErrorClass, msg: String) -> PyErr {
    Python::attach(|py| match types(py) {
        Ok(types) => PyErr::from_type(types[class as usize].bind(py).clone(), msg),
        Err(err) => err,
    })
}

/// Converts a core error into its Python exception; `context` (e.g.
/// "row 17") is put in front of the message.
pub fn to_py_err_at(err: Error, context: Option<&str>) -> PyErr {
    let msg = match context {
        Some(context) => format!("{context}: {err}"),
        None => err.to_string(),
    };
    new_err(err.class(), msg)
}

impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        to_py_err_at(err, None)
    }
}

/// Adds every class the table defines (builtins excluded) to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    for (spec, class) in CLASSES.iter().zip(types(m.py())?) {
        if spec.parent.is_some() {
            m.add(spec.name, class.bind(m.py()))?;
        }
    }
    Ok(())
}
