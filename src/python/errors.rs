//! Builds the Python exception classes from the core's one table
//! (`error::CLASSES`) and turns core errors into them, with where they
//! happened as attributes.

use std::ffi::CString;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyType};

use crate::error::{Error, ErrorClass, Location, CLASSES};

/// The exception attributes of `location`: `row`, `frame`, `stored_range`
/// and `original_range`, `None` where unknown.
fn location_attributes<'py>(py: Python<'py>, location: Location) -> PyResult<Bound<'py, PyDict>> {
    let attributes = PyDict::new(py);
    attributes.set_item("row", location.row)?;
    attributes.set_item("frame", location.frame)?;
    attributes.set_item("stored_range", location.stored)?;
    attributes.set_item("original_range", location.original)?;
    Ok(attributes)
}

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
                    let (base, dict) =
                        match CLASSES[..types.len()].iter().position(|c| c.name == parent) {
                            Some(i) => (types[i].bind(py).clone(), None),
                            // A root (S4Error, S4IoError, S4BackendError): every
                            // S4 exception reads its location attributes, as
                            // None when an error carries none.
                            None => (
                                builtins.getattr(parent)?.cast_into::<PyType>()?,
                                Some(location_attributes(py, Location::default())?),
                            ),
                        };
                    let name = CString::new(format!("s4_codec.{}", spec.name))?;
                    let doc = CString::new(spec.doc)?;
                    // `new_type` drops the `Py` it is handed before CPython
                    // copies the dict, so `dict` keeps a reference of its own.
                    let handed = dict.as_ref().map(|d| d.clone().into_any().unbind());
                    PyErr::new_type(py, &name, Some(&doc), Some(&base), handed)?
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

/// A core error as its Python exception. A located one gets all four
/// attributes on the instance too, since builtin classes (a `ValueError`
/// for a row that is not UTF-8) have no class defaults.
impl From<Error> for PyErr {
    fn from(err: Error) -> Self {
        let location = err.location();
        let py_err = new_err(err.class(), err.to_string());
        if location == Location::default() {
            return py_err;
        }
        Python::attach(|py| {
            let located = || -> PyResult<()> {
                let value = py_err.value(py);
                for (name, attribute) in location_attributes(py, location)? {
                    value.setattr(name.cast_into::<PyString>()?, attribute)?;
                }
                Ok(())
            };
            match located() {
                Ok(()) => py_err,
                Err(err) => err,
            }
        })
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
